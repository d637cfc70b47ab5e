"""A person being drawn: a random body and pose, the element builder, and the bare skin and hair.

:class:`Person` only keeps the books (elements in z-order, instances registered in the scene, attribute
ids); the clothes are drawn by the functions of :mod:`.garments`, :mod:`.accessories` and :mod:`.outfit`,
which take the person as their first argument.
"""
from __future__ import annotations

import numpy as np

from clothparse.datasets.synthetic.elements import Elem, PendingInstance, Scene
from clothparse.datasets.synthetic.geometry import chain, direction, ellipse
from clothparse.datasets.synthetic.textures import TEX_ATTR, Tex


class Body:
    """A random body: proportions and a pose (keypoints in the body frame)."""

    def __init__(self, rng: np.random.Generator, pose: bool = True):
        self.sw = rng.uniform(0.85, 1.05)          # shoulder half-width
        self.ww = rng.uniform(0.52, 0.72)          # waist half-width
        self.hw = rng.uniform(0.76, 0.95)          # hip half-width
        self.arm: dict[int, list[np.ndarray]] = {}
        self.leg: dict[int, list[np.ndarray]] = {}
        for s in (-1, 1):
            self.arm[s] = self._arm(rng, s, pose)
            a = rng.uniform(-0.02, 0.2) if pose else 0.06
            hip = np.array([s * self.hw * 0.5, 3.95])
            knee = hip + 1.85 * direction(s, a)
            ankle = knee + 1.75 * direction(s, a + (rng.uniform(-0.12, 0.08) if pose else 0.0))
            self.leg[s] = [hip, knee, ankle]
        self.skin_r = {"arm": (0.21, 0.17, 0.13, 0.1), "leg": (0.37, 0.26, 0.16)}

    def _arm(self, rng, s, pose):
        """Shoulder joint, elbow, wrist and hand of arm ``s`` in a random pose."""
        joint = np.array([s * (self.sw - 0.13), 1.62])
        kind = rng.choice(["hang", "hang", "hang", "hip", "raised", "front"]) if pose else "hang"
        if kind == "hang":
            up, bend = rng.uniform(0.04, 0.35), rng.uniform(-0.35, 0.25)
        elif kind == "hip":
            up, bend = rng.uniform(0.55, 0.9), rng.uniform(-2.3, -1.8)
        elif kind == "raised":
            up, bend = rng.uniform(1.2, 2.5), rng.uniform(-0.6, 0.5)
        else:  # forearm across the waist
            up, bend = rng.uniform(0.05, 0.3), rng.uniform(-1.7, -1.2)
        elbow = joint + 1.45 * direction(s, up)
        wrist = elbow + 1.25 * direction(s, up + bend)
        hand = wrist + 0.45 * direction(s, up + bend)
        return [joint, elbow, wrist, hand]

    def torso_half(self, y):
        return float(np.interp(y, [1.42, 2.0, 3.05, 3.75, 4.15],
                               [self.sw, self.sw - 0.12, self.ww, self.hw, self.hw * 0.96]))

    def leg_outer(self, y, s, extra=0.0):
        """|x| of the outer edge of leg ``s`` at height ``y`` (plus ``extra`` radius)."""
        hip, knee, ankle = self.leg[s]
        ys = [hip[1], knee[1], ankle[1]]
        xs = [hip[0], knee[0], ankle[0]]
        rs = self.skin_r["leg"]
        x = np.interp(y, ys, xs)
        r = np.interp(y, ys, rs) + extra
        return abs(x) + r if s * x >= 0 else max(r - abs(x), 0.0)

    def half_width(self, y, s, e, flare=0.0, flare_from=3.75):
        """Half-width of a garment on side ``s`` at height ``y``: torso, flared below ``flare_from``,
        and never narrower than the legs below the hips."""
        w = self.torso_half(min(y, 4.15))
        if y > flare_from:
            w = max(w, self.torso_half(flare_from) + flare * (y - flare_from))
        if y > 3.6:
            w = max(w, self.leg_outer(y, s) + 0.05)
        return w + e


class Person:
    """One person's (or one product's) elements in z-order, and the instances they annotate."""

    def __init__(self, scene: Scene, annotated: bool, h_px: float, body: Body | None = None):
        self.sc, self.rng, self.annotated, self.h_px = scene, scene.rng, annotated, h_px
        self.body = body or Body(scene.rng)
        self.elems: list[Elem] = []

    def inst(self, category: int, attributes=(), parent: int = -1) -> int:
        """Register an annotated instance; -1 (nothing annotated) for the unannotated person."""
        if not self.annotated:
            return -1
        self.sc.instances.append(PendingInstance(int(category), tuple(int(a) for a in attributes), int(parent)))
        return len(self.sc.instances) - 1

    def part(self, category: int, garment: int) -> int:
        return self.inst(category, (), garment) if garment >= 0 else -1

    def add(self, polys, inst, tex, shade=1.0, edge=0.82, clip=()) -> int:
        self.elems.append(Elem(list(polys), inst, tex, shade, edge, tuple(clip)))
        return len(self.elems) - 1

    def attrs(self, category: int, tex: Tex, *, length=None, opening=None, fit=None, extra=()) -> tuple:
        """Plausible attribute ids (pattern, length, opening, fit); sometimes none, like many Kaggle rows."""
        rng = self.rng
        if rng.random() < 0.15:
            return ()
        cand = [TEX_ATTR[tex.kind]]
        if length is not None:
            cand.append(length)
        if opening is not None:
            cand.append(opening)
        if fit is not None:
            cand.append(40 if fit < 0.05 else 41 if fit < 0.12 else 42)
        cand.extend(extra)
        keep = sorted({c for c in cand if rng.random() < 0.8})
        return tuple(keep)


def skin_body(p: Person, skin: int, hair: int, long_hair: bool):
    """Long hair behind, legs and feet, torso, head, hair cap and a face hint (all unannotated)."""
    b = p.body
    if long_hair:
        p.add([np.array([(-0.5, 0.45), (-0.6, 2.1), (0.6, 2.1), (0.5, 0.45)]),
               ellipse(0, 0.55, 0.5, 0.6)], -1, hair)
    legs = [q for s in (-1, 1) for q in chain(b.leg[s], b.skin_r["leg"])]
    feet = [ellipse(b.leg[s][2][0] + s * 0.1, b.leg[s][2][1] + 0.18, 0.24, 0.14, 10) for s in (-1, 1)]
    p.add(legs + feet, -1, skin, shade=0.96)
    torso = np.array([(-0.17, 1.0), (-b.sw, 1.45), (-(b.sw - 0.12), 2.0), (-b.ww, 3.05), (-b.hw, 3.75),
                      (-b.hw * 0.96, 4.15), (0, 4.25), (b.hw * 0.96, 4.15), (b.hw, 3.75), (b.ww, 3.05),
                      (b.sw - 0.12, 2.0), (b.sw, 1.45), (0.17, 1.0)])
    p.add([torso], -1, skin, shade=0.98)
    p.add([ellipse(0, 0.52, 0.37, 0.5, 20)], -1, skin)
    # eyes and mouth are drawn small: they are background anyway
    p.add([np.concatenate([ellipse(0, 0.42, 0.41, 0.42, 20)[10:], [(0.4, 0.5), (-0.4, 0.5)]])], -1, hair)
    p.add([ellipse(-0.14, 0.55, 0.05, 0.035, 8), ellipse(0.14, 0.55, 0.05, 0.035, 8)], -1,
          p.sc.plain((0.1, 0.08, 0.08)), edge=1.0)
    p.add([np.array([(-0.09, 0.8), (0.09, 0.8), (0.07, 0.83), (-0.07, 0.83)])], -1,
          p.sc.plain((0.55, 0.25, 0.25)), edge=1.0)


def arms(p: Person, skin: int):
    """Both bare arms, drawn over the torso's clothes and under the sleeves."""
    b = p.body
    polys = []
    for s in (-1, 1):
        joint, elbow, wrist, hand = b.arm[s]
        r = b.skin_r["arm"]
        polys += chain([joint, elbow, wrist, hand], [r[0], r[1], r[2], r[3]])
    p.add(polys, -1, skin)
