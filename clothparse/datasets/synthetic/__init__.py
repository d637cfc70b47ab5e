"""Synthetic people in clothes, written in the iMaterialist 2019 layout: the embedded default data.

:func:`generate` writes ``root/train/<ImageId>`` (JPEG, quality 90, 4:4:4 chroma), ``root/train.csv`` (one row per
instance, Kaggle RLE, ``ClassId`` = original iMaterialist category id plus random attribute ids, e.g.
``6_33_61``), ``root/label_descriptions.json`` (a copy of the real file), ``root/persons.csv`` (one row per
drawn person) and ``root/GENERATOR.json`` (version and parameters, so an existing folder can be reused).
:func:`draw_image` draws one image and returns everything it knows about it; :func:`generate` only writes that
to disk, so a test can compare the files with the drawing.

What is drawn
    Simple-geometry people (head, hair, torso, arms and legs as capsules, skin tones) of varied size, position,
    pose (arm and leg angles, bent elbows, hands on hips, raised arms, a slight lean, mirrored) on cluttered
    backgrounds (gradients, random shapes, textured patches, floor, noise), wearing garments with the
    *original* iMaterialist ids: shirt/blouse (0), top/t-shirt (1), sweater (2), cardigan (3), jacket (4),
    vest (5), pants (6), shorts (7), skirt (8), coat (9), dress (10), jumpsuit (11, in about
    ``jumpsuit_share`` of the images: the reader drops them), shoes (23, one instance per shoe) and bags (24);
    non-garment items that the merge maps to background: glasses (13), hat (14), watch (18), belt (19),
    tights (21), scarf (25); garment parts as separate instances: collar (28), lapel (29), sleeve (31, one per
    sleeve), pocket (32), neckline (33), zipper (35). Garments carry textures (plain, stripes, checks, dots,
    knit ribs, melange, denim, abstract prints) in random colours.

    Layering: an overtop (jacket, cardigan, coat, vest, open as two panels or closed) over a top or a dress,
    a top tucked into or worn over the lower garment, a bag strap across the torso. Hard cases of the paper
    are made ambiguous on purpose: a dress vs a top plus skirt in the same colour and texture (told apart
    only by a faint shade or pattern-phase difference), and a t-shirt (top) vs a sweater (overtop) of the same
    cut (told apart only by tendencies: sweaters mostly have long sleeves, rib bands and knit textures,
    t-shirts mostly short sleeves and prints).

    About ``second_person_share`` of the images show a second person beside the first (often smaller, or cut
    off by the frame), barely overlapping it, whose clothes are NOT annotated (the flaw the paper's
    refinement removes); about ``product_share`` are product shots: one garment (or a pair of shoes, or a
    bag) without a person.

Ground truth this generator guarantees (checked in ``tests/test_synthetic.py``)
    * ``SyntheticImage.semantic`` is the merged class (0..8) of what was painted at each pixel: a garment of the
      annotated person where it is visible; 0 for skin, hair, background, non-garment items and everything
      of an unannotated person. Jumpsuit pixels are 0 there too (the reader drops such images anyway).
    * The reader's rule applied to the instances of ``train.csv`` reproduces ``semantic`` exactly: kept
      garments only, the instance with fewer pixels on top, parts and non-garment items never paint and never
      erase. To make overlaps realistic, a garment instance also covers pixels hidden under *another garment*
      (the top under the panels of an open jacket, under a bag strap, a skirt's waistband under a top) whenever
      that keeps the rule exact; overlapping garment instances of different classes never have equal pixel counts.
    * Garment instance masks never cover visible skin, hair, background, non-garment items or an unannotated
      person. Every garment instance written has at least one pixel where it is the visible garment, so the
      classes listed in the CSV equal the classes of the merged mask. Fully hidden instances are not written.
    * Part instances (sleeve, collar, lapel, pocket, neckline, zipper) lie inside their garment's instance mask
      (they are the visible pixels of that part). Non-garment instances are their visible pixels.
    * ``persons.csv``: one row per drawn person: ``person`` 0 = the annotated one (``annotated=1``), 1 = the
      second person (``annotated=0``); the box is the bounding box of the person's whole drawn silhouette
      (including parts hidden behind the other person), clipped to the image, ``x_max``/``y_max`` exclusive.
      A second person has at least 40 % of its unclipped box inside the image. Product shots have no row.
    * Deterministic: image ``i`` depends only on ``(seed, i)``, the size and the shares (not on ``n_images``); its
      ``ImageId`` only on ``(seed, i)``. Scene kinds (product shot, jumpsuit, second person) follow
      low-discrepancy sequences, so their shares are close to the requested ones even for a few images.

Modules
    :mod:`.scene` (:func:`draw_image`: scene kind, background, placing the people), :mod:`.outfit` (a
    dressed person or a product), :mod:`.garments`, :mod:`.cut` and :mod:`.accessories` (what is worn),
    :mod:`.person` (body, pose, the element builder), :mod:`.elements` (the scene description),
    :mod:`.paint` (painting, the ground truth, the camera), :mod:`.geometry`, :mod:`.textures`,
    :mod:`.ids` (category ids), :mod:`.records` (what an image yields) and :mod:`.dataset`
    (:func:`generate`: the files, and reusing a finished folder).
"""
from clothparse.datasets.synthetic.dataset import GENERATOR_VERSION, JPEG_QUALITY, generate
from clothparse.datasets.synthetic.ids import CATEGORY_NAMES, default_label_descriptions
from clothparse.datasets.synthetic.records import Instance, PersonBox, SyntheticImage, class_id_string, image_id
from clothparse.datasets.synthetic.scene import draw_image

__all__ = ["generate", "draw_image", "image_id", "class_id_string", "default_label_descriptions",
           "SyntheticImage", "Instance", "PersonBox", "GENERATOR_VERSION", "JPEG_QUALITY", "CATEGORY_NAMES"]
