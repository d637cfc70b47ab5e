"""The paper's multi-person cleaning of iMaterialist (section 4.1) as a reusable step.

In iMaterialist images with more than one person only one person is annotated; training on them
punishes the model for finding the others' clothes. The paper detected people with Mask R-CNN
(45,622 images, 12,188 with more than one person), cropped those images around the ground-truth
mask at full height, widened by x % of the mask's width on both sides for x = 30, 10, 0 in turn,
kept the crops showing exactly one person after each round, and inspected the rest by hand
(≈1,030), ending with 43,470 images.

:func:`refine` does the same on any dataset in the iMaterialist layout and writes a new dataset in
that layout (so reader, split, store and training run on it unchanged), a review list with
contact sheets for the manual step, and ``report.json``. Decisions from the manual review come
back as a CSV (``ImageId,decision`` with ``keep``/``drop``) on the next run.

Use::

    from clothparse.refine import MaskRCNNDetector, refine, stage_table
    report = refine(src, out, MaskRCNNDetector())            # PersonsCsvDetector(src) for synthetic data
    # look at out/review/*.png; write decisions.csv (ImageId,decision: keep/drop), e.g. from out/review.csv
    report = refine(src, out, MaskRCNNDetector(), decisions="decisions.csv")   # detections come from the cache
    stage_table(report)                                       # this run beside the paper's numbers

Choices (the paper gives none of these):

* The **GT mask** is the union of *all* instance masks of the image in ``train.csv`` (every
  category, garment parts included): that is what was annotated, so that is the person.
* A crop is ``[x_min - m, x_max + m)`` × full height with ``m = ceil(x % × mask width)``,
  clipped to the image.
* A crop is kept when the detector finds **exactly one** person in it; zero persons also
  proceed to the next round (the paper keeps only crops "with only one detected person").
* Images with 0 detected persons (product shots) and with 1 are kept unchanged, counted apart.
* A review image decided ``keep`` is kept as its crop of the **last** round (x = 0 % by default);
  ``drop`` and undecided images are dropped (undecided counted apart).
* :class:`MaskRCNNDetector` counts a person when its score is ≥ 0.7 (``DEFAULT_SCORE_THRESHOLD``).
* :class:`PersonsCsvDetector` counts a drawn person when ≥ 30 % of its box area lies inside the
  image or crop (``DEFAULT_MIN_VISIBLE``); real detectors see partial people too.
* Cropped images are re-encoded as JPEG quality 95 with 4:4:4 chroma (one more lossy
  generation); images kept as they are hard-linked (copied where links fail), never re-encoded.

Modules: :mod:`.detectors` (who counts people), :mod:`.cache` (their detections, kept between
runs), :mod:`.crop` (crop boxes, masks, writing a crop), :mod:`.decide` (the decision per image),
:mod:`.inputs` (reading and checking the source, the decisions, the key), :mod:`.pipeline`
(:func:`refine`), :mod:`.report` (:class:`RefineReport`, :func:`stage_table`), :mod:`.figures`
(contact sheets, Figure 2) and :mod:`.common` (constants, small file helpers).
"""
from __future__ import annotations

from clothparse.refine.common import DEFAULT_MARGINS
from clothparse.refine.crop import crop_box
from clothparse.refine.detectors import (
    DEFAULT_MIN_VISIBLE,
    DEFAULT_SCORE_THRESHOLD,
    Detections,
    MaskRCNNDetector,
    PersonDetector,
    PersonsCsvDetector,
)
from clothparse.refine.figures import figure_examples
from clothparse.refine.pipeline import refine
from clothparse.refine.report import RefineReport, load_report, stage_table

__all__ = [
    "Detections", "PersonDetector", "MaskRCNNDetector", "PersonsCsvDetector", "RefineReport",
    "refine", "load_report", "stage_table", "figure_examples", "crop_box",
    "DEFAULT_MARGINS", "DEFAULT_SCORE_THRESHOLD", "DEFAULT_MIN_VISIBLE",
]
