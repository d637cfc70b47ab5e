"""Painting a described scene, and deriving the ground truth from what ended up visible.

:func:`paint` rasterises every element and paints it over the canvas back to front, recording which
element owns each pixel. :func:`ground_truth` turns that ownership into instance masks that satisfy the
promises of the package docstring (the reader's rule reproduces the painted classes exactly).
:func:`camera` adds blur and sensor noise; the masks keep the hard edges of the drawing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from clothparse.datasets.synthetic.elements import Scene
from clothparse.datasets.synthetic.geometry import outline, rasterise
from clothparse.datasets.synthetic.ids import merged_class
from clothparse.datasets.synthetic.records import Instance, PersonBox
from clothparse.datasets.synthetic.textures import render_tex


@dataclass
class Painted:
    canvas: np.ndarray           # H×W×3 float32 RGB in [0, 1]
    owner: np.ndarray            # H×W int32: index (into ``masks``) of the element painted last, -1 = background
    masks: list                  # full-size mask of every element that painted a pixel, in paint order
    inst: list                   # the instance of each of those elements (-1: nothing annotated)


def paint(scene: Scene, people, canvas: np.ndarray, boxes: bool) -> tuple[Painted, list[PersonBox]]:
    """Paint ``people`` (``(person, placement, annotated)``, back to front) over ``canvas`` (in place).

    With ``boxes``, also returns each person's box: the bounding box of its whole drawn silhouette,
    including pixels later hidden behind the other person.
    """
    h, w = scene.h, scene.w
    painted = Painted(canvas, np.full((h, w), -1, np.int32), [], [])
    person_boxes = []
    for person, pl, annotated in people:
        union = _paint_person(scene, person.elems, pl, painted)
        if boxes and union.any():
            rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
            person_boxes.append((0 if annotated else 1, int(cols[0]), int(rows[0]), int(cols[-1]) + 1,
                                 int(rows[-1]) + 1, annotated))
    person_boxes.sort()
    return painted, [PersonBox(*b) for b in person_boxes]


def _texture_windows(elems, windows) -> dict[int, list[int]]:
    """Texture index → the union of the windows of the elements that use it."""
    tex_window: dict[int, list[int]] = {}
    for e, win in zip(elems, windows):
        if win is not None:
            tw = tex_window.setdefault(e.tex, list(win))
            tw[:] = [min(tw[0], win[0]), max(tw[1], win[1]), min(tw[2], win[2]), max(tw[3], win[3])]
    return tex_window


def _paint_person(scene: Scene, elems, pl, painted: Painted) -> np.ndarray:
    """Paint one person's elements; returns the union of the pixels they drew."""
    h, w = scene.h, scene.w
    canvas = painted.canvas
    masks, windows = rasterise(elems, pl, h, w)
    # each texture is rendered once, over the union of the windows of the elements that use it
    tex_window = _texture_windows(elems, windows)
    rendered: dict[int, np.ndarray] = {}
    union = np.zeros((h, w), bool)
    for e, m, win in zip(elems, masks, windows):
        if win is None:
            continue
        y0, y1, x0, x1 = win
        sub = m[y0:y1, x0:x1]
        if not sub.any():
            continue
        union[y0:y1, x0:x1] |= sub
        spec = scene.textures[e.tex]
        region = canvas[y0:y1, x0:x1]
        if spec.kind == "plain" and not spec.wave:
            region[sub] = spec.c1 * e.shade
        else:
            if e.tex not in rendered:
                rendered[e.tex] = render_tex(spec, h, w, tuple(tex_window[e.tex]))
            ty0, _, tx0, _ = tex_window[e.tex]
            region[sub] = rendered[e.tex][y0 - ty0:y1 - ty0, x0 - tx0:x1 - tx0][sub] * e.shade
        if e.edge != 1.0:
            region[outline(sub)] *= e.edge
        painted.owner[y0:y1, x0:x1][sub] = len(painted.masks)
        painted.masks.append(m)
        painted.inst.append(e.inst)
    return union


def ground_truth(scene: Scene, painted: Painted) -> tuple[list[Instance], np.ndarray]:
    """The instances to write (in registration order) and the merged class visible at each pixel.

    Garment instances start as their visible pixels, then grow under other garments where the reader's rule
    stays exact; parts and non-garment items are their visible pixels. Fully hidden garments, their parts,
    and empty instances are dropped.
    """
    insts = scene.instances
    merge = merged_class()
    n = len(insts)
    h, w = painted.owner.shape
    root = np.array([i if insts[i].parent < 0 else insts[i].parent for i in range(n)] + [-1], np.int64)
    inst_of_elem = np.array(painted.inst + [-1], np.int64)
    owner_inst = inst_of_elem[painted.owner]          # owner == -1 picks the trailing -1
    owner_root = root[owner_inst]
    is_garment = [insts[i].parent < 0 and merge[insts[i].category] > 0 for i in range(n)]
    cls_of_root = np.array([merge[insts[i].category] if is_garment[i] else 0 for i in range(n)] + [0], np.uint8)
    visible_cls = cls_of_root[owner_root]
    full = [np.zeros((h, w), bool) for _ in range(n)]
    for m, i in zip(painted.masks, painted.inst):
        if i >= 0:
            full[root[i]] |= m
    garments = [i for i in range(n) if is_garment[i]]
    vis = {g: owner_root == g for g in garments}
    garments = [g for g in garments if vis[g].any()]          # fully hidden garments are not written
    masks = {g: vis[g] for g in garments}
    if len(garments) > 1:
        masks.update(_grow_under_others(garments, full, vis, visible_cls, cls_of_root))
    out = []
    for i, inst in enumerate(insts):
        if is_garment[i]:
            if i not in masks:
                continue
            m = masks[i]
        else:
            m = owner_inst == i
            if insts[i].parent >= 0 and insts[i].parent not in masks:
                continue
        if m.any():
            out.append(Instance(inst.category, inst.attributes, m))
    return out, visible_cls


def _grow_under_others(garments, full, vis, visible_cls, cls_of_root) -> dict[int, np.ndarray]:
    """Extend each garment (largest first) over pixels of its full shape where another garment is visible,
    whenever the reader's rule still reproduces ``visible_cls``; returns the masks that grew."""
    h, w = visible_cls.shape
    # all garment pixels lie in the union of their full shapes: work on that window only
    union = np.zeros((h, w), bool)
    for g in garments:
        union |= full[g]
    rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    target = visible_cls[win]
    full_w = {g: full[g][win] for g in garments}
    vis_w = {g: vis[g][win] for g in garments}
    masks_w = dict(vis_w)
    classes = [int(cls_of_root[g]) for g in garments]
    for g in sorted(garments, key=lambda g: -int(full_w[g].sum())):
        for k in garments:
            if k == g:
                continue
            add = full_w[g] & vis_w[k] & ~masks_w[g]
            if not add.any():
                continue
            trial = dict(masks_w)
            trial[g] = masks_w[g] | add
            if _consistent([trial[x] for x in garments], classes, target):
                masks_w = trial
    grown = {}
    for g in garments:
        if masks_w[g] is not vis_w[g]:
            grown[g] = np.zeros((h, w), bool)
            grown[g][win] = masks_w[g]
    return grown


def _reader_rule(masks, classes, shape):
    """The reader's merge of garment instances: fewer pixels on top; ties: the earlier one on top."""
    out = np.zeros(shape, np.uint8)
    areas = [int(m.sum()) for m in masks]
    for i in sorted(range(len(masks)), key=lambda i: (-areas[i], -i)):
        out[masks[i]] = classes[i]
    return out


def _consistent(masks, classes, target):
    """No tie between overlapping garments of different classes, and the reader's rule gives ``target``."""
    areas = [int(m.sum()) for m in masks]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            if areas[i] == areas[j] and classes[i] != classes[j] and (masks[i] & masks[j]).any():
                return False
    return bool((_reader_rule(masks, classes, target.shape) == target).all())


def camera(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """The photo of ``canvas`` (changed in place): sometimes a slight blur (a 3×3 binomial filter, partly
    mixed in), then sensor noise; H×W×3 uint8."""
    if rng.random() < 0.6:
        soft = canvas.copy()
        soft[1:-1] = 0.25 * (canvas[:-2] + canvas[2:]) + 0.5 * canvas[1:-1]
        soft2 = soft.copy()
        soft2[:, 1:-1] = 0.25 * (soft[:, :-2] + soft[:, 2:]) + 0.5 * soft[:, 1:-1]
        canvas += np.float32(rng.uniform(0.3, 1.0)) * (soft2 - canvas)
    h, w = canvas.shape[:2]
    canvas += rng.normal(0, rng.uniform(0.005, 0.03), (h, w, 1)).astype(np.float32) * \
        rng.uniform(0.5, 1.0, 3).astype(np.float32)
    return np.asarray(Image.fromarray((np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)))
