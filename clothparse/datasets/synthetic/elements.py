"""The scene description: textures, annotated instances, and the elements that paint them.

A scene is drawn in two stages. First each person (or product) is described as a list of :class:`Elem`
(polygons in its body frame, painted in order); an element belongs to a :class:`PendingInstance` or to
nothing annotated. Then :mod:`.paint` rasterises and paints the elements, and decides each instance's mask
from what ended up visible.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clothparse.datasets.synthetic.textures import Tex


@dataclass
class Elem:
    polys: list                  # body-frame polygons (N×2)
    inst: int                    # image-level instance index, -1 = nothing annotated (skin, hair, 2nd person)
    tex: int                     # index into the scene's textures
    shade: float = 1.0
    edge: float = 0.82           # brightness of the element's outline pixels
    clip: tuple = ()             # indices (within the same person) of elements this one is clipped to


@dataclass
class PendingInstance:
    """An annotated instance registered while drawing; its mask is decided after painting."""

    category: int
    attributes: tuple[int, ...]
    parent: int = -1             # for parts: the garment instance


@dataclass
class Scene:
    """One image being drawn: its random stream, size, and the textures and instances registered so far."""

    rng: np.random.Generator
    h: int
    w: int
    textures: list = field(default_factory=list)
    instances: list = field(default_factory=list)

    def tex(self, t: Tex) -> int:
        self.textures.append(t)
        return len(self.textures) - 1

    def plain(self, colour) -> int:
        return self.tex(Tex("plain", np.asarray(colour, np.float32), np.asarray(colour, np.float32), wave=0.0))
