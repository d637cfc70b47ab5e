"""Dominant colours of a garment: a few named colours with their share of the garment's pixels.

Colours are found in CIELAB (D65), where Euclidean distance approximates perceived difference (ΔE76):

1. the garment's pixels (its mask slightly eroded by a 3×3 square, so that pixels blended with the
   neighbouring region at the outline — diagonal neighbours included — do not form colours of their own;
   at most ``sample`` of them, a fixed random sample) are converted sRGB → Lab. A photo of more than
   ``max_pixels`` is read on a regular grid (every s-th row and column: pixels as they are, not averaged,
   so a print keeps its colours): a few thousand pixels make the sample either way;
2. seeded k-means (k-means++ start, ``k`` clusters, numpy only) runs on ``(lightness_weight·L, a, b)``, over
   the pixels binned by colour (5 bits a channel; each bin the mean of its pixels, weighted by their number):
   lightness counts half, because shading — folds, shadows, a lit side — mostly changes the *lightness* of one
   material, while a different material or print changes hue and chroma;
3. clusters closer than ``merge_delta`` (ΔE in the same weighted space; 12 by default, "clearly different"
   colours are further apart) are merged, closest pair first: k-means splits one colour when k is too large;
4. **shadows**: darkening a surface scales linear RGB, which scales CIELAB's (L+16, a, b) by one factor (the
   cube root in L*, a*, b*). Two clusters are the lit and shaded parts of one colour when the lighter one,
   scaled down to the darker one's lightness, lands within ``merge_delta`` of it in (a, b), and the darker is
   not *much* darker (ratio of L+16 ≥ ``min_shade_ratio``: white vs black stay apart). Real shadows in
   coloured fabric are often more saturated than that model says (light bounces between folds) but keep
   their hue: two clearly coloured clusters (chroma ≥ 10) within ``hue_delta`` degrees of hue, with the
   same lightness limit, are one colour as well. Those merge too, closest first;
5. each cluster is named by the nearest entry of :data:`NAMED_COLOURS` from its *lit* colour — the median Lab
   of the lighter half of its pixels (shadows only darken; the median ignores specular highlights) — by the
   CIEDE2000 colour difference (:func:`delta_e_ciede2000`, CIE 142-2001 as formulated by Sharma, Wu & Dalal
   2005) with the textile industry's parametric factors k_L = 2, k_C = k_H = 1: lightness differences count
   half, as in the clustering; chroma and hue differences are forgiven more the more saturated the colours,
   chroma more than hue, and blues get their own hue/chroma rotation — so a dull dark blue is "navy", not
   "denim", and a violet dress "purple", not "blue", where a plain Euclidean distance in (L/2, a, b) named
   them worse on CCP photos. Clusters with the same name are combined;
6. colours below ``min_share`` of the pixels are dropped (outline leftovers, small prints), at most
   ``max_colours`` are kept, largest share first. Shares are of all the garment's analysed pixels, so they
   may sum to less than 1. ``hex`` is the lit colour.

Photographs are not white-balanced here: a garment under warm light is named as it appears.

A garment with fewer than ``min_pixels`` pixels gets no colours and is flagged ``too_small``: a handful of
pixels has no reliable colour. Everything is deterministic (fixed seed, fixed pixel sample).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clothparse.categories import CLASSES, CLOTHING
from clothparse.masks import class_counts

__all__ = ["NAMED_COLOURS", "Colour", "GarmentColours", "srgb_to_lab", "lab_to_srgb", "delta_e_ciede2000",
           "name_colour",
           "dominant_colours", "garment_colours"]

#: Named colours (sRGB) as garments look in photographs: black clothes photograph as a dark grey, navy
#: as a dull dark blue — so the entries are not the saturated textbook values.
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 28),
    "dark grey": (75, 75, 78),
    "grey": (128, 128, 128),
    "light grey": (190, 190, 192),
    "white": (245, 245, 245),
    "cream": (243, 234, 207),
    "beige": (220, 200, 168),
    "tan": (196, 154, 108),
    "khaki": (176, 162, 112),
    "brown": (118, 74, 42),
    "dark brown": (66, 42, 28),
    "red": (196, 30, 38),
    "burgundy": (112, 22, 42),
    "pink": (240, 160, 186),
    "fuchsia": (212, 42, 140),
    "coral": (244, 120, 104),
    "orange": (238, 128, 30),
    "rust": (170, 76, 36),
    "mustard": (206, 164, 40),
    "yellow": (248, 218, 52),
    "olive": (104, 106, 40),
    "green": (44, 138, 62),
    "dark green": (24, 76, 44),
    "mint": (168, 226, 190),
    "teal": (0, 118, 120),
    "turquoise": (58, 196, 196),
    "navy": (30, 38, 88),
    "blue": (40, 82, 190),
    "denim": (82, 112, 156),
    "sky blue": (108, 150, 222),
    "light blue": (160, 196, 232),
    "purple": (108, 48, 138),
    "lavender": (188, 168, 220),
}

# D65 reference white (CIE 1931 2°), sRGB ↔ XYZ matrices (IEC 61966-2-1).
_WHITE = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_EPS, _KAPPA = 216 / 24389, 24389 / 27


def srgb_to_lab(rgb) -> np.ndarray:
    """sRGB (…×3, uint8 0..255, or float 0..1) → CIELAB (…×3 float64: L 0..100, a, b), D65."""
    rgb = np.asarray(rgb)
    c = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_srgb(lab) -> np.ndarray:
    """CIELAB (…×3) → sRGB uint8 (…×3), out-of-gamut values clipped."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f ** 3 > _EPS, f ** 3, (116 * f - 16) / _KAPPA) * _WHITE
    lin = np.clip(xyz @ _XYZ_TO_RGB.T, 0, 1)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(np.round(c * 255), 0, 255).astype(np.uint8)


_NAMES = tuple(NAMED_COLOURS)
_NAMED_LAB = srgb_to_lab(np.array([NAMED_COLOURS[n] for n in _NAMES], dtype=np.uint8))


def _weighted(lab: np.ndarray, lightness_weight: float) -> np.ndarray:
    return lab * np.array([lightness_weight, 1.0, 1.0])


def _hue_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(b, a)) % 360


def delta_e_ciede2000(lab1, lab2, k_l: float = 1.0, k_c: float = 1.0, k_h: float = 1.0) -> np.ndarray:
    """The CIEDE2000 colour difference of Lab colours (…×3, broadcast against each other), as formulated by
    Sharma, Wu & Dalal (2005), whose 34 reference pairs it reproduces; ``k_l`` etc. are the parametric
    factors (textile practice sets ``k_l = 2``)."""
    lab1, lab2 = np.broadcast_arrays(np.asarray(lab1, np.float64), np.asarray(lab2, np.float64))
    (l1, a1, b1), (l2, a2, b2) = np.moveaxis(lab1, -1, 0), np.moveaxis(lab2, -1, 0)
    c7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0 ** 7)))  # a* stretched for near-neutral colours
    a1, a2 = (1 + g) * a1, (1 + g) * a2
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    neutral = c1 * c2 == 0  # a hue is undefined for a grey: its hue difference counts as 0
    h1, h2 = np.where(c1 == 0, 0.0, _hue_degrees(a1, b1)), np.where(c2 == 0, 0.0, _hue_degrees(a2, b2))
    dh = h2 - h1
    dh = np.where(neutral, 0.0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    d_hue = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh) / 2)
    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    h_mean = np.where(np.abs(h1 - h2) <= 180, (h1 + h2) / 2, (h1 + h2 + np.where(h1 + h2 < 360, 360, -360)) / 2)
    h_mean = np.where(neutral, h1 + h2, h_mean)
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    r_t = (-2 * np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25.0 ** 7))
           * np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2)))))  # the blue region's rotation
    dl, dc, dhh = (l2 - l1) / (k_l * s_l), (c2 - c1) / (k_c * s_c), d_hue / (k_h * s_h)
    return np.sqrt(dl ** 2 + dc ** 2 + dhh ** 2 + r_t * dc * dhh)


def name_colour(lab, k_l: float = 2.0) -> str | list[str]:
    """The :data:`NAMED_COLOURS` name nearest to a Lab colour by CIEDE2000 (3-vector → str; N×3 → list);
    ``k_l``: its lightness factor (2, the textile value: lightness differences count half)."""
    lab = np.asarray(lab, dtype=np.float64)
    idx = delta_e_ciede2000(lab[..., None, :], _NAMED_LAB, k_l=k_l).argmin(-1)
    return _NAMES[int(idx)] if lab.ndim == 1 else [_NAMES[int(i)] for i in idx]


@dataclass(frozen=True)
class Colour:
    """One dominant colour: its name, hex (sRGB of the cluster's median Lab), share of the pixels, Lab."""

    name: str
    hex: str
    share: float
    lab: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {"name": self.name, "hex": self.hex, "share": round(self.share, 4),
                "lab": [round(v, 2) for v in self.lab]}


@dataclass(frozen=True)
class GarmentColours:
    """The colours of one garment class in one image; ``too_small``: fewer pixels than ``min_pixels``."""

    garment: str
    pixels: int
    colours: tuple[Colour, ...] = field(default_factory=tuple)
    too_small: bool = False

    @property
    def main(self) -> Colour | None:
        """The colour with the largest share (``None`` when there are none)."""
        return self.colours[0] if self.colours else None

    def to_dict(self) -> dict:
        return {"pixels": self.pixels, "too_small": self.too_small, "colours": [c.to_dict() for c in self.colours]}


#: Pixels sampled per garment. On 60 CCP photos (223 garments, ground-truth masks) 2000 changed the main colour
#: of 6 garments against 5000, and another random sample of 5000 changed 5: near-ties either way, at 40 % of
#: the cost.
SAMPLE = 2000
#: Photos larger than this are read on a grid for colours (:func:`garment_colours`); 825×550 → every 2nd pixel.
MAX_PIXELS = 150_000
#: sRGB bits a channel by which pixels are binned for k-means (:func:`_kmeans_binned`).
BIN_BITS = 5


def _kmeans(x: np.ndarray, k: int, seed: int, iters: int = 25, tol: float = 0.1,
            weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with a k-means++ start; returns (labels, centres). Empty clusters are dropped.
    ``weights``: how many points each row of ``x`` stands for (default one each).

    It stops when no label changes or no centre moves by ``tol`` or more (ΔE units of ``x``): on smooth
    gradients — a lit fold, a sky — labels keep trading places along a boundary for every iteration while
    the centres stand still, far below any difference a colour name could show."""
    rng = np.random.default_rng(seed)
    n, dim = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    centres = [x[rng.choice(n, p=w / w.sum())]]
    d2 = ((x - centres[0]) ** 2).sum(1) * w
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:  # every point already coincides with a centre: fewer distinct colours than k
            break
        centres.append(x[rng.choice(n, p=d2 / total)])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1) * w)
    c = np.array(centres)
    xw = x * w[:, None]
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(iters):
        # the nearest centre by |c|² − 2 x·c: the squared distance less |x|², which is the same for every centre
        new = ((c ** 2).sum(1) - 2 * x @ c.T).argmin(1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, weights=w, minlength=len(c))
        sums = np.stack([np.bincount(labels, weights=xw[:, j], minlength=len(c)) for j in range(dim)], axis=1)
        if counts.all():
            moved, c = c - sums / counts[:, None], sums / counts[:, None]
            if (moved ** 2).sum(1).max() < tol ** 2:
                break
        else:  # an empty cluster is dropped
            keep = counts > 0
            c = sums[keep] / counts[keep, None]
            labels = np.cumsum(keep)[labels] - 1
    return labels, c


def _kmeans_binned(pixels: np.ndarray, x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-means labels of the points ``x`` (the weighted Lab of the sRGB ``pixels``), found on the pixels binned
    by their sRGB colour cut to :data:`BIN_BITS` bits a channel: each bin enters as the mean of its points,
    weighted by their number. A garment's sample has several times fewer such bins than pixels, and k-means'
    cost is per point. A bin spans 8 levels a channel, a few ΔE, so its pixels go to one cluster together; the cluster
    means (returned with the labels) are still the exact means of their pixels."""
    q = (np.asarray(pixels, np.uint8) >> (8 - BIN_BITS)).astype(np.int32)
    key = (q[:, 0] << 2 * BIN_BITS) | (q[:, 1] << BIN_BITS) | q[:, 2]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    means = np.stack([np.bincount(inverse, weights=x[:, j]) for j in range(x.shape[1])], axis=1) / counts[:, None]
    labels, centres = _kmeans(means, min(k, len(means)), seed, weights=counts)
    return labels[inverse], centres


def _merge_close(labels: np.ndarray, centres: np.ndarray, delta: float) -> list[np.ndarray]:
    """The clusters of ``labels`` as groups of member indices, the closest pair of centres merged while they are
    less than ``delta`` apart (each merged centre the mean of its members): :func:`_merge_pairs` with the
    groups' means, from the k-means centres and counts rather than the members themselves."""
    counts = np.bincount(labels, minlength=len(centres)).astype(np.float64)
    means, owner = centres.astype(np.float64), np.arange(len(centres))
    alive = list(range(len(centres)))
    while len(alive) > 1:
        m = means[alive]
        d = ((m[:, None, :] - m[None, :, :]) ** 2).sum(2)
        d[np.tril_indices(len(alive))] = np.inf
        i, j = np.unravel_index(d.argmin(), d.shape)
        if not np.sqrt(d[i, j]) < delta:
            break
        a, b = alive[i], alive.pop(j)
        means[a] = (counts[a] * means[a] + counts[b] * means[b]) / (counts[a] + counts[b])
        counts[a] += counts[b]
        owner[owner == b] = a
    return [np.flatnonzero(owner[labels] == a) for a in alive]


def _merge_pairs(groups: list[np.ndarray], summary, distance) -> list[np.ndarray]:
    """Merge the closest pair of groups (member indices) while ``distance(summary(g), summary(h))`` is below 1
    (``inf`` = never merge). After a merge only the merged group's distances are computed again."""
    groups = list(groups)
    sums = [summary(g) for g in groups]
    d = np.full((len(groups), len(groups)), np.inf)
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            d[i, j] = distance(sums[i], sums[j])
    while len(groups) > 1:
        i, j = np.unravel_index(d.argmin(), d.shape)
        if not d[i, j] < 1:
            break
        groups[i] = np.concatenate([groups[i], groups.pop(j)])
        sums.pop(j)
        sums[i] = summary(groups[i])
        d = np.delete(np.delete(d, j, 0), j, 1)
        for h in range(len(groups)):
            if h != i:
                d[min(h, i), max(h, i)] = distance(sums[min(h, i)], sums[max(h, i)])
    return groups


def _median(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=0)`` of finite values, the same numbers (the middle one, or the mean of the middle
    two) without ``np.median``'s general machinery, which costs more than the partition on a cluster's pixels."""
    n = len(a)
    if n % 2:
        return np.partition(a, n // 2, axis=0)[n // 2]
    part = np.partition(a, (n // 2 - 1, n // 2), axis=0)
    return (part[n // 2 - 1] + part[n // 2]) / 2


def _lit(lab: np.ndarray) -> np.ndarray:
    """A cluster's colour in its lit part: the median Lab of its lighter half (shadows only darken)."""
    return _median(lab[lab[:, 0] >= _median(lab[:, 0])])


def _shading_distance(p: np.ndarray, q: np.ndarray, delta: float, min_ratio: float) -> float:
    """How far the darker colour is from the lighter one in shadow, in units of ``delta`` (``inf`` if too dark).

    Darkening linear RGB by a factor scales (L+16, a, b) by its cube root (CIELAB's f(t) = t^(1/3)), so a shaded
    surface keeps the ratios a/(L+16), b/(L+16): predict the lighter colour at the darker one's lightness and
    compare a, b."""
    light, dark = (p, q) if p[0] >= q[0] else (q, p)
    ratio = (dark[0] + 16) / (light[0] + 16)
    if ratio < min_ratio:
        return np.inf
    return float(np.hypot(*(dark[1:] - ratio * light[1:]))) / delta


def _hue_distance(p: np.ndarray, q: np.ndarray, hue_delta: float, min_ratio: float, min_chroma: float = 10.0) -> float:
    """Hue difference of two chromatic colours in units of ``hue_delta`` degrees (``inf`` if either is nearly grey
    or the darker is too dark). Shadows in coloured fabric are often *more* saturated than the simple scaling
    predicts (light reflected between folds), but they keep the hue."""
    light, dark = (p, q) if p[0] >= q[0] else (q, p)
    if (dark[0] + 16) / (light[0] + 16) < min_ratio or min(np.hypot(*p[1:]), np.hypot(*q[1:])) < min_chroma:
        return np.inf
    diff = abs(np.degrees(np.arctan2(p[2], p[1]) - np.arctan2(q[2], q[1]))) % 360
    return min(diff, 360 - diff) / hue_delta


def dominant_colours(pixels, max_colours: int = 3, k: int = 6, merge_delta: float = 12.0,
                     lightness_weight: float = 0.5, min_shade_ratio: float = 0.45, hue_delta: float = 12.0,
                     min_share: float = 0.05,
                     min_pixels: int = 100, sample: int = SAMPLE, seed: int = 0) -> list[Colour]:
    """The dominant colours of N×3 uint8 sRGB ``pixels`` (see the module docstring); [] for < ``min_pixels``."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] != 3:
        raise ValueError(f"pixels must be N×3 sRGB, got shape {pixels.shape}")
    if len(pixels) < max(min_pixels, 1):
        return []
    rng = np.random.default_rng(seed)
    if len(pixels) > sample:  # a fixed random sample: k-means cost is O(N·k); see SAMPLE
        pixels = pixels[np.sort(rng.choice(len(pixels), sample, replace=False))]
    lab = srgb_to_lab(pixels.astype(np.uint8))
    x = _weighted(lab, lightness_weight)
    labels, centres = _kmeans_binned(pixels, x, k, seed)
    # near clusters (one colour split by k-means), then lit/shaded parts of one colour
    groups = _merge_close(labels, centres, merge_delta)
    groups = _merge_pairs(groups, lambda g: _median(lab[g]),
                          lambda p, q: min(_shading_distance(p, q, merge_delta, min_shade_ratio),
                                           _hue_distance(p, q, hue_delta, min_shade_ratio)))
    by_name: dict[str, list[np.ndarray]] = {}
    for name, g in zip(name_colour(np.array([_lit(lab[g]) for g in groups])), groups):  # one CIEDE2000 call
        by_name.setdefault(name, []).append(g)
    colours = []
    for name, parts in by_name.items():
        members = lab[np.concatenate(parts)]
        share = len(members) / len(lab)
        if share < min_share:
            continue
        centre = _lit(members)
        rgb = lab_to_srgb(centre)
        colours.append(Colour(name, "#{:02x}{:02x}{:02x}".format(*rgb.tolist()), float(share),
                              tuple(float(v) for v in centre)))
    colours.sort(key=lambda c: (-c.share, c.name))
    return colours[:max_colours]


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    """Binary erosion by a 3×3 square, ``steps`` times (pixels outside the image count as outside the mask):
    a pixel survives a step only if all eight neighbours are garment too, so corners shrink like edges."""
    if steps <= 0:
        return mask
    # ``steps`` erosions by a 3×3 square are one erosion by a (2·steps+1)² square, which is separable: a pixel
    # survives if its row window, then its column window of that width, is all garment (zeros padded around)
    k = 2 * steps + 1
    padded = np.pad(np.asarray(mask, bool), steps)
    rows = padded[:, :padded.shape[1] - k + 1].copy()
    for d in range(1, k):
        rows &= padded[:, d:d + rows.shape[1]]
    out = rows[:rows.shape[0] - k + 1].copy()
    for d in range(1, k):
        out &= rows[d:d + out.shape[0]]
    return out


def garment_colours(image, mask, classes=None, min_pixels: int = 100, erode: int | None = None,
                    pixel_counts: dict[int, int] | None = None, boxes: dict | None = None,
                    max_pixels: int | None = MAX_PIXELS, **kw) -> dict[str, GarmentColours]:
    """Per clothing class present in ``mask`` (H×W, values 0..8) the colours of ``image`` (H×W×3 uint8) there.

    ``classes``: mask values (1..8) or names to analyse (default: every clothing class in the mask).
    ``erode``: pixels taken off each garment's outline before sampling (default: 1 per 200 px of the image's
    shorter side, at least 1); a garment too thin for that keeps its full mask. ``pixel_counts`` (mask value →
    pixels) overrides the counts used for ``too_small`` — e.g. counts at the original resolution when the
    analysis runs on a reduced copy. ``boxes`` (mask value → its tight box in ``mask``, x_min, y_min, x_max,
    y_max, max exclusive, as :func:`clothparse.masks.tight_boxes`) spares finding them. ``max_pixels``: a larger
    photo is read on a grid of every s-th row and column, s the smallest that brings it under ``max_pixels``
    (``None``: every pixel); pixel counts stay those of the full photo. ``**kw`` go to
    :func:`dominant_colours`.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H×W×3 uint8, got {image.dtype} {image.shape}")
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} differs from the image's {image.shape[:2]}")
    if classes is None:
        values = [int(v) for v in np.unique(mask) if 1 <= v < len(CLASSES)]
    else:
        values = [CLASSES.index(c) if isinstance(c, str) else int(c) for c in classes]
    bad = [v for v in values if not 1 <= v < len(CLASSES)]
    if bad:
        raise ValueError(f"clothing classes are 1..{len(CLOTHING)} or {CLOTHING}, got {bad}")
    stride = 1 if not max_pixels else max(1, math.ceil(math.sqrt(mask.size / max_pixels)))
    if stride > 1:
        if pixel_counts is None:
            pixel_counts = dict(enumerate(class_counts(mask).tolist()))
        image, mask, boxes = image[::stride, ::stride], mask[::stride, ::stride], None
    steps = max(1, round(min(mask.shape) / 200)) if erode is None else int(erode)  # on the grid when read on one
    out = {}
    for v in values:
        # the garment's tight box: outside it there is no garment pixel, so eroding and reading the box alone
        # gives the same pixels, in the same (row-major) order, as the whole photo — at a fraction of the cost
        if boxes is not None and v in boxes:
            x0, y0, x1, y1 = boxes[v]
            box = np.s_[y0:y1, x0:x1]
            region = mask[box] == v
        else:
            region = mask == v
            rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
            box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] if rows.size else np.s_[:, :]
            region = region[box]
        part = image[box]
        n = int(pixel_counts[v]) if pixel_counts is not None and v in pixel_counts else int(region.sum())
        name = CLASSES[v]
        if n < min_pixels:
            out[name] = GarmentColours(name, n, (), too_small=True)
            continue
        inner = _erode(region, steps) if steps > 0 else region
        # a thin garment (strap, belt-like shoe outline) would vanish: then its outline pixels are all there is
        use = inner if inner.sum() >= max(min(min_pixels, int(region.sum())) // 2, 1) else region
        colours = dominant_colours(part[use], min_pixels=1, **kw)
        out[name] = GarmentColours(name, n, tuple(colours), too_small=False)
    return out
