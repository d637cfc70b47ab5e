"""Training: the paper's two-phase protocol (train), fastai callbacks, the optimiser, augmentation, data-parallel
runs."""
