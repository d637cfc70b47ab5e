"""The typed profile: every shipped profile loads; a wrong key, type or value is refused at load time,
naming the key; overrides are checked like the file; what is derived is derived once."""
import dataclasses
import re

import pytest

from clothparse.profiles import PARAMS_DIR, Profile, ProfileError, load_profile, parse_overrides

from conftest import tiny_profile, write_profile


@pytest.mark.parametrize("name", sorted(p.stem for p in PARAMS_DIR.glob("*.yaml")))
def test_every_shipped_profile_loads_typed_and_frozen(name):
    p = load_profile(name)
    assert isinstance(p, Profile) and p.name == name
    assert isinstance(p.size, tuple) and all(isinstance(v, int) for v in p.size)
    assert isinstance(p.train.lr_max, float) and isinstance(p.train.augment, bool)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.train.batch_size = 3
    # the plain form reads back to the same profile
    assert load_profile(p.to_dict()) == p


@pytest.mark.parametrize("raw, key, says", [
    ({"train": {"augment": "false"}}, "train.augment", "expected true or false, got 'false'"),
    ({"train": {"epochs_unfrozen": 1.5}}, "train.epochs_unfrozen", "expected an integer, got 1.5"),
    ({"train": {"batch_size": 8.9}}, "train.batch_size", "expected an integer, got 8.9"),
    ({"train": {"amp": "yes"}}, "train.amp", "expected 'auto' or true or false"),
    ({"train": {"epochs_unfrozen": "ten"}}, "train.epochs_unfrozen", "expected an integer, got 'ten'"),
    ({"train": 5}, "train", "expected a mapping, got 5"),
    ({"size": [64]}, "size", "expected a list of 2 values"),
    ({"size": [64, 50]}, "size", "multiples of 32"),
    ({"data": {"kind": "imagenet"}}, "data.kind", "unknown value 'imagenet'"),
    ({"data": {"limit": 10}}, "data.limit", "unknown profile key"),
    ({"evaluate": {"keep_predictions": 8}}, "evaluate.keep_predictions", "unknown profile key"),
    ({"models": ["unet", "segformer"]}, "models", "unknown model 'segformer'"),
    ({"encoder_name": "efficientnet-b0"}, "encoder_name", "unknown encoder 'efficientnet-b0'"),
    ({"train": {"lr_max": "fast"}}, "train.lr_max", "expected a number, got 'fast'"),
    ({"device": "tpu"}, "device", "unknown value 'tpu'"),
    ({"data": {"kind": "ccp", "refine": True}}, "data.refine", "set data.refine: false"),
    ({"split": {"fractions": [0.5, 0.5, 0.5]}}, "split.fractions", "sum to 1"),
    ({"train": {"batch_size": 0}}, "train.batch_size", "must be positive"),
])
def test_bad_values_are_refused_at_load_naming_the_key(tmp_path, raw, key, says):
    base = tiny_profile(tmp_path)
    merged = {**base, **{k: ({**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v)
                         for k, v in raw.items()}}
    with pytest.raises(ProfileError) as err:
        load_profile(merged)
    assert key in str(err.value) and says in str(err.value)


def test_the_old_train_fp16_spelling_is_refused_naming_train_amp(tmp_path):
    """``train.fp16`` was renamed ``train.amp`` (it is mixed precision, and may run bf16): in a file and in --set
    the old key is an error naming the new one, never silently ignored or taken."""
    raw = tiny_profile(tmp_path)
    path = write_profile({**raw, "train": {**raw["train"], "fp16": True}}, tmp_path / "old.yaml")
    with pytest.raises(ProfileError, match=r"train\.fp16 was renamed train\.amp"):
        load_profile(path)
    path = write_profile(raw, tmp_path / "new.yaml")
    with pytest.raises(ProfileError, match=r"--set train\.fp16: train\.fp16 was renamed train\.amp"):
        load_profile(path, parse_overrides(["train.fp16=false"]))
    assert load_profile(path, parse_overrides(["train.amp=true"])).train.amp is True
    assert load_profile(path).train.amp == "auto"


def test_a_yaml_syntax_error_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: {batch_size: 8\nmodels: [unet]\n")
    with pytest.raises(ProfileError, match="broken.yaml: not valid YAML"):
        load_profile(path)


def test_overrides_are_typed_like_the_file(tmp_path):
    path = write_profile(tiny_profile(tmp_path), tmp_path / "tiny.yaml")
    p = load_profile(path, parse_overrides(["train.epochs_unfrozen=1", "train.augment=false", "size=[32, 64]"]))
    assert (p.train.epochs_unfrozen, p.train.augment, p.size) == (1, False, (32, 64))
    # YAML 1.1 reads 3e-3 as a string: a number is meant, and a number it is
    assert load_profile(path, parse_overrides(["train.lr_max=3e-3"])).train.lr_max == 0.003
    with pytest.raises(ProfileError, match="train.epochs_unfrozen: expected an integer, got 'one'"):
        load_profile(path, parse_overrides(["train.epochs_unfrozen=one"]))
    with pytest.raises(ProfileError, match="unknown profile key 'train.epoch'"):
        load_profile(path, {"train.epoch": 2})
    with pytest.raises(ProfileError, match="expected KEY=VALUE"):
        parse_overrides(["train.epochs_unfrozen"])
    # replace() goes through the same checks
    assert p.replace({"train.keep_checkpoint": True}).train.keep_checkpoint is True
    with pytest.raises(ProfileError):
        p.replace({"train.keep_checkpoint": "yes"})


def test_derived_values(tmp_path, monkeypatch):
    p = load_profile(tiny_profile(tmp_path))
    assert p.refines and p.main_variant == "refined"
    assert p.work_path == tmp_path / "work" / "tiny" and p.runs_path == tmp_path / "runs" / "tiny"
    ccp = load_profile("ccp")
    assert not ccp.refines and ccp.main_variant == "base"
    monkeypatch.setenv("CLOTHPARSE_CCP_ROOT", str(tmp_path))
    assert load_profile("ccp").data.root == str(tmp_path)


# --- training seeds -----------------------------------------------------------------------------------
def test_seeds_are_read_typed_and_checked(tmp_path):
    path = write_profile(tiny_profile(tmp_path), tmp_path / "tiny.yaml")
    one = load_profile(path)
    assert one.train.seeds == () and one.seeds == (0,)
    assert "seeds" not in one.to_dict()["train"]  # a one-seed profile's plain form (a book's cache key) is as before
    many = load_profile(path, parse_overrides(["train.seeds=[0, 1, 2]"]))
    assert many.train.seeds == (0, 1, 2) and many.seeds == (0, 1, 2)
    assert load_profile(many.to_dict()) == many
    assert load_profile(path, {"train.seeds": [4]}).seeds == (4,)
    for value, says in (([], "empty list"), ([1, 1], "repeats a seed"),
                        ([0, 1.5], "train.seeds[1]: expected an integer"),
                        ([True], "train.seeds[0]: expected an integer"), (3, "train.seeds: expected a list")):
        with pytest.raises(ProfileError, match=re.escape(says)):
            load_profile(path, {"train.seeds": value})


def test_with_seed_changes_the_run_id_and_seeds_does_not(tmp_path):
    from clothparse.runs import run_id, training_params

    p = load_profile(tiny_profile(tmp_path))
    many = p.replace({"train.seeds": [0, 1, 2]})
    s2 = many.with_seed(2)
    assert (s2.train.seed, s2.train.seeds, s2.seeds) == (2, (0, 1, 2), (0, 1, 2))

    def rid(profile):
        return run_id("unet", training_params(profile, "unet", "refined"), "storekey")

    assert rid(many) == rid(p)                    # the seed-0 run of [0, 1, 2] is the one-seed profile's run
    assert rid(many.with_seed(0)) == rid(p)
    assert rid(s2) != rid(p) and rid(s2) == rid(p.with_seed(2)) == rid(p.replace({"train.seed": 2}))
    with pytest.raises(ProfileError, match="integer"):
        p.with_seed("1")


# --- per-model seeds and loss weights ---------------------------------------------------------------------------
def test_model_seeds_are_read_typed_checked_and_fall_back_to_the_profiles_seeds(tmp_path):
    path = write_profile(tiny_profile(tmp_path), tmp_path / "tiny.yaml")
    one = load_profile(path)
    assert one.train.model_seeds == {} and "model_seeds" not in one.to_dict()["train"]  # plain form as before
    p = load_profile(path, parse_overrides(["train.model_seeds={unet: [0, 1, 2]}"]))
    assert p.train.model_seeds == {"unet": (0, 1, 2)}
    assert p.seeds_for("unet") == (0, 1, 2) and p.seeds_for("extended_unet") == (0,) == p.seeds
    assert p.seeds_text() == "seeds 0, 1, 2 (unet); seed 0 (extended_unet)"
    assert load_profile(p.to_dict()) == p
    # a model not named trains train.seeds where given; one entry is set by its dotted key
    q = load_profile(path, parse_overrides(["train.seeds=[4, 5]", "train.model_seeds.extended_unet=[7]"]))
    assert q.seeds_for("unet") == (4, 5) and q.seeds_for("extended_unet") == (7,)
    for value, says in (({"segformer": [0]}, "train.model_seeds: unknown model 'segformer'"),
                        ({"unet": []}, "train.model_seeds.unet: an empty list"),
                        ({"unet": [1, 1]}, "train.model_seeds.unet: [1, 1] repeats a seed"),
                        ({"unet": [0, 1.5]}, "train.model_seeds.unet[1]: expected an integer"),
                        ({"unet": 3}, "train.model_seeds.unet: expected a list"),
                        ([0, 1], "train.model_seeds: expected a mapping")):
        with pytest.raises(ProfileError, match=re.escape(says)):
            load_profile(path, {"train.model_seeds": value})


def test_the_default_seed_of_a_model_is_train_seed_where_the_model_trains_it(tmp_path):
    p = load_profile(tiny_profile(tmp_path, seed=1), {"train.model_seeds": {"unet": [3, 1], "extended_unet": [5, 6]}})
    assert p.default_seed("unet") == 1 and p.default_seed("extended_unet") == 5
    only = p.only_seed(6)
    assert only.seeds_for("unet") == only.seeds_for("extended_unet") == (6,) and only.train.seed == 6


def test_model_seeds_and_seeds_do_not_change_a_run_id_and_loss_weights_do(tmp_path):
    from clothparse.runs import run_id, training_params

    p = load_profile(tiny_profile(tmp_path))

    def rid(profile, model="unet"):
        return run_id(model, training_params(profile, model, "refined"), "store1")

    # the id this profile's unet run had before seeds per model and loss weights were keys
    assert rid(p) == "unet-86162ac089ff"
    for same in (p.replace({"train.model_seeds": {"unet": [0, 1, 2]}}), p.replace({"loss": {"box": 75}}),
                 p.replace({"train.model_seeds": {"extended_unet": [4]}})):
        assert rid(same) == rid(p)
    ablation = p.replace({"loss.box": 7.5})
    assert ablation.loss.box == 7.5 and ablation.to_dict()["loss"] == {"seg": 1.0, "cls": 0.5, "box": 7.5}
    assert rid(ablation) != rid(p) and training_params(ablation, "unet", "refined")["loss"]["box"] == 7.5
    assert load_profile(ablation.to_dict()) == ablation


@pytest.mark.parametrize("key, value, says", [("loss.seg", 0, "loss.seg: must be positive"),
                                               ("loss.box", -1, "loss.box: must be ≥ 0"),
                                               ("loss.cls", "half", "loss.cls: expected a number"),
                                               ("loss.bg", 1, "unknown profile key 'loss.bg'")])
def test_bad_loss_weights_are_refused_naming_the_key(tmp_path, key, value, says):
    with pytest.raises(ProfileError, match=re.escape(says)):
        load_profile(tiny_profile(tmp_path), {key: value})
    assert load_profile(tiny_profile(tmp_path), {"loss.cls": 0}).loss.cls == 0.0  # a term switched off: an ablation
