"""Shoes and bags (kept garment classes) and the non-garment items the merge maps to background:
hat, glasses, belt, scarf, tights and watch."""
from __future__ import annotations

import numpy as np

from clothparse.datasets.synthetic.geometry import capsule, chain, ellipse
from clothparse.datasets.synthetic.ids import BAG, BELT, GLASSES, HAT, SCARF, SHOE, TIGHTS, WATCH
from clothparse.datasets.synthetic.person import Person
from clothparse.datasets.synthetic.textures import garment_tex, rand_colour


def shoes(p: Person):
    """A pair (sometimes boots): one instance per shoe."""
    rng, b = p.rng, p.body
    tex_spec = garment_tex(rng, [50, 5, 2, 3, 5, 3, 0, 2], p.h_px, colour=rand_colour(rng, v_range=(0.05, 0.95)))
    tex = p.sc.tex(tex_spec)
    boots = rng.random() < 0.2
    for s in (-1, 1):
        hip, knee, ankle = b.leg[s]
        polys = [ellipse(ankle[0] + s * 0.12, ankle[1] + 0.2, rng.uniform(0.26, 0.32), 0.17, 12),
                 capsule(ankle - (0, 0.05), ankle + (s * 0.1, 0.18), 0.18, 0.16)]
        if boots:
            top = ankle + rng.uniform(0.3, 0.8) * (knee - ankle)
            polys.append(capsule(top, ankle + (0, 0.1), 0.23, 0.2, cap0=False))
        gid = p.inst(SHOE, p.attrs(SHOE, tex_spec) if rng.random() < 0.3 else ())
        p.add(polys, gid, tex, shade=0.97 if s < 0 else 1.0)


def bag(p: Person):
    """A hand bag, shoulder bag, cross-body bag (its strap across the torso) or clutch."""
    rng, b = p.rng, p.body
    tex_spec = garment_tex(rng, [50, 8, 6, 4, 5, 5, 0, 3], p.h_px)
    tex = p.sc.tex(tex_spec)
    gid = p.inst(BAG, p.attrs(BAG, tex_spec) if rng.random() < 0.4 else ())
    style = rng.choice(["hand", "shoulder", "cross", "clutch"], p=[0.3, 0.3, 0.25, 0.15])
    s = int(rng.choice([-1, 1]))
    strap_r = rng.uniform(0.035, 0.06)
    if style in ("hand", "clutch"):
        hand = b.arm[s][3]
        w, hgt = (rng.uniform(0.6, 1.0), rng.uniform(0.5, 0.8)) if style == "hand" else \
            (rng.uniform(0.5, 0.8), rng.uniform(0.25, 0.4))
        top = hand[1] + (0.35 if style == "hand" else -0.1)
        cx = hand[0]
    else:
        w, hgt = rng.uniform(0.6, 0.95), rng.uniform(0.45, 0.75)
        cx, top = s * (b.hw + rng.uniform(0.05, 0.3)), rng.uniform(3.3, 3.9)
    body = np.array([(cx - w / 2, top), (cx + w / 2, top), (cx + w / 2 + 0.06, top + hgt),
                     (cx - w / 2 - 0.06, top + hgt)])
    polys = [body]
    if style == "hand":
        hand = b.arm[s][3]
        polys += [capsule((cx - w / 3, top), hand, strap_r, strap_r), capsule(hand, (cx + w / 3, top),
                                                                              strap_r, strap_r)]
    elif style == "shoulder":
        sh = np.array([s * (b.sw - 0.3), 1.4])
        polys += [capsule(sh, (cx - s * w / 3, top), strap_r, strap_r)]
    elif style == "cross":
        sh = np.array([-s * (b.sw - 0.35), 1.4])
        polys += [capsule(sh, (cx - s * w / 3, top), strap_r, strap_r)]
    el = p.add(polys, gid, tex)
    if rng.random() < 0.4:  # flap
        p.add([np.array([(cx - w / 2, top), (cx + w / 2, top), (cx, top + hgt * 0.55)])], gid, tex,
              shade=0.85, clip=(el,))


def hat(p: Person):
    rng = p.rng
    tex = p.sc.tex(garment_tex(rng, [60, 10, 5, 5, 10, 5, 5, 0], p.h_px))
    iid = p.inst(HAT)
    if rng.random() < 0.5:  # brimmed
        p.add([ellipse(0, 0.28, rng.uniform(0.55, 0.8), 0.09, 16),
               np.array([(-0.36, 0.3), (-0.3, -0.2), (0.3, -0.2), (0.36, 0.3)])], iid, tex)
    else:  # beanie
        p.add([np.concatenate([ellipse(0, 0.38, 0.42, 0.45, 20)[10:], [(0.42, 0.42), (-0.42, 0.42)]])], iid, tex)


def glasses(p: Person):
    tex = p.sc.plain(rand_colour(p.rng, v_range=(0.02, 0.4)))
    p.add([ellipse(-0.15, 0.55, 0.12, 0.08, 10), ellipse(0.15, 0.55, 0.12, 0.08, 10),
           np.array([(-0.05, 0.53), (0.05, 0.53), (0.05, 0.56), (-0.05, 0.56)])], p.inst(GLASSES), tex, edge=1.0)


def belt(p: Person, y, e):
    """A belt at height ``y`` over a garment of looseness ``e``, with a buckle."""
    b = p.body
    tex = p.sc.plain(rand_colour(p.rng, v_range=(0.05, 0.6)))
    iid = p.inst(BELT)
    xl, xr = b.half_width(y, -1, e) + 0.03, b.half_width(y, 1, e) + 0.03
    p.add([np.array([(-xl, y - 0.02), (xr, y - 0.02), (xr, y + 0.15), (-xl, y + 0.15)])], iid, tex)
    p.add([np.array([(-0.1, y - 0.04), (0.1, y - 0.04), (0.1, y + 0.17), (-0.1, y + 0.17)])], iid,
          p.sc.plain((0.75, 0.7, 0.5)), edge=0.7)


def scarf(p: Person):
    rng = p.rng
    tex = p.sc.tex(garment_tex(rng, [30, 20, 15, 5, 10, 10, 10, 0], p.h_px))
    end_y = rng.uniform(2.2, 3.4)
    x = rng.uniform(-0.25, 0.25)
    p.add([np.array([(-0.38, 1.05), (0.38, 1.05), (0.42, 1.45), (-0.42, 1.45)]),
           capsule((x, 1.3), (x + rng.uniform(-0.1, 0.1), end_y), 0.15, 0.17)], p.inst(SCARF), tex)


def tights(p: Person):
    b = p.body
    tex = p.sc.plain(rand_colour(p.rng, (0, 0.4), (0.03, 0.5)))
    polys = [q for s in (-1, 1) for q in chain(b.leg[s], [0.38, 0.27, 0.17])]
    p.add(polys, p.inst(TIGHTS), tex, edge=0.9)


def watch(p: Person):
    s = int(p.rng.choice([-1, 1]))
    joint, elbow, wrist, hand = p.body.arm[s]
    q = wrist + 0.05 * (elbow - wrist)
    p.add([capsule(q - 0.08 * (elbow - wrist), q + 0.08 * (elbow - wrist), 0.15, 0.15)],
          p.inst(WATCH), p.sc.plain(rand_colour(p.rng)), edge=0.8)
