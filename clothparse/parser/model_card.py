"""The model card of a packaged parser (``README.md`` of :mod:`clothparse.parser.package`): Markdown with the Hub's YAML
header, written from ``config.json`` alone, so the card and the config cannot disagree."""
from __future__ import annotations

__all__ = ["model_card"]


def _iou(v) -> str:
    return "–" if v is None else f"{float(v):.1f}"


def _scores(metrics: dict, classes: list[str]) -> list[str]:
    if not metrics.get("test") and not metrics.get("valid"):
        return ["The run was not evaluated: no scores."]
    lines = ["Intersection over union in %, each split pooled over its images (`pooled`: one IoU of all pixels; "
             "`mean`: the mean of the per-class IoUs over the classes present in the ground truth or the "
             "prediction), computed by clothparse's evaluation; `test` without a prior. Other parsers report "
             "other numbers: pixel accuracy (the share of pixels whose class is right, background included; "
             "CCP's paper) and the mean IoU with background (SCHP, SegFormer parsers).", "",
             "| split | images | pooled IoU excl. background | mean IoU excl. background | "
             "mean IoU with background | pixel accuracy | IoU clothing vs background |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for split in ("test", "valid"):
        m = metrics.get(split)
        if m:
            lines.append(f"| {split} | {m.get('n_images') or '–'} | {_iou(m.get('pooled_excl_bg'))} | "
                         f"{_iou(m.get('mean_excl_bg'))} | {_iou(m.get('mean_overall'))} | "
                         f"{_iou(m.get('pixel_accuracy'))} | {_iou(m.get('mask'))} |")
    found = (metrics.get("test") or metrics.get("valid") or {}).get("per_class") or {}
    per_class = {c: found[c] for c in classes if c in found}
    if per_class:
        split = "test" if metrics.get("test") else "valid"
        lines += ["", f"Per class ({split}):", "", "| " + " | ".join(per_class) + " |",
                  "|" + "---:|" * len(per_class), "| " + " | ".join(_iou(v) for v in per_class.values()) + " |"]
    return lines


def _provenance(config: dict) -> list[str]:
    run, prov = config.get("run") or {}, config.get("provenance") or {}
    train = run.get("train") or {}
    epochs = (train.get("epochs_frozen") or 0) + (train.get("epochs_unfrozen") or 0)
    lines = [f"- run `{run.get('id')}` of profile `{run.get('profile')}`, data `{run.get('data')}` "
             f"({run.get('variant')}), store `{str(run.get('store_key') or '')[:12]}`",
             f"- encoder initialised with `{run.get('encoder_weights')}` weights; {epochs} epochs "
             f"(frozen encoder {train.get('epochs_frozen')}), batch {train.get('batch_size')}, "
             f"lr {train.get('lr_max')}, seed {train.get('seed')}"]
    if prov:
        packages = ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v)
        lines += [f"- trained {prov.get('started')} → {prov.get('finished', '?')} on {prov.get('device_description')}",
                  f"- code: git `{prov.get('git_commit')}`, Python {prov.get('python')}; {packages}"]
    return lines


def model_card(config: dict, card_data=None) -> str:
    """The card's Markdown for ``config`` (a package's ``config.json``); ``card_data``: the Hub header's fields
    (a ``huggingface_hub.ModelCardData``)."""
    size = "×".join(str(v) for v in config["input_size"])
    norm = config["normalisation"]
    header = card_data.to_yaml() if card_data is not None else "library_name: clothparse"
    title = f"clothparse parser: {config['model']} ({config['encoder_name']}), {size}"
    lines = [
        "---", header, "---", f"# {title}", "",
        "A clothing parser: every pixel of a photo of a person becomes one of "
        f"{len(config['classes'])} classes ({', '.join(config['classes'])}); "
        "[clothparse](https://github.com/clothparse/clothparse) adds the garments' boxes and colours.", "",
        "## Use", "", "```bash", "pip install clothparse",
        "clothparse parse my_photos/ --model <this folder or owner/name> --out parsed/", "```", "",
        "```python", "from clothparse.parser.parse import Parser", "",
        'parser = Parser.from_pretrained("<this folder or owner/name>")',
        'result = parser("photo.jpg")[0]  # .mask (H×W class ids), .classes, .boxes, .colours', "```", "",
        "## Model", "",
        "| | |", "|---|---|",
        f"| architecture | `{config['model']}` (`clothparse.models.build_model`) |",
        f"| encoder | `{config['encoder_name']}` |",
        f"| parameters | {config.get('parameters', '–'):,} |" if isinstance(config.get("parameters"), int)
        else "| parameters | – |",
        f"| input | RGB resized to {size} (H×W, aspect ratio not kept), `(x/255 − mean) / std`, "
        f"mean {norm['mean']}, std {norm['std']} |",
        f"| output | {len(config['classes'])} logit planes at {size}; the parser resizes them to the photo "
        "bilinearly and takes the argmax |",
        "| files | `config.json` (this description), `model.safetensors` (weights)"
        + (", `model.onnx`" if config.get("onnx") else "") + " |", "",
        "## Scores", "", *_scores(config.get("metrics") or {}, list(config["classes"])), "",
        "## Provenance", "", *_provenance(config), "",
        "## Limits", "",
        f"- It sees every photo at {size}: thin garments and small bags of a large photo are coarse.",
        "- Trained on the data named above only; photos unlike it (other poses, several people, other "
        "garments) parse worse than the scores say.", "",
    ]
    return "\n".join(lines)
