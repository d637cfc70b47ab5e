import pytest
import torch
import torch.nn.functional as F

from clothparse.categories import CLOTHING
from clothparse.models import (
    MODEL_NAMES,
    ExtendedUnet,
    FastaiUnet,
    NearestUpsample,
    SegOutput,
    build_model,
    count_flops,
    count_params,
    model_summary,
    splitter,
    summary,
)
from clothparse.models.injection import PRIOR_LOGIT

SIZE = (64, 64)
BRANCHES = {"extended_unet": (True, True), "classbranch_only": (True, False), "branches": (True, True)}


def _x(b=2, size=SIZE, seed=0):
    return torch.randn(b, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_shapes_encoder_and_splitter(name, built):
    model = built(name).train()
    out = model(_x())
    assert isinstance(out, SegOutput)
    assert out.seg.shape == (2, 9, *SIZE)
    has_class, has_box = BRANCHES.get(name, (False, False))
    assert (out.classes is not None) == has_class and (out.boxes is not None) == has_box
    if has_class:
        assert out.classes.shape == (2, 8)
    if has_box:
        assert out.boxes.shape == (2, 32)
    enc, rest = splitter(model)
    assert len(enc) == len(list(model.encoder.parameters())) > 0 and len(rest) > 0
    assert {id(p) for p in enc}.isdisjoint(id(p) for p in rest)
    assert len(enc) + len(rest) == len(list(model.parameters()))


def test_unet_equals_fastai_dynamicunet_with_nearest_upsampling(built):
    """Our explicit-skip U-Net is fastai's hook-based DynamicUnet with PixelShuffle_ICNR → NearestUpsample."""
    from fastai.vision.learner import create_body
    from fastai.vision.models.unet import DynamicUnet, UnetBlock
    from torchvision.models import resnet34

    ours = built("unet").eval()
    ref = DynamicUnet(create_body(resnet34(), pretrained=False, cut=-2), 9, SIZE, blur=False, self_attention=False,
                      y_range=None, last_cross=True, bottle=False)
    for layer in ref.layers:
        if isinstance(layer, UnetBlock):
            conv = layer.shuf[0][0]
            layer.shuf = NearestUpsample(conv.in_channels, conv.out_channels // 4)
    conv = ref.layers[8][0][0]
    ref.layers[8] = NearestUpsample(conv.in_channels, conv.out_channels // 4)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert [v.shape for v in ref_sd.values()] == [v.shape for v in our_sd.values()]
    ref.load_state_dict(dict(zip(ref_sd, our_sd.values())))
    ref.eval()
    x = _x()
    with torch.no_grad():
        assert torch.allclose(ours(x).seg, ref(x).as_subclass(torch.Tensor), atol=1e-5)
    assert count_params(ours) == count_params(ref)


def test_full_size_params_and_flops_of_unet_and_smp_unet():
    table = model_summary(["unet", "smp_unet"], input_size=(288, 192))
    assert table.loc["unet", "params_m"] == pytest.approx(40.1, abs=0.1)
    assert table.loc["unet", "gflop_forward_backward"] == pytest.approx(152.9, rel=0.01)
    assert table.loc["smp_unet", "params_m"] == pytest.approx(24.4, abs=0.1)
    assert table.loc["smp_unet", "gflop_forward_backward"] == pytest.approx(39.7, rel=0.01)


def test_flop_count_of_grouped_convolutions_costs_backward_as_forward():
    """torch's formula counts a depthwise conv's weight gradient as dense (groups× too much); ours does not,
    and agrees with torch's for a dense conv."""
    from torch.utils.flop_counter import FlopCounterMode

    def cost(conv, counter):
        x = torch.randn(1, 32, 16, 16, requires_grad=True)
        with counter as c:
            out = conv(x)
            forward = c.get_total_flops()
            out.sum().backward()
        return forward, c.get_total_flops() - forward

    depthwise, dense = torch.nn.Conv2d(32, 32, 3, padding=1, groups=32), torch.nn.Conv2d(32, 32, 3, padding=1)
    forward, backward = cost(depthwise, summary._flop_counter())
    assert forward == 2 * 32 * 9 * 16 * 16 and backward == 2 * forward   # grad input + grad weight, each a forward
    # torch's own formula still overcounts; when this fails, torch fixed it and the correction can go
    assert cost(depthwise, FlopCounterMode(display=False))[1] > 10 * forward
    assert cost(dense, summary._flop_counter()) == cost(dense, FlopCounterMode(display=False))


def _seg_loss_grads(built, name):
    model = built(name).train()
    model.zero_grad(set_to_none=True)
    target = torch.randint(0, 9, (2, *SIZE))
    F.cross_entropy(model(_x()).seg, target).backward()   # segmentation loss alone
    def grad_norm(module):
        return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)
    return model, grad_norm


def test_segmentation_loss_trains_injected_branches_only(built):
    model, g = _seg_loss_grads(built, "extended_unet")
    assert g(model.class_branch) > 0 and g(model.box_branch) > 0
    model, g = _seg_loss_grads(built, "classbranch_only")
    assert g(model.class_branch) > 0
    model, g = _seg_loss_grads(built, "branches")
    assert g(model.class_branch) == 0 and g(model.box_branch) == 0 and g(model.head) > 0


def test_drop_branches_keeps_segmentation_and_costs_a_plain_unet(built):
    model = built("branches").eval()
    x = _x()
    plain = model.drop_branches()
    assert type(plain) is FastaiUnet
    with torch.no_grad():
        out, plain_out = model(x), plain(x)
    assert torch.equal(out.seg, plain_out.seg) and plain_out.classes is None and plain_out.boxes is None
    unet = built("unet")
    assert count_params(plain) == count_params(unet) < count_params(model)
    state = {k: v.clone() for k, v in unet.state_dict().items()}
    unet.load_state_dict(plain.state_dict())               # strict: exactly the plain U-Net's parameters
    unet.load_state_dict(state)
    flops, unet_flops = count_flops(model, SIZE), count_flops(unet, SIZE)
    assert flops["inference"] == unet_flops["forward"] < flops["forward"]
    assert not model.training                              # counting restored the modes
    with pytest.raises(ValueError, match="only a 'branches' model"):
        built("extended_unet").drop_branches()


@pytest.mark.parametrize("name", ["extended_unet", "classbranch_only"])
def test_prior_injection(name, built):
    model = built(name).eval()
    x = _x()
    full = torch.tensor([[1, 0, 1, 0, 0, 0, 1, 0], [0, 0, 0, 1, 0, 1, 0, 0]], dtype=torch.float32)
    with torch.no_grad():
        plain = model(x)
        nan = model(x, prior=torch.full((2, 8), float("nan")))
        injected = model(x, prior=full)
        partial = model(x, prior=torch.tensor([float("nan")] * 5 + [0.0, float("nan"), float("nan")]))
    assert torch.equal(nan.seg, plain.seg) and torch.equal(nan.classes, plain.classes)
    assert torch.equal(injected.classes, (full * 2 - 1) * PRIOR_LOGIT)
    assert not torch.allclose(injected.seg, plain.seg)
    dress = CLOTHING.index("dress")
    assert torch.all(partial.classes[:, dress] == -PRIOR_LOGIT)
    keep = [i for i in range(8) if i != dress]
    assert torch.equal(partial.classes[:, keep], plain.classes[:, keep])


def test_multiplication_adds_log_class_probability_to_clothing_logits(built):
    model = built("classbranch_only").eval()
    x, nan = _x(), float("nan")
    dress = CLOTHING.index("dress")
    absent = torch.full((8,), nan).index_fill(0, torch.tensor([dress]), 0.0)
    present = torch.full((8,), nan).index_fill(0, torch.tensor([dress]), 1.0)
    with torch.no_grad():
        a, p = model(x, prior=absent).seg, model(x, prior=present).seg
    expected = F.logsigmoid(torch.tensor(-PRIOR_LOGIT)) - F.logsigmoid(torch.tensor(PRIOR_LOGIT))
    assert torch.allclose(a[:, 1 + dress] - p[:, 1 + dress], expected.expand_as(a[:, 0]), atol=1e-4)
    others = [c for c in range(9) if c != 1 + dress]
    assert torch.equal(a[:, others], p[:, others])


def test_fastai_tensor_images_give_plain_tensors(built):
    from fastai.torch_core import TensorImage

    for name in ("extended_unet", "fpn"):
        out = built(name).eval()(TensorImage(_x()))
        assert all(type(t) is torch.Tensor for t in out if t is not None)


def test_box_branch_models_reject_another_input_size(built):
    with pytest.raises(ValueError, match=r"built for 64×64 images .* got 96×64"):
        built("extended_unet")(_x(2, (96, 64)))
    assert built("classbranch_only").eval()(_x(2, (96, 64))).seg.shape == (2, 9, 96, 64)


def test_local_encoder_weights_file_serves_fastai_and_smp_models(tmp_path):
    from torchvision.models import resnet18, resnet34

    torch.manual_seed(1)
    sd = resnet34().state_dict()
    sd["bn1.running_mean"] = torch.rand(64)                # a buffer too, distinguishable from init
    path = tmp_path / "resnet34.pth"
    torch.save(sd, path)
    unet = build_model("unet", input_size=SIZE, encoder_weights=path)
    assert torch.equal(unet.encoder[0].weight, sd["conv1.weight"])
    assert torch.equal(unet.encoder[1].running_mean, sd["bn1.running_mean"])
    assert torch.equal(unet.encoder[7][2].conv2.weight, sd["layer4.2.conv2.weight"])
    fpn = build_model("fpn", input_size=SIZE, encoder_weights=str(path))
    assert torch.equal(fpn.encoder.conv1.weight, sd["conv1.weight"])
    assert torch.equal(fpn.encoder.layer4[2].conv2.weight, sd["layer4.2.conv2.weight"])
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in sd.items() if not k.startswith("fc.")}, tmp_path / "r34.safetensors")
    ext = build_model("extended_unet", input_size=SIZE, encoder_weights=tmp_path / "r34.safetensors")
    assert torch.equal(ext.encoder[6][0].conv1.weight, sd["layer3.0.conv1.weight"])

    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_model("unet", input_size=SIZE, encoder_weights=tmp_path / "nope.pth")
    torch.save(resnet18().state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(ValueError, match=r"resnet18\.pth.*\(keys: \d+ missing \(layer1\.2"):
        build_model("fpn", input_size=SIZE, encoder_weights=tmp_path / "resnet18.pth")
    torch.save({"not": "tensors"}, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="junk.pth"):
        build_model("unet", input_size=SIZE, encoder_weights=tmp_path / "junk.pth")


def test_unknown_names_and_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'unet3'.*extended_unet"):
        build_model("unet3")
    with pytest.raises(ValueError, match="input_size"):
        build_model("unet", input_size=(64,))
    with pytest.raises(ValueError, match="unknown encoder 'efficientnet-b0'.*tf_efficientnet_lite0"):
        build_model("unet", encoder_name="efficientnet-b0", input_size=SIZE)
    with pytest.raises(ValueError, match="unknown encoder 'efficientnet-b0'"):
        build_model("fpn", encoder_name="efficientnet-b0", input_size=SIZE)


def test_extended_unet_at_the_paper_size():
    torch.manual_seed(0)
    model = build_model("extended_unet", input_size=(288, 192)).eval()
    assert isinstance(model, ExtendedUnet) and model.deepest_shape == (512, 9, 6)
    assert model.box_branch[1].in_features == 512 * 9 * 6
    assert model.tail.convpath[0][0].in_channels == 96 + 3 + 8 + 32
    assert model.class_branch[2].in_features == 1024 and model.class_branch[-1].out_features == 8
    with torch.no_grad():
        out = model(_x(1, (288, 192)))
    assert out.seg.shape == (1, 9, 288, 192) and out.boxes.shape == (1, 32)
