"""Whole outfits: a dressed person (body, garments in layers, accessories) or a product shot.

The z-order is what makes layering work: skin, tights and shoes first, then the lower garment and the
top (or the top first when it is worn over the lower garment), belt, overtop, the bare arms, the sleeves
of every layer from the inside out, and the small items last.
"""
from __future__ import annotations

import numpy as np

from clothparse.datasets.synthetic.accessories import bag, belt, glasses, hat, scarf, shoes, tights, watch
from clothparse.datasets.synthetic.cut import sleeves
from clothparse.datasets.synthetic.garments import dress, lower, overtop, top
from clothparse.datasets.synthetic.ids import (
    BAG,
    CARDIGAN,
    COAT,
    DRESS,
    JACKET,
    PANTS,
    SHIRT,
    SHOE,
    SHORTS,
    SKIRT,
    SWEATER,
    TOP,
    VEST,
)
from clothparse.datasets.synthetic.person import Person, arms, skin_body
from clothparse.datasets.synthetic.textures import HAIR, SKIN, Tex, garment_tex

# t-shirt vs sweater of the same cut: told apart only by tendencies (texture kinds here, sleeves and rib
# bands in garments.top); weights over plain, stripes, checks, dots, melange, abstract, knit, denim
_INNER_TEX_WEIGHTS = {SWEATER: [30, 12, 5, 3, 15, 5, 30, 0], TOP: [35, 15, 8, 8, 12, 12, 8, 2],
                      SHIRT: [40, 25, 20, 8, 2, 5, 0, 0]}
_LOWER = {"pants": PANTS, "skirt": SKIRT, "shorts": SHORTS}


def dress_up(p: Person, kind: str):
    """Draw a person wearing a random outfit; ``kind`` is "person" or "jumpsuit"."""
    rng = p.rng
    skin = p.sc.plain(np.clip(SKIN[rng.integers(len(SKIN))] + rng.uniform(-0.04, 0.04, 3), 0, 1))
    hair = p.sc.tex(Tex("melange", HAIR[rng.integers(len(HAIR))], HAIR[rng.integers(len(HAIR))] * 0.7,
                        seed=int(rng.integers(2**31)), wave=0.0))
    skin_body(p, skin, hair, long_hair=rng.random() < 0.45)
    if kind == "jumpsuit":
        whole = "jumpsuit"
    else:
        whole = rng.choice(["dress", "pants", "skirt", "shorts"], p=[0.28, 0.37, 0.22, 0.13])
    if whole in ("dress", "skirt", "shorts") and rng.random() < 0.3:
        tights(p)
    if rng.random() < 0.9:
        shoes(p)
    layers: list[tuple[int, int, float, float]] = []   # (instance, texture, looseness, sleeve length)
    if whole in ("dress", "jumpsuit"):
        layers.append(dress(p, garment_tex(rng, h_px=p.h_px), jumpsuit=whole == "jumpsuit"))
        lower_y, lower_e = 3.05, layers[-1][2]
    else:
        layer, waist = _separates(p, whole)
        layers.append(layer)
        lower_y, lower_e = waist, 0.08
    if rng.random() < 0.2:
        belt(p, lower_y, lower_e)
    if rng.random() < 0.42:
        cat = rng.choice([JACKET, CARDIGAN, COAT, VEST], p=[0.38, 0.25, 0.2, 0.17])
        spec = garment_tex(rng, [40, 8, 10, 3, 10, 4, 20 if cat == CARDIGAN else 3, 10 if cat == JACKET else 0],
                           p.h_px)
        layers.append(overtop(p, cat, spec))
    arms(p, skin)
    _sleeves_of_layers(p, layers)
    _small_items(p)


def _separates(p: Person, whole: str):
    """A top and a lower garment (``whole``: pants, skirt or shorts), the top tucked in or worn over it.

    Returns the top's layer tuple and the waist height.
    """
    rng = p.rng
    inner = rng.choice([TOP, SHIRT, SWEATER], p=[0.5, 0.3, 0.2])
    spec = garment_tex(rng, _INNER_TEX_WEIGHTS[inner], p.h_px)
    lower_spec = garment_tex(rng, [30, 8, 8, 3, 8, 4, 2, 37 if whole != "skirt" else 3], p.h_px)
    two_piece = whole == "skirt" and rng.random() < 0.35
    if two_piece:  # the dress look-alike: same colour and texture, a faint shade/phase difference
        c1 = np.clip(spec.c1 * rng.uniform(0.94, 1.06), 0, 1).astype(np.float32)
        phase = float(rng.uniform()) if rng.random() < 0.5 else spec.phase
        lower_spec = Tex(spec.kind, c1, spec.c2, spec.period, spec.angle, phase, spec.seed, spec.wave)
    tucked = rng.random() < (0.6 if two_piece else 0.35)
    waist = rng.uniform(2.95, 3.3)
    hem = rng.uniform(2.75, 3.0) if rng.random() < 0.12 else \
        (waist + rng.uniform(0.1, 0.3) if tucked else rng.uniform(3.3, 4.0))
    if two_piece and not tucked:
        hem = waist + rng.uniform(0.1, 0.3)
    if not tucked:
        lower(p, _LOWER[whole], lower_spec, waist)
    layer = top(p, inner, spec, hem, sweater_like=inner == TOP and rng.random() < 0.25)
    if tucked:
        lower(p, _LOWER[whole], lower_spec, waist)
    return layer, waist


def _sleeves_of_layers(p: Person, layers):
    """The sleeves of every layer, inside out, each a little wider than the one under it."""
    rng = p.rng
    sleeve_e = -1.0
    for gid, tex, e, frac in layers:
        # an outer sleeve must cover the inner one at the shoulder, or the inner would show on top of it
        sleeve_e = max(e, sleeve_e + 0.03)
        if frac > 0:
            knit = gid >= 0 and p.sc.instances[gid].category in (SWEATER, CARDIGAN)
            sleeves(p, gid, tex, sleeve_e, frac, cuff=knit or (gid < 0 and rng.random() < 0.3),
                    bell=rng.uniform(0, 0.1) if rng.random() < 0.2 else 0.0)


def _small_items(p: Person):
    rng = p.rng
    if rng.random() < 0.15:
        watch(p)
    if rng.random() < 0.35:
        bag(p)
    if rng.random() < 0.1:
        scarf(p)
    if rng.random() < 0.15:
        hat(p)
    if rng.random() < 0.2:
        glasses(p)


def product(p: Person):
    """A product shot: one garment (or a pair of shoes, or a bag), no person; returns its category."""
    rng = p.rng
    cat = rng.choice([SHIRT, TOP, SWEATER, CARDIGAN, JACKET, VEST, COAT, DRESS, SKIRT, PANTS, SHORTS, SHOE, BAG],
                     p=np.array([8, 12, 8, 5, 8, 3, 5, 12, 8, 10, 5, 8, 8]) / 100)
    spec = garment_tex(rng, h_px=p.h_px)
    if cat in (SHIRT, TOP, SWEATER):
        gid, tex, e, frac = top(p, cat, spec, rng.uniform(3.3, 4.0))
        if frac > 0:
            sleeves(p, gid, tex, e, frac, cuff=cat == SWEATER)
    elif cat in (CARDIGAN, JACKET, VEST, COAT):
        gid, tex, e, frac = overtop(p, cat, spec)
        if frac > 0:
            sleeves(p, gid, tex, e, frac, cuff=cat == CARDIGAN)
    elif cat == DRESS:
        gid, tex, e, frac = dress(p, spec)
        if frac > 0:
            sleeves(p, gid, tex, e, frac)
    elif cat in (SKIRT, PANTS, SHORTS):
        lower(p, cat, spec)
    elif cat == SHOE:
        shoes(p)
    else:
        bag(p)
    return cat
