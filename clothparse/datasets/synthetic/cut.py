"""The cut of upper garments (outline, open front panels) and the parts sewn onto garments.

Parts (sleeve, neckline, pocket, collar, lapel, zipper) are instances of their own whose parent is the
garment; buttons belong to the garment itself.
"""
from __future__ import annotations

import numpy as np

from clothparse.datasets.synthetic.geometry import capsule, chain, ellipse, hem_between, point_on_chain
from clothparse.datasets.synthetic.ids import NECKLINE, POCKET, SLEEVE
from clothparse.datasets.synthetic.person import Person
from clothparse.datasets.synthetic.textures import rand_colour

#: How far below the neck points (y = 1.25) a round neckline dips, per style.
NECK_DEPTH = {"crew": 0.15, "scoop": 0.42, "boat": 0.06, "high": -0.2}


def neck_points(p: Person, style, nw):
    """Neck opening points from right to left (excluding the shoulder ends)."""
    if style == "v":
        return [(0.0, 1.25 + p.rng.uniform(0.55, 0.95))]
    depth = NECK_DEPTH[style]
    t = np.linspace(0, np.pi, 9)[1:-1]
    return list(zip(nw * np.cos(t), 1.25 + depth * np.sin(t)))


def side_points(p: Person, s, e, hem, flare=0.0, inset=0.0):
    """Side ``s`` of an upper garment from the shoulder down to the hem (``inset``: sleeveless cut)."""
    b = p.body
    pts = [(s * (b.sw + e - inset), 1.42), (s * (b.sw - 0.12 + e - 0.6 * inset), 2.0)]
    for y in list(np.arange(2.4, hem, 0.35)) + [hem]:
        pts.append((s * b.half_width(y, s, e, flare), y))
    return pts


def hem_points(p: Person, hem, e, flare):
    b = p.body
    return hem_between(-b.half_width(hem, -1, e, flare), b.half_width(hem, 1, e, flare), hem)


def upper_poly(p: Person, e, hem, neck="crew", nw=0.3, flare=0.0, inset=0.0):
    """Outline of a closed upper garment: neck, left side, hem, right side, back to the neck."""
    left, right = side_points(p, -1, e, hem, flare, inset), side_points(p, 1, e, hem, flare, inset)
    pts = [(-nw, 1.25)] + left + hem_points(p, hem, e, flare) + right[::-1] + [(nw, 1.25)] + \
        neck_points(p, neck, nw)
    return np.array(pts)


def panel_polys(p: Person, e, hem, nw, gap_top, gap_hem, flare=0.0, inset=0.0):
    """The two front panels of an open overtop (left, right)."""
    out = []
    for s in (-1, 1):
        side = side_points(p, s, e, hem, flare, inset)
        pts = [(s * nw, 1.25)] + side + [(s * gap_hem, hem + 0.04), (s * gap_top, 1.25 + 0.5)]
        out.append(np.array(pts))
    return out


def sleeves(p: Person, garment, tex, e, frac, bell=0.0, cuff=False):
    """Both sleeves down to ``frac`` of the arm (optionally with a darker cuff); their element indices."""
    b = p.body
    ids = []
    for s in (-1, 1):
        joint, elbow, wrist, _ = b.arm[s]
        polys = chain([joint, elbow, wrist], [0.27 + e, 0.19 + e, 0.15 + e + bell], frac, cap_end=False)
        ids.append(p.add(polys, p.part(SLEEVE, garment), tex, shade=p.rng.uniform(0.9, 1.02)))
        if cuff and frac > 0.3:
            end = point_on_chain([joint, elbow, wrist], frac)
            start = point_on_chain([joint, elbow, wrist], max(frac - 0.09, 0.0))
            p.add([capsule(start, end, 0.17 + e, 0.16 + e + bell, cap0=False, cap1=False)],
                  p.elems[ids[-1]].inst, tex, shade=0.82, clip=(ids[-1],))
    return ids


def neckline_part(p: Person, garment, tex, body_elem, style, nw, shade=0.85):
    """A band along the neck opening, clipped to the garment's body."""
    if style == "v":
        depth = p.rng.uniform(0.5, 0.9)
        band = np.array([(-nw - 0.12, 1.2), (0, 1.25 + depth + 0.16), (nw + 0.12, 1.2), (nw, 1.25),
                         (0, 1.25 + depth), (-nw, 1.25)])
    else:
        t = np.linspace(0, np.pi, 11)
        depth = NECK_DEPTH[style]
        inner = np.stack([nw * np.cos(t), 1.25 + depth * np.sin(t)], 1)
        outer = np.stack([(nw + 0.11) * np.cos(t), 1.2 + (depth + 0.16) * np.sin(t)], 1)
        band = np.concatenate([outer, inner[::-1]])
    p.add([band], p.part(NECKLINE, garment), tex, shade=shade, clip=(body_elem,))


def pockets(p: Person, garment, tex, clip, ys=(3.3, 3.7), xs=(0.3, 0.6), size=(0.38, 0.3)):
    """Usually two pockets, one per side."""
    for s in (-1, 1):
        if p.rng.random() < 0.15:
            continue
        cx, cy = s * p.rng.uniform(*xs), p.rng.uniform(*ys)
        w, hgt = size
        p.add([np.array([(cx - w / 2, cy), (cx + w / 2, cy), (cx + w / 2, cy + hgt), (cx - w / 2, cy + hgt)])],
              p.part(POCKET, garment), tex, shade=0.88, clip=clip)


def buttons(p: Person, garment, clip, y0, y1, x=0.0):
    colour = p.sc.plain(rand_colour(p.rng, v_range=(0.05, 0.9)))
    n = int(p.rng.integers(3, 7))
    dots = [ellipse(x, y, 0.045, 0.045, 8) for y in np.linspace(y0, y1, n)]
    p.add(dots, garment, colour, edge=1.0, clip=clip)
