"""The encoders every model can take, with random weights (nothing downloaded): their names checked, the two
families told apart, each family's input normalisation, and the fastai U-Net body of each — a Sequential whose
children halve the resolution step by step, with the channels and parameter counts of the torchvision ResNets
(without their fc) and of timm's EfficientNet-Lite stages."""
import pytest
import torch
from torch import nn

from clothparse.images import IMAGENET_STATS
from clothparse.models.encoders import (
    ENCODER_NAMES,
    TORCHVISION_RESNETS,
    check_encoder_name,
    encoder_stats,
    is_lite,
    resnet_body,
    unet_body,
)
from clothparse.models.lite import LITE_ENCODERS, LITE_STATS

RESNET_STEPS = [(64, 32), (64, 32), (64, 32), (64, 16)]        # conv1, bn1, relu, maxpool on a 64×64 image
#: (channels, side) after each child of the body, on a 64×64 image
BODY_SHAPES = {
    "resnet18": RESNET_STEPS + [(64, 16), (128, 8), (256, 4), (512, 2)],
    "resnet34": RESNET_STEPS + [(64, 16), (128, 8), (256, 4), (512, 2)],
    "resnet50": RESNET_STEPS + [(256, 16), (512, 8), (1024, 4), (2048, 2)],
    "tf_efficientnet_lite0": [(32, 32), (32, 32), (16, 32), (24, 16), (40, 8), (80, 4), (112, 4), (192, 2), (320, 2)],
}
#: torchvision's published parameter counts minus the fc layer (512·1000+1000, 2048·1000+1000)
RESNET_PARAMETERS = {"resnet18": 11_689_512 - 513_000, "resnet34": 21_797_672 - 513_000,
                     "resnet50": 25_557_032 - 2_049_000}


def test_encoder_names_are_checked():
    assert ENCODER_NAMES == (*TORCHVISION_RESNETS, *LITE_ENCODERS)
    assert "resnet34" in TORCHVISION_RESNETS and "tf_efficientnet_lite0" in LITE_ENCODERS
    for name in ENCODER_NAMES:
        assert check_encoder_name(name) == name
    for bad in ("efficientnet-b0", "ResNet34", "resnet", "", "tu-tf_efficientnet_lite0"):
        with pytest.raises(ValueError, match=f"unknown encoder {bad!r}; known: resnet18, .*tf_efficientnet_lite0"):
            check_encoder_name(bad)


def test_the_two_families_and_their_normalisation():
    assert [is_lite(n) for n in ENCODER_NAMES] == [False] * len(TORCHVISION_RESNETS) + [True] * len(LITE_ENCODERS)
    assert not is_lite("efficientnet-b0") and not is_lite("resnet34")
    for name in TORCHVISION_RESNETS:
        assert encoder_stats(name) == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) == tuple(map(list,
                                                                                                 IMAGENET_STATS))
    for name in LITE_ENCODERS:
        assert encoder_stats(name) == ([0.5] * 3, [0.5] * 3) == tuple(map(list, LITE_STATS))
    mean, _ = encoder_stats("resnet34")
    mean[0] = 99.0                                                 # a copy: the module's constants stay as they are
    assert encoder_stats("resnet34")[0][0] == 0.485 and IMAGENET_STATS[0][0] == 0.485
    with pytest.raises(ValueError, match="unknown encoder 'vgg16'"):
        encoder_stats("vgg16")


@pytest.mark.parametrize("name", list(BODY_SHAPES))
def test_a_unet_body_halves_the_resolution_step_by_step(name):
    torch.manual_seed(0)
    body = unet_body(name, encoder_weights=None)
    assert isinstance(body, nn.Sequential) and len(body) == len(BODY_SHAPES[name])
    x = torch.randn(2, 3, 64, 64)
    shapes = []
    with torch.no_grad():
        for child in body.eval():
            x = child(x)
            shapes.append((x.shape[1], x.shape[2]))
            assert x.shape[0] == 2 and x.shape[2] == x.shape[3]
    assert shapes == BODY_SHAPES[name]
    with torch.no_grad():
        assert torch.equal(body(torch.ones(1, 3, 64, 64)), body(torch.ones(1, 3, 64, 64)))
        assert body(torch.zeros(1, 3, 96, 64)).shape[2:] == (3, 2)  # any size divisible by 32
    if name in RESNET_PARAMETERS:
        assert sum(p.numel() for p in body.parameters()) == RESNET_PARAMETERS[name]


def test_random_weights_follow_the_seed():
    torch.manual_seed(1)
    a = unet_body("resnet18")
    torch.manual_seed(1)
    b = unet_body("resnet18")
    torch.manual_seed(2)
    c = unet_body("resnet18")
    sa, sb, sc = (m.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["0.weight"], sc["0.weight"])
    assert sa.keys() == sc.keys() and "0.weight" in sa and "7.1.conv2.weight" in sa  # ResNet children as indices


def test_the_resnet_body_is_for_resnets_only():
    with pytest.raises(ValueError, match=r"the fastai U-Net body must be a torchvision ResNet .* got "
                                         r"'tf_efficientnet_lite0'"):
        resnet_body("tf_efficientnet_lite0")
    with pytest.raises(ValueError, match="unknown encoder 'resnet9'"):
        unet_body("resnet9")
