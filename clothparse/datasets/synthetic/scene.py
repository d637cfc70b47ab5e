"""One image: which kind of scene it is, the background, where the people stand, and :func:`draw_image`."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from clothparse.datasets.synthetic.elements import Scene
from clothparse.datasets.synthetic.geometry import FULL_HEIGHT, Placement, bbox_of, placement
from clothparse.datasets.synthetic.ids import EXCLUDED_CLASS
from clothparse.datasets.synthetic.outfit import dress_up, product
from clothparse.datasets.synthetic.paint import camera, ground_truth, paint
from clothparse.datasets.synthetic.person import Body, Person
from clothparse.datasets.synthetic.records import SyntheticImage, image_id
from clothparse.datasets.synthetic.textures import garment_tex, grid, near_colour, rand_colour, render_tex


def draw_image(seed: int, index: int, *, height: int = 288, width: int = 192, second_person_share: float = 0.25,
               jumpsuit_share: float = 0.03, product_share: float = 0.05) -> SyntheticImage:
    """Draw image ``index`` of the dataset of ``seed`` (see the package docstring for what it guarantees)."""
    h, w = int(height), int(width)
    if h < 16 or w < 16:
        raise ValueError(f"image size must be at least 16×16, got {h}×{w}")
    kind, second = scene_kind(seed, index, product_share, jumpsuit_share, second_person_share)
    # one random stream per image, drawn from in a fixed order: people, background, row order, camera
    rng = np.random.default_rng([int(seed), int(index), 0x5EED])
    scene = Scene(rng, h, w)
    people = [_product_shot(scene)] if kind == "product" else _people(scene, kind, second)
    canvas = background(rng, h, w, kind == "product")
    painted, persons = paint(scene, people, canvas, boxes=kind != "product")
    instances, visible_cls = ground_truth(scene, painted)
    order = rng.permutation(len(instances))         # real CSV rows come in no particular order
    instances = [instances[i] for i in order]
    image = camera(rng, painted.canvas)
    semantic = visible_cls.copy()
    semantic[semantic == EXCLUDED_CLASS] = 0
    return SyntheticImage(image_id(seed, index), image, instances, persons, semantic, kind)


def scene_kind(seed, index, product_share, jumpsuit_share, second_person_share) -> tuple[str, bool]:
    """``(kind, second person?)`` of image ``index``.

    Low-discrepancy (Weyl) sequences: shares stay close to the requested ones for any number of images.
    """
    o1 = (seed * 0.7548776662466927 + 0.1) % 1.0
    o2 = (seed * 0.5698402909980532 + 0.3) % 1.0
    u1 = (o1 + index * 0.6180339887498949) % 1.0
    u2 = (o2 + index * 0.41421356237309515) % 1.0
    if u1 < product_share:
        return "product", False
    kind = "jumpsuit" if u1 < product_share + jumpsuit_share else "person"
    p2 = second_person_share / max(1.0 - product_share, 1e-9)
    return kind, u2 < p2


def _product_shot(scene: Scene) -> tuple[Person, Placement, bool]:
    """One product, centred and filling most of the frame."""
    rng, h, w = scene.rng, scene.h, scene.w
    p = Person(scene, True, h_px=h / 6, body=Body(rng, pose=False))
    product(p)
    lo, hi = bbox_of(p.elems, placement(1.0, 0.0, 0.0))
    span = np.maximum(hi - lo, 1e-3)
    scale = min(rng.uniform(0.65, 0.9) * h / span[1], rng.uniform(0.65, 0.9) * w / span[0])
    centre = np.array([w, h]) / 2 + rng.uniform(-0.06, 0.06, 2) * [w, h]
    return p, placement(scale, *(centre - scale * (lo + hi) / 2)), True


def _people(scene: Scene, kind: str, second: bool) -> list[tuple[Person, Placement, bool]]:
    """The annotated person (framed full, close or small), and behind it maybe an unannotated one."""
    rng, h, w = scene.rng, scene.h, scene.w
    framing = rng.choice(["full", "close", "small"], p=[0.7, 0.2, 0.1])
    heights = {"full": rng.uniform(0.72, 0.96), "close": rng.uniform(1.0, 1.45), "small": rng.uniform(0.45, 0.7)}
    hp = heights[framing] * h
    scale = hp / FULL_HEIGHT
    y_top = rng.uniform(0.01, 0.04) * h if framing != "full" else rng.uniform(0.0, max(h - hp, 1.0))
    x_c = rng.uniform(0.3, 0.7) * w
    lean1, mirror1 = rng.uniform(-0.08, 0.08), int(rng.choice([-1, 1]))
    p1 = Person(scene, True, h_px=scale)
    dress_up(p1, kind)
    if not second:
        return [(p1, placement(scale, x_c, y_top, lean1, mirror1), True)]
    # make room: the annotated person takes at most about 60 % of the width, on one side
    lo, hi = bbox_of(p1.elems, placement(scale, 0.0, y_top, lean1, mirror1))
    room = rng.uniform(0.5, 0.65) * w
    if hi[0] - lo[0] > room:
        scale *= room / (hi[0] - lo[0])
        lo, hi = bbox_of(p1.elems, placement(scale, 0.0, y_top, lean1, mirror1))
    on_right = bool(rng.random() < 0.5)
    margin = rng.uniform(-0.04, 0.06) * w
    x_c = (w - margin - hi[0]) if on_right else (margin - lo[0])
    pl1 = placement(scale, x_c, y_top, lean1, mirror1)
    p2 = Person(scene, False, h_px=scale)
    dress_up(p2, "person")
    return [(p2, _beside(scene, p2, bbox_of(p1.elems, pl1), scale, on_right), False), (p1, pl1, True)]


def _beside(scene: Scene, p2: Person, box1, scale: float, on_right: bool) -> Placement:
    """Place the unannotated person beside the first (box ``box1``), barely overlapping it and at least 40 %
    inside the image; the best of a few random tries, or a small person on the free side."""
    rng, h, w = scene.rng, scene.h, scene.w
    lo1, hi1 = box1
    best = None
    for attempt in range(16):
        s2 = scale * rng.uniform(0.45, 1.05) * (1 - attempt / 24)
        y2 = rng.uniform(-0.05, 0.35) * h
        lean, mirror = rng.uniform(-0.08, 0.08), int(rng.choice([-1, 1]))
        lo2, hi2 = bbox_of(p2.elems, placement(s2, 0.0, y2, lean, mirror))
        width2 = hi2[0] - lo2[0]
        gap = rng.uniform(-0.08, 0.1) * width2
        if on_right:   # first person on the right → second on the left
            dx = lo1[0] - gap - hi2[0]
        else:
            dx = hi1[0] + gap - lo2[0]
        vis = (min(hi2[0] + dx, w) - max(lo2[0] + dx, 0)) * (min(hi2[1], h) - max(lo2[1], 0))
        frac = vis / max((hi2[0] - lo2[0]) * (hi2[1] - lo2[1]), 1e-9)
        overlap = max(0.0, min(hi1[0], hi2[0] + dx) - max(lo1[0], lo2[0] + dx)) / max(width2, 1e-9)
        score = (frac >= 0.4, -overlap)
        if best is None or score > best[0]:
            best = (score, placement(s2, dx, y2, lean, mirror), frac)
        if frac >= 0.4 and overlap <= 0.1:
            break
    if best[2] < 0.4:   # no try was visible enough
        s2 = scale * 0.45
        lo2, hi2 = bbox_of(p2.elems, placement(s2, 0.0, 0.1 * h))
        dx = -lo2[0] if on_right else w - hi2[0]
        return placement(s2, dx, 0.1 * h)
    return best[1]


def background(rng, h, w, product):
    """A gradient; for people also a floor, random shapes and textured patches (curtains, posters)."""
    yy, xx = grid(h, w)
    if product:
        c1 = np.full(3, rng.uniform(0.82, 1.0), np.float32) * near_colour(rng, np.ones(3, np.float32), 0.06)
        c2 = np.clip(c1 * rng.uniform(0.88, 1.0), 0, 1)
    else:
        c1, c2 = rand_colour(rng, (0, 0.6)), rand_colour(rng, (0, 0.6))
    a = rng.uniform(0, 2 * np.pi)
    u = (xx * math.cos(a) + yy * math.sin(a))
    u = (u - u.min()) / max(float(u.max() - u.min()), 1.0)
    out = c1 + u[..., None] * (c2 - c1)
    if product:
        return out.astype(np.float32)
    img = Image.fromarray((out * 255).astype(np.uint8))
    _clutter(rng, ImageDraw.Draw(img), h, w)
    out = np.asarray(img, dtype=np.float32) / 255
    for _ in range(int(rng.integers(0, 3))):  # textured patches
        spec = garment_tex(rng, [0, 40, 30, 15, 0, 15, 0, 0], h_px=h / 8)
        x0, y0 = int(rng.uniform(0, 0.8) * w), int(rng.uniform(0, 0.8) * h)
        x1 = min(x0 + max(int(rng.uniform(0.1, 0.5) * w), 1), w)
        y1 = min(y0 + max(int(rng.uniform(0.1, 0.5) * h), 1), h)
        out[y0:y1, x0:x1] = render_tex(spec, h, w, (y0, y1, x0, x1))
    return out


def _clutter(rng, draw: ImageDraw.ImageDraw, h, w):
    """Sometimes a floor, then 3 to 14 random rectangles, ellipses and pentagons."""
    if rng.random() < 0.5:
        y = rng.uniform(0.6, 0.9) * h
        draw.polygon([(0, y), (w, y + rng.uniform(-0.05, 0.05) * h), (w, h), (0, h)],
                     fill=tuple(int(v) for v in rand_colour(rng, (0, 0.5)) * 255))
    for _ in range(int(rng.integers(3, 15))):
        col = tuple(int(v) for v in rand_colour(rng) * 255)
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.05, 0.6) * w, y0 + rng.uniform(0.05, 0.6) * h
        shape = rng.integers(3)
        if shape == 0:
            draw.rectangle([x0, y0, x1, y1], fill=col)
        elif shape == 1:
            draw.ellipse([x0, y0, x1, y1], fill=col)
        else:
            pts = np.stack([rng.uniform(x0, x1, 5), rng.uniform(y0, y1, 5)], 1)
            draw.polygon(pts.ravel().tolist(), fill=col)
