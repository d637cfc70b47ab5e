"""The implementation against the paper's text (sections 3.1–3.3 and 3.4's two phases), one test per sentence.

Each test is a row of the table "The implementation against the paper's text" in ``book/methods.md``, which
cites it by name; the docstring quotes the sentence. Models are built at 64×64 with random weights (a
ResNet34 body, the paper's, still builds and runs in about a second at that size).
"""
from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastai.callback.core import Callback
from fastai.callback.schedule import combined_cos
from fastai.layers import AdaptiveConcatPool2d, ResBlock
from torch import nn

from clothparse.models import ExtendedUnet, NearestUpsample, SegOutput, build_model
from clothparse.models.boxes import boxes_from_masks
from clothparse.models.heads import BBBranch, ClassBranch, expand_planes
from clothparse.models.losses import CompoundLoss
from clothparse.profiles import load_profile
from clothparse.runs import RunDir
from clothparse.training.augment import FlipRotateLighting
from clothparse.training.distributed import World
from clothparse.training.optim import adam
from clothparse.training.train import _build, _fit_phases, _resume, _Session

from conftest import tiny_profile

SIZE = (64, 64)


def _x(b=2, seed=0):
    return torch.randn(b, 3, *SIZE, generator=torch.Generator().manual_seed(seed))


def _mask(b=2, seed=0):
    """B×H×W masks with some classes present and some absent; image 0 also has a shoe, the others not."""
    m = torch.zeros(b, *SIZE, dtype=torch.long)
    m[:, 10 + seed:40, 12:50] = 1               # top
    m[:, 40:60, 20:44 - seed] = 3               # pants
    m[0, 5:9, 30:34] = 7                        # shoe, first image only
    return m


def _capture(module: nn.Module, model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, SegOutput]:
    """The input ``module`` receives during ``model(x)``, and the model's output."""
    seen = []
    handle = module.register_forward_hook(lambda m, args, out: seen.append(args[0].detach().clone()))
    try:
        out = model(x)
    finally:
        handle.remove()
    return seen[0], out


# --- 3.1 U-Net ---------------------------------------------------------------------------------------
def test_resnet34_imagenet_encoder():
    """"we decided to use ResNet34 pre-trained on ImageNet as the encoder" (3.1, 1)."""
    paper = load_profile("paper")
    assert paper.encoder_name == "resnet34" and paper.encoder_weights == "imagenet"
    model = build_model("extended_unet", input_size=SIZE)  # build_model's default encoder
    assert model.encoder_name == "resnet34"
    # torchvision's ResNet34: 3, 4, 6, 3 BasicBlocks in layer1..layer4, 512 channels out, stride 32
    blocks = [len(m) for m in model.encoder if isinstance(m, nn.Sequential)]
    assert blocks == [3, 4, 6, 3]
    assert model.deepest_shape == (512, SIZE[0] // 32, SIZE[1] // 32)


def test_nearest_neighbour_upsampling(built):
    """"Simple nearest neighbor technique was used as an upsampling layer" (3.1, 2)."""
    model = built("extended_unet")
    ups = [m for m in model.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 5 and all(m.mode == "nearest" and m.scale_factor == 2 for m in ups)  # 4 blocks + last
    assert not any(isinstance(m, (nn.ConvTranspose2d, nn.PixelShuffle)) for m in model.modules())
    up = model.upsample.eval()
    assert isinstance(up, NearestUpsample)
    y = torch.randn(1, up[0][0].in_channels, 5, 4)
    out = up(y)
    # every output pixel is a copy of the low-resolution pixel it lies in: the 1×1 conv then ×2 nearest
    torch.testing.assert_close(out, up[0](y).repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_input_288x192():
    """"the input image dimension of 288x192x3" (3, and 3.4 "we resize every image to 288x192")."""
    assert tuple(load_profile("paper").size) == (288, 192)
    assert build_model.__defaults__[3] == (288, 192) and ExtendedUnet.__init__.__defaults__[3] == (288, 192)


# --- 3.2 Additional branches ---------------------------------------------------------------------------
def test_class_branch_layers(built):
    """"'ClassBranch' is implemented as a subnetwork consisting of an adaptive average and max pooling layer
    followed by two fully connected layers with dimensions 512 and number of clothing categories. The first
    fully connected layer is followed by ReLU, Batchnorm and dropout layer." (3.2)"""
    branch = built("extended_unet").class_branch
    assert isinstance(branch, ClassBranch)
    assert [type(m) for m in branch] == [AdaptiveConcatPool2d, nn.Flatten, nn.Linear, nn.ReLU, nn.BatchNorm1d,
                                         nn.Dropout, nn.Linear]
    pool = branch[0]
    assert {type(pool.ap), type(pool.mp)} == {nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d}
    assert pool.ap.output_size == pool.mp.output_size == 1
    assert (branch[2].in_features, branch[2].out_features) == (2 * 512, 512)
    assert branch[4].num_features == 512 and branch[5].p == 0.5      # dropout rate: paper silent, fastai's
    assert (branch[6].in_features, branch[6].out_features) == (512, 8)  # eight clothing categories


def test_bbbranch_layers(built):
    """"'BBbranch' is implemented as two fully connected layers without any preceding pooling layer." (3.2)
    The ReLU between them and the hidden size 256 are ours (paper silent)."""
    model = built("extended_unet")
    branch = model.box_branch
    assert isinstance(branch, BBBranch)
    assert [type(m) for m in branch] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    assert not any("Pool" in type(m).__name__ for m in branch.modules())
    assert branch[1].in_features == math.prod(model.deepest_shape)  # every position of the deepest features
    assert branch[1].out_features == 256 == branch[3].in_features


def test_bbbranch_one_box_per_category(built):
    """"Each output channel of 'BBbranch' is dedicated to bounding box prediction of a specific clothing
    category" — "maximum of 1 instance per clothing category" (3.2): 8 categories × 4 coordinates."""
    out = built("extended_unet").eval()(_x())
    assert out.boxes.shape == (2, 4 * 8)
    # the loss reads them as B×8×4 (x_min, y_min, x_max, y_max) per category, the order of its targets
    gt, present = boxes_from_masks(_mask())
    assert gt.shape == (2, 8, 4) and present.shape == (2, 8)


def test_branches_read_the_deepest_encoder_features(built):
    """"Insertion of the branches is illustrated in Figure 1" (3.2): the text does not say where; the figure
    (not in the text) and DESIGN.md: both branches on the encoder's output (ResNet34 layer4)."""
    model = built("extended_unet").eval()
    x = _x()
    deepest = model.encode(x)[0]
    assert deepest.shape[1:] == (512, 2, 2)
    got_class, _ = _capture(model.class_branch, model, x)
    got_box, _ = _capture(model.box_branch, model, x)
    torch.testing.assert_close(got_class, deepest)
    torch.testing.assert_close(got_box, deepest)


def test_box_targets_from_the_mask():
    """"the ground truth bounding box position calculation was inferred automatically from the ground truth
    segmentation mask" (3.2), "expressed relative to the input image size (resulting in values in [0,1]
    range)" (3.3)."""
    m = torch.zeros(1, 8, 16, dtype=torch.long)
    m[0, 2:6, 4:8] = 1          # a top: rows 2..5, columns 4..7
    m[0, :, :] = torch.where(torch.arange(16) >= 12, 7, m[0])  # shoes: the last four columns, full height
    boxes, present = boxes_from_masks(m)
    torch.testing.assert_close(boxes[0, 0], torch.tensor([4 / 16, 2 / 8, 8 / 16, 6 / 8]))
    torch.testing.assert_close(boxes[0, 6], torch.tensor([12 / 16, 0.0, 1.0, 1.0]))
    assert present[0].tolist() == [True, False, False, False, False, False, True, False]
    assert bool(((boxes >= 0) & (boxes <= 1)).all())


def test_expansion_to_constant_planes():
    """"logit outputs of the branches are expanded so that they match the resolution of the input image (e.g.
    for the 'ClassBranch' eight logit output neurons are transformed into eight layers of resolution 288x192.
    Each layer contains 288x192 clones of the corresponding output neuron)" (3.2)."""
    logits = torch.randn(2, 8)
    planes = expand_planes(logits, (288, 192))
    assert planes.shape == (2, 8, 288, 192)
    torch.testing.assert_close(planes, logits[:, :, None, None] * torch.ones(1, 1, 288, 192))


def test_injection_by_concatenation(built):
    """"Output layers of these additional branches are injected back into the segmentation network by
    concatenation" (3.2): the 8 class and 32 box *logits* (no sigmoid), as planes at the input resolution,
    join the decoder features (and the input image, fastai's last cross) at the tail's input."""
    model = built("extended_unet").eval()
    x = _x()
    merged, out = _capture(model.tail, model, x)
    decoder = model.decode(*model.encode(x), x.shape[-2:])
    n_dec = decoder.shape[1]
    assert merged.shape == (2, n_dec + 3 + 8 + 32, *SIZE)
    torch.testing.assert_close(merged[:, :n_dec], decoder)
    torch.testing.assert_close(merged[:, n_dec:n_dec + 3], x)
    torch.testing.assert_close(merged[:, n_dec + 3:n_dec + 11], expand_planes(out.classes, SIZE))
    torch.testing.assert_close(merged[:, n_dec + 11:], expand_planes(out.boxes, SIZE))


def test_residual_conv_then_final_conv(built):
    """"The concatenation is followed by a residual convolutional layer and final convolutional layer
    outputting segmentation mask logit prediction" (3.2): fastai's ResBlock, then a 1×1 conv to 9 logits."""
    model = built("extended_unet").eval()
    assert isinstance(model.tail, ResBlock)
    conv = model.head[0]
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.out_channels == 9
    assert len(model.head) == 1  # no activation after it: logits
    x = _x()
    merged, out = _capture(model.tail, model, x)
    with torch.no_grad():
        # residual: relu(convpath(z) + z), the identity path (same channels in and out, stride 1)
        res = F.relu(model.tail.convpath(merged) + merged)
        torch.testing.assert_close(out.seg, conv(res))


def test_segmentation_loss_reaches_both_branches(built):
    """"This way of branches injection enables gradient flow from the main segmentation loss to the
    branches" (3.2): the segmentation term alone gives non-zero gradients in both branches' weights."""
    model = built("extended_unet").train()
    model.zero_grad()
    out = model(_x())
    CompoundLoss()(SegOutput(out.seg), _mask()).backward()  # the WCE term only
    for branch in (model.class_branch, model.box_branch):
        for name, p in branch.named_parameters():
            assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    model.zero_grad()


def test_ablation_branches_not_injected(built):
    """"We also experimented with the setting, in which no inclusion of the additional branches into the main
    segmentation part was performed" (3.2) — Table 2's 'Branches' (section 5): both branches, trained by their
    own losses, not feeding the segmentation (so they can be detached at inference)."""
    model = built("branches").train()
    assert model.injection == "none" and model.box_branch is not None
    n_dec = model.decode(*model.encode(_x()), SIZE).shape[1]
    assert model.tail.convpath[0][0].in_channels == n_dec + 3     # no planes concatenated
    model.zero_grad()
    out = model(_x())
    CompoundLoss()(SegOutput(out.seg), _mask()).backward(retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in model.class_branch.parameters())
    assert all(p.grad is None or not p.grad.any() for p in model.box_branch.parameters())
    CompoundLoss()(out, _mask()).backward()                      # their own terms do train them
    assert model.class_branch[-1].weight.grad.abs().sum() > 0 and model.box_branch[-1].weight.grad.abs().sum() > 0
    model.zero_grad()
    torch.testing.assert_close(model.eval()(_x()).seg, model.drop_branches()(_x()).seg)


def test_ablation_classbranch_only_multiplies(built):
    """"'ClassBranch only' represents the model with only the 'ClassBranch' with its output being incorporated
    back into the segmentation trunk by means of multiplication" (section 5). The paper does not say how;
    ours: the class probability multiplies the pixel's class probability, ``seg[c] += logsigmoid(logit[c])``."""
    model = built("classbranch_only").eval()
    assert model.injection == "multiply" and model.box_branch is None
    x = _x()
    present, absent = torch.full((8,), float("nan")), torch.full((8,), float("nan"))
    present[2], absent[2] = 1.0, 0.0    # pants: ClassBranch logit forced to +10 / -10
    a, b = model(x, prior=present).seg, model(x, prior=absent).seg
    expected = F.logsigmoid(torch.tensor(10.0)) - F.logsigmoid(torch.tensor(-10.0))
    torch.testing.assert_close(a[:, 3] - b[:, 3], torch.full_like(a[:, 3], float(expected)))  # pants channel
    keep = [c for c in range(9) if c != 3]
    torch.testing.assert_close(a[:, keep], b[:, keep])          # background and other classes untouched
    n_dec = model.decode(*model.encode(x), SIZE).shape[1]
    assert model.tail.convpath[0][0].in_channels == n_dec + 3   # nothing concatenated
    loss = CompoundLoss()
    loss(model(x), _mask())
    assert set(loss.last_terms) == {"seg", "cls", "total"}      # no BBBranch, no box term


# --- 3.3 Loss function ---------------------------------------------------------------------------------
def _loss_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    seg = torch.randn(2, 9, *SIZE, generator=g)
    classes = torch.randn(2, 8, generator=g)
    boxes = torch.randn(2, 32, generator=g)
    return seg, classes, boxes, _mask(seed=seed)


def test_loss_weighted_sum_of_three_terms():
    """"Loss function used in our network is a weighted sum of three terms" (3.3): 1·WCE + 0.5·BCE + 75·SL1,
    and training uses exactly these defaults."""
    seg, classes, boxes, target = _loss_inputs()
    loss = CompoundLoss()
    total = loss(SegOutput(seg, classes, boxes), target)
    t = loss.last_terms
    torch.testing.assert_close(float(total), 1 * t["seg"] + 0.5 * t["cls"] + 75 * t["box"], rtol=1e-6, atol=1e-6)
    assert (loss.seg_weight, loss.class_weight, loss.box_weight) == (1.0, 0.5, 75.0)


def test_wce_background_1_foreground_2():
    """"we have set the weight of WCE to 1 for the background class and 2 for every of the foreground classes.
    This loss term was used with a weight of 1." (3.3)"""
    seg, _, _, target = _loss_inputs()
    loss = CompoundLoss()
    got = loss(SegOutput(seg), target)
    w = torch.tensor([1.0] + [2.0] * 8)
    nll = -F.log_softmax(seg, 1).gather(1, target[:, None])[:, 0]
    # torch's weighted mean: Σ w[y]·nll / Σ w[y] (the normalisation is ours; the paper is silent)
    torch.testing.assert_close(got, (w[target] * nll).sum() / w[target].sum())
    assert loss.seg_weight == 1.0


def test_bce_classbranch_weight_half():
    """"Second loss term is binary cross-entropy pertaining to the multilabel classification task of the
    'ClassBranch'. This loss term was used with a weight of 0.5." (3.3) — with "additional sigmoid function
    ... before the multilabel classification binary cross-entropy" (Figure 1): BCE of sigmoid(logits)."""
    seg, classes, _, target = _loss_inputs()
    loss = CompoundLoss()
    total = loss(SegOutput(seg, classes), target)
    present = torch.stack([(target == c).flatten(1).any(1) for c in range(1, 9)], 1).float()
    bce = F.binary_cross_entropy(torch.sigmoid(classes), present)
    torch.testing.assert_close(loss.last_term_tensors["cls"], bce)
    torch.testing.assert_close(total, loss.last_term_tensors["seg"] + 0.5 * bce)


def test_smooth_l1_on_sigmoid_of_box_logits_weight_75():
    """"Third component is the smooth L1 loss described in (Girshick, 2015) ... additional sigmoid function was
    introduced before the smooth L1 loss calculation ... This loss term was used with a weight of 75." (3.3)"""
    seg, _, boxes, target = _loss_inputs()
    loss = CompoundLoss()
    total = loss(SegOutput(seg, None, boxes), target)
    gt, present = boxes_from_masks(target)
    d = (torch.sigmoid(boxes.reshape(2, 8, 4)) - gt).abs()
    girshick = torch.where(d < 1, 0.5 * d ** 2, d - 0.5)            # Girshick's smooth L1 (β = 1)
    expected = girshick[present].mean()   # mean over present categories' coordinates: the paper is silent
    torch.testing.assert_close(loss.last_term_tensors["box"], expected)
    torch.testing.assert_close(total, loss.last_term_tensors["seg"] + 75 * expected)


def test_box_term_only_present_classes():
    """"only loss terms from the channels corresponding to the clothing categories present in the input image
    contributed to the final loss term" (3.3): an absent category's box logits change nothing, per image."""
    seg, classes, boxes, target = _loss_inputs()
    _, present = boxes_from_masks(target)
    assert present.any() and not present.all() and not torch.equal(present[0], present[1])
    boxes = boxes.clone().requires_grad_(True)
    loss = CompoundLoss()
    before = loss(SegOutput(seg, classes, boxes), target)
    before.backward()
    grad = boxes.grad.reshape(2, 8, 4)
    assert not grad[~present].any() and grad[present].abs().sum() > 0
    moved = boxes.detach().reshape(2, 8, 4).clone()
    moved[~present] += 100.0
    torch.testing.assert_close(loss(SegOutput(seg, classes, moved.reshape(2, 32)), target), before.detach())


# --- 3.4 the two phases, the optimiser, the box targets of the augmented mask ---------------------------
class _Watch(Callback):
    """Records, for every fit (phase), the trainable flags, the scheduled lrs and whether weights moved."""

    order = 100

    def __init__(self):
        self.phases, self.batches = [], []

    def before_fit(self):
        m = self.learn.model
        self.start = {k: v.detach().clone() for k, v in m.state_dict().items()}
        self.phases.append({"encoder_conv_trainable": [p.requires_grad for n, p in m.encoder.named_parameters()
                                                       if p.ndim == 4],
                            "encoder_bn_trainable": [p.requires_grad for n, p in m.encoder.named_parameters()
                                                     if p.ndim == 1],
                            "rest_trainable": [p.requires_grad for n, p in m.named_parameters()
                                               if not n.startswith("encoder.")],
                            "lrs": [], "moms": [], "wds": set()})

    def before_batch(self):
        if self.training:
            self.phases[-1]["lrs"].append(self.opt.hypers[-1]["lr"])
            self.phases[-1]["moms"].append(self.opt.hypers[-1]["mom"])
            self.phases[-1]["wds"] |= {h["wd"] for h in self.opt.hypers}

    def after_loss(self):
        if self.training:
            self.batches.append((self.learn.pred, self.learn.yb[0].detach().clone(),
                                 self.learn.loss_func.last_term_tensors["box"]))

    def after_fit(self):
        end = self.learn.model.state_dict()
        self.phases[-1]["moved"] = {k for k in end if end[k].is_floating_point() and not torch.equal(end[k],
                                                                                                    self.start[k])}


def _fake_prepared(n_train=24, n_valid=4):
    """What ``make_dataloaders`` reads of a prepared dataset: a store's images and masks and the split."""
    g = np.random.default_rng(0)
    n = n_train + n_valid
    images = g.integers(0, 256, (n, *SIZE, 3), dtype=np.uint8)
    masks = np.zeros((n, *SIZE), dtype=np.uint8)
    masks[:, 8:30, 4:28] = 1     # the same off-centre top in every image: a flip or a rotation moves its box
    masks[:, 40:60, 30:60] = 3
    split = {"train": np.arange(n_train), "valid": np.arange(n_train, n)}
    return SimpleNamespace(store=SimpleNamespace(images=images, masks=masks), indices=lambda s: split[s])


@pytest.fixture(scope="module")
def two_phases(tmp_path_factory):
    """train.py's own steps (_build, _resume, _fit_phases) on a 64×64 extended U-Net: 1 frozen + 1 unfrozen epoch."""
    tmp = tmp_path_factory.mktemp("phases")
    raw = tiny_profile(tmp, **dict(batch_size=4, epochs_frozen=1, epochs_unfrozen=1, lr_max=1e-4, wd=1e-3,
                                       amp=False))
    profile = load_profile({**raw, "encoder_name": "resnet34", "encoder_weights": None})
    run = RunDir(tmp / "run")
    run.path.mkdir(parents=True)
    s = _Session(profile, run, _fake_prepared(), "cpu", False, "fp16", {}, World())
    torch.manual_seed(0)
    _build(s, "extended_unet", progress=False)
    watch = _Watch()
    s.learn.add_cb(watch)
    _resume(s)
    assert _fit_phases(s, None)
    return s, watch


def test_two_phases_frozen_encoder_then_all(two_phases):
    """"In the first phase, we froze the Resnet34 backbone pre-trained on Imagenet and trained only the rest of
    the network (all the branches included) ... Then we unfroze the whole network" (3.4). fastai's ``freeze``
    keeps the encoder's BatchNorm layers trainable (``train_bn``; the paper, which used fastai, is silent)."""
    s, watch = two_phases
    assert s.profile.train.epochs_frozen == 1 and s.profile.train.epochs_unfrozen == 1 and len(watch.phases) == 2
    frozen, unfrozen = watch.phases
    assert not any(frozen["encoder_conv_trainable"]) and all(frozen["encoder_bn_trainable"])
    assert all(frozen["rest_trainable"]) and all(unfrozen["rest_trainable"])
    assert all(unfrozen["encoder_conv_trainable"]) and all(unfrozen["encoder_bn_trainable"])
    model = s.learn.model
    conv_keys = {f"encoder.{n}" for n, p in model.encoder.named_parameters() if p.ndim == 4}
    branch_keys = {n for n, _ in model.named_parameters() if n.startswith(("class_branch.", "box_branch."))}
    assert frozen["moved"].isdisjoint(conv_keys)           # phase 1: encoder convolutions untouched
    assert branch_keys <= frozen["moved"]                   # ... both branches trained
    assert conv_keys <= unfrozen["moved"] and branch_keys <= unfrozen["moved"]


def test_adam_decoupled_wd_one_cycle(two_phases):
    """"using Adam optimizer and cyclical learning rate scheduler (Smith, 2017) with learning rate maximum of
    10^{-4} ... Weight decay of 10^{-3} was used in both phases (weight decay decoupled from the Adam optimizer
    ...)" (3.4); "This phase was ten epochs long" (both phases)."""
    paper = load_profile("paper").train
    assert (paper.epochs_frozen, paper.epochs_unfrozen, paper.lr_max, paper.wd, paper.batch_size) == (
        10, 10, 1e-4, 1e-3, 16)
    s, watch = two_phases
    assert s.learn.opt_func is adam and isinstance(s.learn.loss_func, CompoundLoss)
    assert isinstance(s.learn.opt.opt, torch.optim.Adam)
    assert all(g["weight_decay"] == 0.0 for g in s.learn.opt.opt.param_groups)  # decay is not Adam's L2 ...
    for phase in watch.phases:                                                   # ... but decoupled, 1e-3
        assert phase["wds"] == {1e-3}
        lrs = np.array(phase["lrs"])
        # one cycle per phase (fastai's fit_one_cycle: cosine warm-up from lr_max/25 over the first quarter, then
        # cosine annealing to lr_max/1e5), restarted in phase 2
        cycle = combined_cos(0.25, 1e-4 / 25, 1e-4, 1e-4 / 1e5)
        np.testing.assert_allclose(lrs, [cycle(i / len(lrs)) for i in range(len(lrs))], rtol=1e-6)
        assert lrs[0] == pytest.approx(4e-6) and lrs.max() == pytest.approx(1e-4, rel=0.05)
        moms = combined_cos(0.25, 0.95, 0.85, 0.95)  # Adam's β1 cycles against the lr
        np.testing.assert_allclose(phase["moms"], [moms(i / len(lrs)) for i in range(len(lrs))], rtol=1e-6)


def test_box_targets_from_the_augmented_mask(two_phases):
    """"the ground truth bounding box was inferred from the transformed mask (calculation performed more
    efficiently on the GPU)" (3.4): the target the loss gets is the augmented mask, and its box term is
    computed against that mask's boxes, inside the loss, on the batch's device."""
    s, watch = two_phases
    assert any(isinstance(t, FlipRotateLighting) for t in s.learn.dls.train.after_batch.fs)
    raw = torch.as_tensor(_fake_prepared().store.masks[0]).long()
    moved = 0
    for pred, target, box_term in watch.batches:
        gt, present = boxes_from_masks(target)
        d = (torch.sigmoid(pred.boxes.detach().float().reshape(gt.shape)) - gt).abs()
        expected = torch.where(d < 1, 0.5 * d ** 2, d - 0.5)[present[..., None].expand_as(gt)].mean()
        torch.testing.assert_close(box_term, expected)
        moved += int(sum(not torch.equal(t, raw) for t in target))
    assert moved > 0  # some masks were flipped/rotated: these boxes are not the stored mask's


# --- the table ------------------------------------------------------------------------------------------
def test_methods_table_cites_every_test():
    """The table in book/methods.md cites each test of this file once, and only tests that exist here."""
    page = (Path(__file__).resolve().parents[1] / "book" / "methods.md").read_text(encoding="utf-8")
    section = page.split("## The implementation against the paper's text", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`test_" in line]
    cited = [name for line in rows for name in re.findall(r"`(test_\w+)`", line.rsplit("|", 2)[-2])]
    here = {name for name in dir(sys.modules[__name__]) if name.startswith("test_")}
    here.discard("test_methods_table_cites_every_test")
    assert len(cited) == len(set(cited)), "a test is cited twice"
    assert set(cited) == here, (sorted(set(cited) - here), sorted(here - set(cited)))
