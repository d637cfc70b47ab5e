"""The model card is written from a package's config dict alone: title, use, the model table (architecture,
encoder, parameters, input and its normalisation, files), the scores of each split and per class in the classes'
order, the provenance of the run, and what a missing entry becomes."""
import pytest

from clothparse.categories import CLASSES
from clothparse.parser.model_card import model_card


def config(**changes) -> dict:
    base = {
        "model": "extended_unet", "encoder_name": "resnet34", "input_size": [288, 192], "classes": list(CLASSES),
        "normalisation": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "parameters": 24436917, "onnx": False,
        "metrics": {"test": {"n_images": 812, "pooled_excl_bg": 61.234, "mean_excl_bg": 55.55, "mask": 90.06,
                             "mean_overall": 58.04, "pixel_accuracy": 88.23,
                             "per_class": {c: 10.0 * i for i, c in enumerate(reversed(CLASSES))}},
                    "valid": {"n_images": 400, "pooled_excl_bg": 60.0, "mean_excl_bg": None, "mask": 89.0}},
        "run": {"id": "extended_unet-0123456789ab", "profile": "paper", "data": "imaterialist", "variant": "refined",
                "store_key": "abcdef0123456789ffff", "encoder_weights": "imagenet",
                "train": {"epochs_frozen": 5, "epochs_unfrozen": 15, "batch_size": 16, "lr_max": 5e-4, "seed": 0}},
        "provenance": {"started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-02T00:00:00+00:00",
                       "device_description": "NVIDIA H100", "git_commit": "abc123", "python": "3.11.9",
                       "packages": {"torch": "2.4.0", "fastai": "2.7.15", "timm": None}},
    }
    return {**base, **changes}


def test_the_card_names_the_model_and_how_to_use_it():
    card = model_card(config())
    lines = card.split("\n")
    assert lines[:4] == ["---", "library_name: clothparse", "---", "# clothparse parser: extended_unet (resnet34), "
                                                                   "288×192"]
    assert f"{len(CLASSES)} classes ({', '.join(CLASSES)})" in card
    assert "clothparse parse my_photos/ --model <this folder or owner/name> --out parsed/" in lines
    assert 'parser = Parser.from_pretrained("<this folder or owner/name>")' in lines
    assert "| architecture | `extended_unet` (`clothparse.models.build_model`) |" in lines
    assert "| encoder | `resnet34` |" in lines and "| parameters | 24,436,917 |" in lines
    assert ("| input | RGB resized to 288×192 (H×W, aspect ratio not kept), `(x/255 − mean) / std`, "
            "mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225] |") in lines
    assert "| files | `config.json` (this description), `model.safetensors` (weights) |" in lines
    assert "- It sees every photo at 288×192: thin garments and small bags of a large photo are coarse." in lines
    assert card.endswith("\n")


def test_the_scores_of_each_split_and_per_class_in_the_classes_order():
    lines = model_card(config()).split("\n")
    test = lines.index("| test | 812 | 61.2 | 55.5 | 58.0 | 88.2 | 90.1 |")
    valid = lines.index("| valid | 400 | 60.0 | – | – | – | 89.0 |")  # a run scored before pixel accuracy
    header = lines[test - 2]
    assert "mean IoU with background" in header and "pixel accuracy" in header and "mean IoU excl. background" in header
    assert test + 1 == valid                                           # test first, then valid
    assert "Per class (test):" in lines
    header = lines.index("| " + " | ".join(CLASSES) + " |")
    assert lines[header + 1] == "|" + "---:|" * len(CLASSES)
    assert lines[header + 2] == "| " + " | ".join(f"{10.0 * (len(CLASSES) - 1 - i):.1f}" for i in
                                                  range(len(CLASSES))) + " |"


def test_a_card_without_test_scores_shows_valid_and_without_scores_says_so():
    only_valid = config(metrics={"valid": {"pooled_excl_bg": 12.34, "per_class": {"dress": 3.0, "gown": 9.0,
                                                                                  "top": 1.25}}})
    lines = model_card(only_valid).split("\n")
    assert "| valid | – | 12.3 | – | – | – | – |" in lines and not any(line.startswith("| test |") for line in lines)
    assert "Per class (valid):" in lines
    assert "| top | dress |" in lines and "| 1.2 | 3.0 |" in lines       # the package's classes only, its order
    for none in ({}, {"test": {}, "valid": None}):
        card = model_card(config(metrics=none))
        assert "The run was not evaluated: no scores." in card and "| split |" not in card
    assert "The run was not evaluated: no scores." in model_card({k: v for k, v in config().items()
                                                                  if k != "metrics"})


def test_the_provenance_of_the_run():
    lines = model_card(config()).split("\n")
    assert ("- run `extended_unet-0123456789ab` of profile `paper`, data `imaterialist` (refined), "
            "store `abcdef012345`") in lines
    assert ("- encoder initialised with `imagenet` weights; 20 epochs (frozen encoder 5), batch 16, lr 0.0005, "
            "seed 0") in lines
    assert "- trained 2026-01-01T00:00:00+00:00 → 2026-01-02T00:00:00+00:00 on NVIDIA H100" in lines
    assert "- code: git `abc123`, Python 3.11.9; torch 2.4.0, fastai 2.7.15" in lines  # packages not found left out
    bare = model_card(config(run=None, provenance=None)).split("\n")
    assert "- run `None` of profile `None`, data `None` (None), store ``" in bare
    assert "- encoder initialised with `None` weights; 0 epochs (frozen encoder None), batch None, lr None, " \
           "seed None" in bare
    assert not any(line.startswith(("- trained", "- code:")) for line in bare)
    unfinished = config(provenance={**config()["provenance"], "finished": None})
    del unfinished["provenance"]["finished"]
    assert "- trained 2026-01-01T00:00:00+00:00 → ? on NVIDIA H100" in model_card(unfinished)


def test_optional_entries_onnx_parameters_and_the_hub_header():
    lines = model_card(config(onnx=True, parameters=None)).split("\n")
    assert "| files | `config.json` (this description), `model.safetensors` (weights), `model.onnx` |" in lines
    assert "| parameters | – |" in lines
    assert "| parameters | – |" in model_card(config(parameters="many")).split("\n")

    class CardData:
        def to_yaml(self):
            return "license: mit\npipeline_tag: image-segmentation"

    assert model_card(config(), CardData()).startswith("---\nlicense: mit\npipeline_tag: image-segmentation\n---\n")
    with pytest.raises(KeyError, match="encoder_name"):
        model_card({k: v for k, v in config().items() if k != "encoder_name"})
