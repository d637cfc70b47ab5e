"""The ``ccp`` profile, the real-photo study a 2-core CPU builds: the paper's protocol (an ImageNet encoder read
from its wheel, two phases, every model), three seeds for the U-Net family, and every model built at the
profile's input size — the BBBranch's flatten is sized for it — trains one step there."""
import torch

from clothparse.book import build as book
from clothparse.models import build_model
from clothparse.models.factory import MODEL_NAMES
from clothparse.models.lite import LITE_WHEELS
from clothparse.profiles import load_profile
from clothparse.training.train import compound_loss

UNET_FAMILY = ("unet", "extended_unet", "classbranch_only", "branches")


def test_the_profile_is_the_papers_protocol_on_real_photos_offline():
    p = load_profile("ccp")
    assert p.data.kind == "ccp" and p.data.root_env == "CLOTHPARSE_CCP_ROOT" and not p.refines
    assert p.encoder_name == "tf_efficientnet_lite0" in LITE_WHEELS and p.encoder_weights == "imagenet"
    assert p.train.epochs_frozen >= 1 and p.train.epochs_unfrozen >= 1
    assert set(p.models) == set(MODEL_NAMES) and len(p.models) == 8
    for model in UNET_FAMILY:
        assert len(p.seeds_for(model)) >= 3
    assert p.loss == type(p.loss)()  # the paper's weights; another balance is an ablation (--set loss.box=...)


def test_the_book_trains_and_evaluates_each_seed_of_each_model():
    p = load_profile("ccp")
    steps = book.plan(p)
    trains = [s for s in steps if s.notebook == "train"]
    evals = [s for s in steps if s.notebook == "evaluate"]
    expected = sum(len(p.seeds_for(m)) for m in p.models)
    assert len(trains) == len(evals) == expected == 4 * 3 + 4
    assert [s.output for s in trains if s.parameters["model"] == "extended_unet"] == [
        "train/extended_unet-base", "train/extended_unet-base-seed1", "train/extended_unet-base-seed2"]


def test_every_model_trains_a_step_at_the_profiles_size_from_the_wheels_weights():
    p = load_profile("ccp")
    torch.manual_seed(0)
    x = torch.randn(2, 3, *p.size)
    target = torch.randint(0, 9, (2, *p.size))
    loss_fn = compound_loss(p)
    for name in p.models:
        model = build_model(name, input_size=p.size, encoder_name=p.encoder_name, encoder_weights=p.encoder_weights)
        out = model(x)
        assert out.seg.shape == (2, 9, *p.size), name
        if name in ("extended_unet", "branches"):
            assert out.boxes is not None and out.boxes.shape == (2, 32), name
        loss = loss_fn(out, target)
        loss.backward()
        assert torch.isfinite(loss), name
