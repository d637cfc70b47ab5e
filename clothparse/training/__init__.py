"""Training: the paper's two-phase protocol (train), fastai callbacks, the resume checkpoint, the IoUs as fastai
metrics, the optimiser, augmentation, data-parallel runs."""
