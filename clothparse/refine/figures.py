"""Pictures of a refinement: the review's contact sheets and the paper's Figure 2.

Garments are tinted with :func:`clothparse.categories.overlay`, the one overlay of the package.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from clothparse.categories import imaterialist_category_map, overlay
from clothparse.refine.cache import CACHE_FILE, DetectionCache, detector_key
from clothparse.refine.common import Box, load_image, read_train_csv
from clothparse.refine.crop import instance_masks, semantic
from clothparse.refine.detectors import Detections
from clothparse.refine.report import RefineReport


def contact_sheet(path: Path, image: np.ndarray, semantic_mask: np.ndarray, full_dets: Detections,
                  box: Box, crop_dets: Detections, title: str, panel_height: int = 384) -> None:
    """PNG: the image with detections (red) and the crop (green), the annotation overlay, the crop."""
    from PIL import Image, ImageDraw

    scale = panel_height / image.shape[0]

    def panel(arr, boxes, crop=None):
        im = Image.fromarray(arr).resize((max(1, round(arr.shape[1] * scale)), panel_height), Image.BILINEAR)
        draw = ImageDraw.Draw(im)
        for b in boxes:
            x0, y0, x1, y1 = [v * scale for v in b]
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(255, 0, 0), width=2)
        if crop is not None:
            draw.rectangle([crop[0] * scale, crop[1] * scale, crop[2] * scale - 1, crop[3] * scale - 1],
                           outline=(0, 255, 0), width=2)
        return im

    panels = [panel(image, full_dets.boxes, crop=box), panel(overlay(image, semantic_mask), []),
              panel(np.ascontiguousarray(image[box[1]:box[3], box[0]:box[2]]), crop_dets.boxes)]
    gap, top = 8, 22
    sheet = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) + 1), panel_height + top + gap),
                      (255, 255, 255))
    x = gap
    for p in panels:
        sheet.paste(p, (x, top))
        x += p.width + gap
    ImageDraw.Draw(sheet).text((gap, 4), title, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, compress_level=1)      # fast: ~1,000 sheets on the real data


def figure_examples(report: RefineReport | str | os.PathLike, n: int = 3, *, image_ids: Sequence[str] | None = None):
    """The paper's Figure 2 for this run: a multi-person image with its detections, its annotation
    (one person only), and the crop refine kept. Needs the source dataset still in place."""
    import matplotlib.pyplot as plt

    if not isinstance(report, RefineReport):
        report = RefineReport.load(report)
    src, out = Path(report.src_root), Path(report.out_root)
    rec = report.records
    chosen = rec[rec["status"].isin(["cropped", "review_kept"])]
    if image_ids is not None:
        chosen = chosen[chosen["image_id"].isin(list(image_ids))]
    chosen = chosen.sort_values(["n_persons", "image_id"], ascending=[False, True]).head(n)
    if chosen.empty:
        raise ValueError(f"{out}: refine kept no cropped image to show")
    category_map = None
    if (src / "label_descriptions.json").is_file():
        category_map = imaterialist_category_map(src / "label_descriptions.json")
    detections = {}
    if (out / CACHE_FILE).is_file():   # the full-image detections of this run, for the red boxes
        detections = DetectionCache(out / CACHE_FILE, detector_key(report.detector)).full_image()
    src_rows = read_train_csv(src / "train.csv")
    out_rows = read_train_csv(out / "train.csv")
    sizes = src_rows.drop_duplicates("ImageId").set_index("ImageId").loc[chosen["image_id"], ["Height", "Width"]]
    aspect = float(np.median(sizes["Height"].astype(float) / sizes["Width"].astype(float)))
    fig, axes = plt.subplots(len(chosen), 3, figsize=(9, len(chosen) * (3 * aspect + 0.4)), squeeze=False)
    for row, r in zip(axes, chosen.itertuples()):
        _figure_row(row, r, src, out, src_rows[src_rows["ImageId"] == r.image_id],
                    out_rows[out_rows["ImageId"] == r.image_id], detections.get(r.image_id), category_map)
    fig.tight_layout()
    return fig


def _figure_row(axes, r, src: Path, out: Path, rows, crop_rows, dets: Detections | None, category_map) -> None:
    """One row of :func:`figure_examples`: input with boxes, annotation, the crop in place."""
    from matplotlib.patches import Rectangle

    image = load_image(src / "train" / r.image_id)
    masks, h, w = _masks_of(rows, src / "train.csv", r.image_id)
    crop = load_image(out / "train" / r.image_id)
    cmasks, ch, cw = _masks_of(crop_rows, out / "train.csv", r.image_id)
    axes[0].imshow(image)
    axes[0].set_title(f"input: {int(r.n_persons)} persons detected", fontsize=9)
    for x0, y0, x1, y1 in ([] if dets is None else dets.boxes):
        axes[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red", lw=1))
    axes[0].add_patch(Rectangle((r.x_min - 0.5, -0.5), r.x_max - r.x_min, h, fill=False, ec="lime", lw=1.5,
                                ls="--"))
    axes[1].imshow(overlay(image, semantic(rows, masks, h, w, category_map)))
    axes[1].set_title("annotation (one person only)", fontsize=9)
    # The crop at the input's scale and place, so what was cut away is visible.
    axes[2].imshow(overlay(crop, semantic(crop_rows, cmasks, ch, cw, category_map)),
                   extent=(r.x_min - 0.5, r.x_min + cw - 0.5, ch - 0.5, -0.5))
    axes[2].set_title(f"refined: crop x = {r.margin:g} %", fontsize=9)
    for ax in axes:
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_axis_off()


def _masks_of(rows, csv: Path, image_id: str):
    try:
        return instance_masks(rows)
    except ValueError as err:
        raise ValueError(f"{csv}: {image_id}: {err}") from None
