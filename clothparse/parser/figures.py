"""The notebook's figures of parse results: each photo beside its overlay and its garments' colour swatches
(:func:`figure_results`), or beside its garments' cut-outs (:func:`figure_cutouts`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clothparse.categories import CLASSES, NUM_CLASSES, PALETTE
from clothparse.parser.garments import on_checkerboard

if TYPE_CHECKING:
    from clothparse.parser.parse import ParseResult

__all__ = ["figure_results", "figure_cutouts"]


def _swatches(ax, res: ParseResult) -> None:
    """One line per present garment: its palette colour, its name and its dominant colours with their shares."""
    from matplotlib.patches import Rectangle  # the train extra: parsing needs no matplotlib

    ax.axis("off")
    ax.set_xlim(0, 1)
    ax.set_ylim(max(len(res.classes), 4), 0)  # the same row height in every panel
    for i, garment in enumerate(res.classes):
        gc = res.colours.get(garment)
        ax.add_patch(Rectangle((0, i + 0.15), 0.08, 0.7, color=np.asarray(PALETTE[CLASSES.index(garment)]) / 255))
        if gc is None or not gc.colours:
            ax.text(0.12, i + 0.5, f"{garment}: too small", va="center", fontsize=8)
            continue
        ax.text(0.12, i + 0.5, garment, va="center", fontsize=8)
        x = 0.36
        for colour in gc.colours:
            width = 0.6 * colour.share
            ax.add_patch(Rectangle((x, i + 0.15), width, 0.7, color=colour.hex, ec="0.6", lw=0.5))
            ax.text(x + width / 2, i + 0.5, f"{colour.name}\n{colour.share:.0%}", ha="center", va="center",
                    fontsize=6, color="white" if colour.lab[0] < 55 else "black")
            x += width + 0.01
    if not res.classes:
        ax.text(0, 0.5, "no garment found", va="center", fontsize=8)


def figure_results(results: list[ParseResult], compare: list[ParseResult] | None = None,
                   labels: tuple[str, str] = ("parsed", "compared"), height: float = 3.0):
    """One row per image: the photo, its overlay (and ``compare``'s overlay), and colour swatches per garment."""
    import matplotlib.pyplot as plt  # the train extra: parsing needs no matplotlib
    from matplotlib.patches import Patch

    cols = 4 if compare is not None else 3
    h, w = results[0].image.shape[:2]
    fig, axes = plt.subplots(len(results), cols, squeeze=False,
                             figsize=(cols * height * max(w / h, 0.75), len(results) * height))
    for row, res in enumerate(results):
        panels = [(res.image, res.source.rsplit("/", 1)[-1]), (res.overlay(), labels[0])]
        if compare is not None:
            panels.append((compare[row].overlay(), labels[1]))
        for ax, (img, title) in zip(axes[row], panels):
            ax.imshow(img)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        _swatches(axes[row, -1], res)
    handles = [Patch(color=np.asarray(PALETTE[i]) / 255, label=CLASSES[i]) for i in range(1, NUM_CLASSES)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def _garment_label(res: ParseResult, garment: str) -> str:
    colour = res.main_colours.get(garment)
    return f"{garment} · {colour}" if colour else f"{garment} · too small"


def figure_cutouts(results: list[ParseResult], max_garments: int = 4, height: float = 3.0):
    """One row per image: the photo, then its largest garments' cut-outs (at most ``max_garments``, at the
    original resolution) on a light checkerboard, each titled with its class and main colour name."""
    import matplotlib.pyplot as plt  # the train extra: parsing needs no matplotlib

    picks = [sorted(r.classes, key=lambda c: -r.fractions[c])[:max_garments] for r in results]
    cols = 1 + max(1, max(len(p) for p in picks))
    fig, axes = plt.subplots(len(results), cols, squeeze=False, figsize=(cols * height * 0.75, len(results) * height))
    for row, (res, garments) in enumerate(zip(results, picks)):
        axes[row, 0].imshow(res.image)
        axes[row, 0].set_title(res.source.rsplit("/", 1)[-1], fontsize=9)
        for ax, (garment, rgba) in zip(axes[row, 1:], res.cutouts(garments).items()):
            ax.imshow(on_checkerboard(rgba))
            ax.set_title(_garment_label(res, garment), fontsize=9)
        if not garments:
            axes[row, 1].text(0.5, 0.5, "no garment found", ha="center", va="center", fontsize=9)
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    return fig
