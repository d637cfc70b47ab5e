"""Figure 1 of the paper (the Extended U-Net's architecture), drawn from the model itself: :func:`trace_model`
records a model's parts, output shapes and data flow in one forward pass; :func:`architecture_figure`
draws them as the U; :func:`architecture_table` lists them (or every model's size and cost).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clothparse.models import build_model, model_summary
from clothparse.report.common import _no_nan

#: Box colours by a part's role.
ROLE_COLOURS = {"input": "#eeeeee", "encoder": "#cfe3f6", "decoder": "#d9f0d3", "branch": "#fde0c5"}
BOX_W, BOX_H = 0.9, 0.74
ARROW = {"arrowstyle": "-|>", "mutation_scale": 7, "lw": 0.8, "shrinkA": 0, "shrinkB": 0}


# --- tracing -------------------------------------------------------------------------------------------
def _flat_tensors(obj) -> list:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _flat_tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _flat_tensors(o)]
    return []


def _type_label(module) -> str:
    from torch import nn

    kids = list(module.children())
    if type(module) is nn.Sequential and kids and len({type(k) for k in kids}) == 1:
        return f"{len(kids)}× {type(kids[0]).__name__}"
    return type(module).__name__


def _trace_targets(model) -> list[tuple[str, object, str]]:
    """``(name, module, role)`` of the parts to record: the encoder's children, and the other modules at
    the level where the encoder sits (containers opened)."""
    from torch import nn

    encoder = getattr(model, "encoder", None)
    targets: list[tuple[str, nn.Module, str]] = []

    def contains(module, inner) -> bool:
        return inner is not None and any(m is inner for m in module.modules())

    def visit(module, prefix: str) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if child is encoder:
                targets.extend((f"{full}.{n}", c, "encoder") for n, c in child.named_children())
            elif isinstance(child, (nn.ModuleList, nn.ModuleDict)) or contains(child, encoder):
                visit(child, full + ".")
            else:
                targets.append((full, child, "branch" if "branch" in name.lower() else "decoder"))

    visit(model, "")
    return targets


def _record_calls(model, targets, input_size) -> tuple[list[dict], int]:
    """One record per call of a target in a forward pass of a zero image, and the input tensor's id."""
    import torch

    records: list[dict] = []
    keep: list = []   # every traced tensor stays alive, so no id() is reused during the pass

    def make_hook(name, kind):
        def hook(module, inputs, output):
            outs, ins = _flat_tensors(output), _flat_tensors(inputs)
            keep.extend(outs + ins)
            records.append({"name": name, "type": _type_label(module), "kind": kind,
                            "shape": tuple(outs[0].shape[1:]) if outs else (),
                            "params": sum(p.numel() for p in module.parameters()),
                            "in": [id(t) for t in ins], "out": [id(t) for t in outs]})
        return hook

    hooks = [m.register_forward_hook(make_hook(n, k)) for n, m, k in targets]
    was_training = model.training
    x = torch.zeros(1, 3, *input_size)
    keep.append(x)
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return records, id(x)


def _dataflow_edges(recs: list[dict], input_id: int) -> list[tuple[int, int]]:
    """``(producer, consumer)`` for every tensor a part reads: the latest earlier part that wrote it (-1: the input)."""
    edges = []
    for j, r in enumerate(recs):
        producers = set()
        for tid in r["in"]:
            if tid == input_id:
                producers.add(-1)
                continue
            for i in range(j - 1, -1, -1):
                if tid in recs[i]["out"]:
                    producers.add(i)
                    break
        edges.extend((i, j) for i in sorted(producers))
    return edges


def trace_model(model, input_size: tuple[int, int] = (288, 192)) -> tuple[list[dict], list[tuple[int, int]]]:
    """Forward a zero image once through ``model`` and record its parts in call order — the encoder's
    children, and the other modules at the level where the encoder sits (containers opened) — with their
    output shape, parameter count and role (encoder / decoder / branch), and the data-flow edges
    ``(producer, consumer)`` between them (found by tensor identity; index -1 is the input image)."""
    records, input_id = _record_calls(model, _trace_targets(model), input_size)
    seen, recs = set(), []
    for r in records:   # a module called twice keeps its first call
        if r["name"] not in seen:
            seen.add(r["name"])
            recs.append(r)
    return recs, _dataflow_edges(recs, input_id)


def _as_model(model, input_size, encoder_name: str = "resnet34"):
    """A model built by name with the encoder ``encoder_name`` (random weights), or the given module as it is."""
    if isinstance(model, str):
        return build_model(model, encoder_name=encoder_name, input_size=input_size, encoder_weights=None)
    return model


def architecture_table(model_name=None, input_size: tuple[int, int] = (288, 192),
                       encoder_name: str = "resnet34") -> pd.DataFrame:
    """No model name: ``clothparse.models.model_summary`` of every model with the encoder ``encoder_name``
    (parameters in millions, GFLOP per image). A model (name, built with ``encoder_name``, or module): its
    traced parts in call order (module, type, role, output shape, parameters)."""
    input_size = tuple(int(v) for v in input_size)
    if model_name is None:
        names = {"params_m": "parameters (M)", "gflop_forward": "GFLOP forward",
                 "gflop_forward_backward": "GFLOP forward+backward", "gflop_inference": "GFLOP inference"}
        return _no_nan(model_summary(input_size=input_size, encoder_name=encoder_name).rename(columns=names))
    recs, _ = trace_model(_as_model(model_name, input_size, encoder_name), input_size)
    return pd.DataFrame([{"module": r["name"], "type": r["type"], "role": r["kind"],
                          "output (C×H×W)": "×".join(map(str, r["shape"])), "parameters": r["params"]}
                         for r in recs])


# --- Figure 1 ------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    """Where each traced part sits: x = call order, y = −log2 of its downsampling; branches below."""

    recs: list[dict]
    levels: list[float | None]   # None: an output without a spatial size (a branch)
    deepest: float
    branch_y: float
    pos: dict[int, tuple[float, float]]

    @classmethod
    def of(cls, recs: list[dict], input_height: int) -> _Layout:
        levels = [float(np.log2(input_height / r["shape"][1])) if len(r["shape"]) == 3 and r["shape"][1] > 0
                  else None for r in recs]
        deepest = max([lv for lv in levels if lv is not None] or [0.0])
        branch_y = -(deepest + 1.5)
        pos = {-1: (-1.0, 0.0)}
        pos.update({i: (float(i), branch_y if lv is None else -lv) for i, lv in enumerate(levels)})
        return cls(recs, levels, deepest, branch_y, pos)

    def kind(self, i: int) -> str:
        return "input" if i < 0 else self.recs[i]["kind"]


def _injection_target(model, names: list[str]) -> tuple[str | None, int | None]:
    """The model's documented injection (clothparse.models.ExtendedUnet) and the part it feeds."""
    injection = getattr(model, "injection", None)
    if injection == "concat" and "tail" in names:
        return injection, names.index("tail")
    if injection == "multiply" and "head" in names:
        return injection, names.index("head")
    return injection, None


def _implied_edges(model, recs, edges, injection, merge_to) -> list[tuple[int, int]]:
    """Flows the tensor identities miss: new tensors built inside forward (concatenations, injections)."""
    from clothparse.models import FastaiUnet  # its module loads fastai, which only the fastai U-Nets need

    names = [r["name"] for r in recs]
    trunk = [i for i, r in enumerate(recs) if r["kind"] != "branch"]
    fed = {j for _, j in edges}
    # a trunk part fed by a new tensor (e.g. a concatenation) continues from the trunk part before it
    extra = [(a, b) for a, b in zip(trunk[:-1], trunk[1:]) if b not in fed]
    if merge_to is not None:
        extra += [(i, merge_to) for i, r in enumerate(recs)
                  if r["kind"] == "branch" and (r["name"] == "class_branch" or injection == "concat")]
    if isinstance(model, FastaiUnet) and "tail" in names:
        extra.append((-1, names.index("tail")))  # DynamicUnet's last cross: the input image joins the tail
    return extra


def _wrap(text: str, width: int = 13) -> str:
    """``text`` in lines of at most ``width`` characters where it can be: broken between words, and inside a
    long CamelCase name between its parts (``2× InvertedResidual`` → ``2× Inverted`` / ``Residual``), so
    timm's and fastai's longer class names stay inside their box."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        parts = re.split(r"(?<=[a-z0-9])(?=[A-Z])", word) if len(word) > width else [word]
        for k, part in enumerate(parts):
            joined = current + (" " if current and k == 0 else "") + part
            if current and len(joined) > width:
                lines.append(current)
                current = part
            else:
                current = joined
    return "\n".join([*lines, current])


def _draw_boxes(ax, lay: _Layout, input_size) -> None:
    from matplotlib.patches import FancyBboxPatch

    labels = {-1: f"input\n3×{input_size[0]}×{input_size[1]}"}
    for i, r in enumerate(lay.recs):
        short = re.sub(r"^(net\.)?encoder\.", "enc.", r["name"])
        labels[i] = f"{short}\n{_wrap(r['type'])}\n{'×'.join(map(str, r['shape'])) or '—'}"
    for i, label in labels.items():
        x, y = lay.pos[i]
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H, boxstyle="round,pad=0.02",
                                    fc=ROLE_COLOURS[lay.kind(i)], ec="0.3", lw=0.7))
        ax.text(x, y, label, ha="center", va="center", fontsize=5.9)


def _edge_style(lay: _Layout, i: int, j: int) -> str:
    """flow (trunk), skip (encoder → decoder at a shallower level), branch (branch output injected back),
    or refeed (the input image joining a later part)."""
    src, dst = lay.kind(i), lay.kind(j)
    if src == "branch":
        return "branch"
    if dst == "branch" or j == i + 1 or (i < 0 and j == 0):
        return "flow"
    if src == "encoder" and dst == "decoder" and lay.levels[i] is not None and lay.levels[i] < lay.deepest:
        return "skip"
    return "refeed" if i < 0 else "flow"


def _arrow(ax, lay: _Layout, i: int, j: int, style: str) -> None:
    from matplotlib.patches import FancyArrowPatch

    (xa, ya), (xb, yb) = lay.pos[i], lay.pos[j]
    top_a, top_b = (xa, ya + BOX_H / 2), (xb, yb + BOX_H / 2)
    if style == "skip":
        patch = FancyArrowPatch(top_a, top_b, color="C0", ls="--", connectionstyle="arc3,rad=-0.18", **ARROW)
    elif style == "branch":
        patch = FancyArrowPatch(top_a, (xb, yb - BOX_H / 2), color="C1", **ARROW)
    elif style == "refeed":
        patch = FancyArrowPatch(top_a, top_b, color="0.5", ls=":", connectionstyle="arc3,rad=-0.04", **ARROW)
    else:
        start = (xa + BOX_W / 2, ya) if xb > xa else (xa, ya - BOX_H / 2)
        end = (xb - BOX_W / 2, yb) if xb > xa else top_b
        patch = FancyArrowPatch(start, end, color="0.35", **ARROW)
    ax.add_patch(patch)


def _finish_axes(ax, lay: _Layout, injection: str | None, merged: bool) -> None:
    """Limits, the resolution axis and the legend."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    has_branch = any(r["kind"] == "branch" for r in lay.recs)
    ax.set_xlim(-1.6, len(lay.recs) - 0.4)
    ax.set_ylim((lay.branch_y if has_branch else -lay.deepest) - 0.7, 1.3)
    ticks = list(range(int(lay.deepest) + 1))
    ax.set_yticks([-t for t in ticks], [f"1/{2 ** t}" for t in ticks], fontsize=7)
    ax.set_ylabel("resolution (of the input)")
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    kinds = {r["kind"] for r in lay.recs}
    handles = [Patch(fc=c, ec="0.3", label=k) for k, c in ROLE_COLOURS.items() if k in kinds]
    handles += [Line2D([], [], color="C0", ls="--", lw=0.8, label="skip connection"),
                Line2D([], [], color="0.5", ls=":", lw=0.8, label="input image fed again")]
    if merged:
        handles.append(Line2D([], [], color="C1", lw=0.8, label=f"branch logits injected ({injection})"))
    ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=False)


def architecture_figure(model_name="extended_unet", input_size: tuple[int, int] = (288, 192),
                        encoder_name: str = "resnet34"):
    """Figure 1, drawn from the model itself (:func:`trace_model`): one box per part in call order, at the
    depth of its output resolution, so the encoder descends and the decoder climbs back (the U); branches
    (outputs without a spatial size) hang below. Arrows are the traced data flow: solid along the trunk,
    dashed blue for skip connections, orange for branch outputs injected back into the segmentation.
    ``model_name``: a :func:`clothparse.models.build_model` name (built with the encoder ``encoder_name`` and
    random weights) or a module (drawn as it is; ``encoder_name`` is then not used)."""
    import matplotlib.pyplot as plt

    input_size = tuple(int(v) for v in input_size)
    model = _as_model(model_name, input_size, encoder_name)
    title = f"{model_name} ({encoder_name} encoder)" if isinstance(model_name, str) else type(model).__name__
    recs, edges = trace_model(model, input_size)
    if not recs:
        raise ValueError(f"{title}: no part of the model was called in the forward pass")
    lay = _Layout.of(recs, input_size[0])
    injection, merge_to = _injection_target(model, [r["name"] for r in recs])
    fig, ax = plt.subplots(figsize=(max(8.0, 0.82 * (len(recs) + 1) + 0.8), 1.05 * (lay.deepest + 2.6) + 1.0),
                           layout="constrained")
    _draw_boxes(ax, lay, input_size)
    for i, j in edges + _implied_edges(model, recs, edges, injection, merge_to):
        _arrow(ax, lay, i, j, _edge_style(lay, i, j))
    _finish_axes(ax, lay, injection, merged=merge_to is not None)
    ax.set_title(f"{title}: its parts in call order, with output shapes (C×H×W) from one forward pass at "
                 f"{input_size[0]}×{input_size[1]}\nheight = resolution; arrows = traced data flow", fontsize=9)
    return fig
