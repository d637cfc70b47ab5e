"""The garments a person wears: tops, overtops, lower garments, dresses and jumpsuits.

Each function registers the garment's instance (with plausible attribute ids), adds its elements and
parts, and returns what the outfit needs to dress the arms afterwards: ``(instance, texture, looseness,
sleeve length)`` for garments with sleeves, ``(instance, body elements)`` for lower garments.
"""
from __future__ import annotations

import numpy as np

from clothparse.datasets.synthetic.cut import buttons, neck_points, neckline_part, panel_polys, pockets, upper_poly
from clothparse.datasets.synthetic.geometry import chain, ellipse, hem_between
from clothparse.datasets.synthetic.ids import (
    CARDIGAN,
    COAT,
    COLLAR,
    DRESS,
    JACKET,
    JUMPSUIT,
    LAPEL,
    PANTS,
    POCKET,
    SHIRT,
    SHORTS,
    SKIRT,
    SWEATER,
    TOP,
    VEST,
    ZIPPER,
)
from clothparse.datasets.synthetic.person import Person
from clothparse.datasets.synthetic.textures import Tex, garment_tex, rand_colour


def length_attr(hem: float) -> int:
    """The iMaterialist length attribute id (mini … floor length) of a hem at height ``hem``."""
    for limit, attr in ((4.6, 3), (5.2, 4), (5.9, 5), (6.4, 6), (7.0, 7), (7.5, 8)):
        if hem < limit:
            return attr
    return 9


def top(p: Person, category, tex_spec: Tex, hem, sweater_like=False):
    """Inner upper garment (shirt 0, top 1, sweater 2)."""
    rng = p.rng
    tex = p.sc.tex(tex_spec)
    e = rng.uniform(0.02, 0.16)
    if category == SHIRT:
        neck, nw = rng.choice(["v", "crew"], p=[0.6, 0.4]), rng.uniform(0.2, 0.3)
        frac = rng.choice([0.38, 0.55, 0.95, 1.0], p=[0.3, 0.1, 0.3, 0.3])
    elif category == SWEATER or sweater_like:
        neck, nw = rng.choice(["crew", "v", "high"], p=[0.55, 0.25, 0.2]), rng.uniform(0.2, 0.3)
        frac = rng.choice([0.38, 0.75, 1.0], p=[0.1, 0.15, 0.75])
    else:
        neck, nw = rng.choice(["crew", "scoop", "v", "boat"], p=[0.45, 0.25, 0.15, 0.15]), rng.uniform(0.22, 0.42)
        frac = rng.choice([0.0, 0.22, 0.38, 0.75, 1.0], p=[0.12, 0.2, 0.35, 0.1, 0.23])
    if neck == "high":
        nw = 0.2
    length = 0 if hem < 3.3 else 1
    opening = 10 if category == SHIRT else 18
    gid = p.inst(category, p.attrs(category, tex_spec, length=length, opening=opening, fit=e))
    inset = 0.3 if frac == 0.0 else 0.0
    body = p.add([upper_poly(p, e, hem, neck, nw, inset=inset)], gid, tex)
    if category == SWEATER or (sweater_like and rng.random() < 0.5):  # rib band at the hem
        y = hem - 0.22
        p.add([np.array([(-3, y), (3, y), (3, hem + 0.2), (-3, hem + 0.2)])], gid, tex, shade=0.85, clip=(body,))
    if category == SHIRT:
        _shirt_front(p, gid, tex, body, neck, nw, hem)
    elif rng.random() < 0.7:
        neckline_part(p, gid, tex, body, neck, nw)
    if category == TOP and tex_spec.kind == "plain" and rng.random() < 0.4:  # a print on the chest
        c = p.sc.tex(garment_tex(rng, h_px=p.h_px))
        cx, cy, r = rng.uniform(-0.2, 0.2), rng.uniform(2.1, 2.6), rng.uniform(0.2, 0.45)
        shape = ellipse(cx, cy, r, r * rng.uniform(0.6, 1.2), 12) if rng.random() < 0.5 else \
            np.array([(cx - r, cy - r / 2), (cx + r, cy - r / 2), (cx + r, cy + r / 2), (cx - r, cy + r / 2)])
        p.add([shape], gid, c, edge=0.9, clip=(body,))
    return gid, tex, e, frac


def _shirt_front(p: Person, gid, tex, body, neck, nw, hem):
    """A shirt's collar (usually), button placket and sometimes a chest pocket."""
    rng = p.rng
    if rng.random() < 0.8:
        collar = [np.array([(s * (nw + 0.08), 1.12), (s * 0.02, 1.38 if neck == "crew" else 1.55),
                            (s * (nw - 0.02), 1.68), (s * (nw + 0.2), 1.45)]) for s in (-1, 1)]
        p.add(collar, p.part(COLLAR, gid), tex, shade=rng.uniform(0.85, 1.08), edge=0.7)
    buttons(p, gid, (body,), 1.7, hem - 0.2)
    if rng.random() < 0.3:
        s = rng.choice([-1, 1])
        p.add([np.array([(s * 0.25, 2.05), (s * 0.6, 2.05), (s * 0.6, 2.45), (s * 0.25, 2.45)])],
              p.part(POCKET, gid), tex, shade=0.9, clip=(body,))


def overtop(p: Person, category, tex_spec: Tex):
    """Jacket, cardigan, coat or vest, worn open (two panels) or closed (buttons or a zipper)."""
    rng = p.rng
    tex = p.sc.tex(tex_spec)
    e = rng.uniform(0.1, 0.24)
    if category == COAT:
        hem, flare = rng.uniform(5.3, 6.9), rng.uniform(0.04, 0.2)
    elif category == VEST:
        hem, flare = rng.uniform(3.3, 3.95), 0.0
    else:
        hem, flare = rng.uniform(3.5, 4.3), 0.0
    is_open = rng.random() < {VEST: 0.5, COAT: 0.45, CARDIGAN: 0.7, JACKET: 0.65, SWEATER: 0.0}[category]
    zip_up = (not is_open) and category in (JACKET, COAT) and rng.random() < 0.5
    inset = 0.25 if category == VEST else 0.0
    nw = rng.uniform(0.22, 0.34)
    length = length_attr(hem) if category == COAT else (0 if hem < 3.3 else 1)
    opening = 14 if zip_up else (10 if is_open or category != SWEATER else 18)
    gid = p.inst(category, p.attrs(category, tex_spec, length=length, opening=opening, fit=e - 0.1))
    if is_open:
        body = _open_front(p, category, gid, tex, e, hem, nw, flare, inset)
    else:
        neck = "high" if zip_up else ("v" if category in (CARDIGAN, JACKET) else "crew")
        body = (p.add([upper_poly(p, e, hem, neck, 0.2 if neck == "high" else nw, flare, inset)], gid, tex),)
        if zip_up:
            p.add([np.array([(-0.035, 0.9), (0.035, 0.9), (0.035, hem + 0.1), (-0.035, hem + 0.1)])],
                  p.part(ZIPPER, gid), p.sc.plain(rand_colour(rng, (0, 0.2), (0.3, 0.9))), edge=1.0, clip=body)
        else:
            buttons(p, gid, body, 2.2, hem - 0.3)
            if category == CARDIGAN and rng.random() < 0.6:
                neckline_part(p, gid, tex, body[0], "v", nw)
    if category in (JACKET, COAT) and rng.random() < 0.6:
        pockets(p, gid, tex, body, ys=(min(3.2, hem - 0.6), min(3.9, hem - 0.4)))
    frac = 0.0 if category == VEST else rng.choice([0.75, 0.95, 1.0], p=[0.15, 0.25, 0.6])
    return gid, tex, e, frac


def _open_front(p: Person, category, gid, tex, e, hem, nw, flare, inset):
    """The two panels of an open overtop (with lapels on most jackets and coats); their element indices."""
    rng = p.rng
    gap_top, gap_hem = rng.uniform(0.05, 0.3), rng.uniform(0.15, 0.7)
    left, right = panel_polys(p, e, hem, nw, gap_top, gap_hem, flare, inset)
    shade = rng.uniform(0.93, 1.0)
    body = (p.add([left], gid, tex, shade=shade), p.add([right], gid, tex, shade=shade * 0.97))
    if category in (JACKET, COAT) and rng.random() < 0.8:
        for s, el in zip((-1, 1), body):
            lapel = np.array([(s * nw, 1.22), (s * (nw + 0.3), 1.6), (s * (gap_top + 0.12), 2.3),
                              (s * gap_top, 1.75)])
            p.add([lapel], p.part(LAPEL, gid), tex, shade=0.8, edge=0.7, clip=(el,))
    return body


def lower(p: Person, category, tex_spec: Tex, waist=None):
    """Pants 6, shorts 7, skirt 8: one element (plus parts); returns the instance and its body elements."""
    rng, b = p.rng, p.body
    tex = p.sc.tex(tex_spec)
    yw = waist if waist is not None else rng.uniform(2.95, 3.3)
    if category == SKIRT:
        return _skirt(p, tex_spec, tex, yw)
    e = rng.uniform(0.02, 0.14)
    if category == PANTS:
        frac = rng.choice([1.0, rng.uniform(0.8, 0.95)], p=[0.75, 0.25])
        wide = rng.choice([0.0, rng.uniform(0.06, 0.2)], p=[0.7, 0.3])
        sil = 37 if wide > 0.1 else (40 if e < 0.05 else 33)
        gid = p.inst(PANTS, p.attrs(PANTS, tex_spec, extra=[sil]))
    else:
        frac, wide = rng.uniform(0.12, 0.45), rng.uniform(0.0, 0.08)
        gid = p.inst(SHORTS, p.attrs(SHORTS, tex_spec, fit=e))
    waist = np.array([(-b.half_width(yw, -1, e), yw), (b.half_width(yw, 1, e), yw),
                      (b.half_width(3.75, 1, e), 3.75), (b.hw * 0.96 + e, 4.15), (0, 4.3),
                      (-(b.hw * 0.96 + e), 4.15), (-b.half_width(3.75, -1, e), 3.75)])
    legs = [q for s in (-1, 1) for q in chain(b.leg[s], [0.4 + e, 0.28 + e, 0.18 + e + wide], frac, cap_end=False)]
    el = p.add([waist] + legs, gid, tex)
    if rng.random() < 0.35:
        pockets(p, gid, tex, (el,), ys=(yw + 0.2, yw + 0.35), xs=(0.35, 0.55), size=(0.3, 0.25))
    if rng.random() < 0.15:
        p.add([np.array([(-0.03, yw + 0.1), (0.03, yw + 0.1), (0.03, 4.0), (-0.03, 4.0)])],
              p.part(ZIPPER, gid), p.sc.plain((0.6, 0.6, 0.55)), edge=1.0, clip=(el,))
    return gid, (el,)


def _skirt(p: Person, tex_spec: Tex, tex, yw):
    rng, b = p.rng, p.body
    e = rng.uniform(0.03, 0.12)
    hem = rng.choice([rng.uniform(4.4, 5.0), rng.uniform(5.2, 6.0), rng.uniform(6.1, 7.6)], p=[0.35, 0.4, 0.25])
    flare = rng.choice([0.0, rng.uniform(0.1, 0.45)], p=[0.35, 0.65])
    gid = p.inst(SKIRT, p.attrs(SKIRT, tex_spec, length=length_attr(hem), extra=[34 if flare > 0.2 else 32]))
    left = [(-b.half_width(y, -1, e, flare, yw), y) for y in list(np.arange(yw, hem, 0.35)) + [hem]]
    right = [(b.half_width(y, 1, e, flare, yw), y) for y in list(np.arange(yw, hem, 0.35)) + [hem]]
    el = p.add([np.array(left + hem_between(left[-1][0], right[-1][0], hem) + right[::-1])], gid, tex)
    return gid, (el,)


def dress(p: Person, tex_spec: Tex, jumpsuit=False):
    """Dress 10 (one polygon neck to hem) or jumpsuit 11 (bodice + trouser legs)."""
    rng, b = p.rng, p.body
    tex = p.sc.tex(tex_spec)
    e = rng.uniform(0.02, 0.12)
    neck, nw = rng.choice(["crew", "scoop", "v", "boat"]), rng.uniform(0.22, 0.42)
    sleeveless = rng.random() < 0.4
    inset = 0.3 if sleeveless else 0.0
    if jumpsuit:
        gid = p.inst(JUMPSUIT, p.attrs(JUMPSUIT, tex_spec, fit=e))
        bodice = upper_poly(p, e, 3.9, neck, nw, inset=inset)
        legs = [q for s in (-1, 1) for q in chain(b.leg[s], [0.4 + e, 0.28 + e, 0.2 + e],
                                                  rng.uniform(0.7, 1.0), cap_end=False)]
        body = p.add([bodice] + legs, gid, tex)
    else:
        hem = rng.choice([rng.uniform(4.4, 5.0), rng.uniform(5.2, 6.2), rng.uniform(6.3, 7.7)], p=[0.3, 0.45, 0.25])
        flare = rng.choice([0.0, rng.uniform(0.1, 0.45)], p=[0.3, 0.7])
        gid = p.inst(DRESS, p.attrs(DRESS, tex_spec, length=length_attr(hem), fit=e,
                                    extra=[88 if rng.random() < 0.7 else 91]))
        # like an upper garment, but flared from the waist down
        left = [(-(b.sw + e - inset), 1.42), (-(b.sw - 0.12 + e - 0.6 * inset), 2.0)] + \
            [(-b.half_width(y, -1, e, flare, 3.1), y) for y in list(np.arange(2.4, hem, 0.35)) + [hem]]
        right = [(-x, y) for x, y in left[:2]] + \
            [(b.half_width(y, 1, e, flare, 3.1), y) for y in list(np.arange(2.4, hem, 0.35)) + [hem]]
        poly = np.array([(-nw, 1.25)] + left + hem_between(left[-1][0], right[-1][0], hem) + right[::-1]
                        + [(nw, 1.25)] + neck_points(p, neck, nw))
        body = p.add([poly], gid, tex)
        if rng.random() < 0.3:  # a waist seam: a faint cue that tells a dress from a top + skirt
            p.add([np.array([(-3, 3.05), (3, 3.05), (3, 3.11), (-3, 3.11)])], gid, tex, shade=0.8, clip=(body,))
    if rng.random() < 0.6:
        neckline_part(p, gid, tex, body, neck, nw)
    frac = 0.0 if sleeveless else rng.choice([0.22, 0.38, 0.75, 1.0], p=[0.3, 0.3, 0.15, 0.25])
    return gid, tex, e, frac
