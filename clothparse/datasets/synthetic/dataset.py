"""Writing a synthetic dataset to disk, and reusing a folder already written with the same parameters.

The folder is a :class:`~clothparse.keyed.KeyedFolder` whose marker is ``GENERATOR.json``: its key is a
digest of the parameters and :data:`GENERATOR_VERSION`, written last with the summary of the run.
"""
from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

from PIL import Image

from clothparse.datasets.synthetic.ids import CATEGORY_NAMES, default_label_descriptions
from clothparse.datasets.synthetic.records import class_id_string
from clothparse.datasets.synthetic.scene import draw_image
from clothparse.keyed import KeyedFolder, stable_hash
from clothparse.rle import encode

#: Bumped whenever the drawing changes: part of the folder's key, so old folders are regenerated.
GENERATOR_VERSION: int = 1
JPEG_QUALITY: int = 90
MARKER = "GENERATOR.json"
_OUTPUTS = ("train", "train.csv", "persons.csv", "label_descriptions.json", MARKER)


def generate(root: str | Path, n_images: int = 1000, height: int = 288, width: int = 192, seed: int = 0,
             second_person_share: float = 0.25, jumpsuit_share: float = 0.03, progress: bool = True, *,
             product_share: float = 0.05, label_descriptions: str | Path | None = None) -> Path:
    """Write a synthetic dataset in the iMaterialist 2019 layout under ``root`` and return ``root``.

    An existing complete folder written with the same parameters (and generator version) is returned as it is;
    one written with other parameters, or left incomplete, is regenerated (only the generator's own files are
    removed). A non-empty folder the generator did not write is refused. ``label_descriptions``: the file
    copied into the dataset (default: the real file shipped in the package); its ids must name the categories
    the generator draws.
    """
    root = Path(root)
    n_images, height, width, seed = int(n_images), int(height), int(width), int(seed)
    _check_counts(n_images, second_person_share, jumpsuit_share, product_share)
    ld_path = Path(label_descriptions) if label_descriptions is not None else default_label_descriptions()
    ld_raw = _check_label_descriptions(ld_path)
    params = {"n_images": n_images, "height": height, "width": width, "seed": seed,
              "second_person_share": float(second_person_share), "jumpsuit_share": float(jumpsuit_share),
              "product_share": float(product_share), "jpeg_quality": JPEG_QUALITY, "jpeg_chroma": "4:4:4",
              "label_descriptions_sha256": hashlib.sha256(ld_raw).hexdigest()}
    folder = KeyedFolder(root, stable_hash({"version": GENERATOR_VERSION, "params": params}), MARKER)
    if _reusable(folder, params):
        return root
    _clear(folder)
    info = {"generator": __package__, "version": GENERATOR_VERSION, "params": params}
    folder.claim(**info)
    (root / "train").mkdir()
    (root / "label_descriptions.json").write_bytes(ld_raw)
    start = time.perf_counter()
    summary = _write_images(root, params, progress)
    info.update(summary, seconds=round(time.perf_counter() - start, 2))
    folder.mark_complete(**info)
    return root


def _check_counts(n_images, second_person_share, jumpsuit_share, product_share) -> None:
    if n_images < 1:
        raise ValueError(f"n_images must be ≥ 1, got {n_images}")
    for name, v in (("second_person_share", second_person_share), ("jumpsuit_share", jumpsuit_share),
                    ("product_share", product_share)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {v}")
    if product_share + jumpsuit_share > 1.0 or second_person_share > 1.0 - product_share:
        raise ValueError("shares do not fit: product_share + jumpsuit_share ≤ 1 and "
                         "second_person_share ≤ 1 - product_share are needed")


def _check_label_descriptions(path: Path) -> bytes:
    """The file's bytes, once its ids are known to name the categories the generator draws."""
    if not path.is_file():
        raise FileNotFoundError(f"label_descriptions.json not found: {path}")
    raw = path.read_bytes()
    try:
        cats = {int(c["id"]): str(c["name"]).strip().lower() for c in json.loads(raw)["categories"]}
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not an iMaterialist label_descriptions.json ({err})") from err
    wrong = {cid: cats.get(cid) for cid, name in CATEGORY_NAMES.items() if cats.get(cid) != name}
    if wrong:
        raise ValueError(f"{path}: the generator draws original iMaterialist 2019 ids, but these ids have other "
                         f"names there: {wrong} (expected {[CATEGORY_NAMES[c] for c in wrong]})")
    return raw


def _reusable(folder: KeyedFolder, params: dict) -> bool:
    """The folder was finished for these parameters and its files are all there."""
    if not folder.is_complete():
        return False
    root = Path(folder.path)
    if not all((root / f).is_file() for f in ("train.csv", "persons.csv", "label_descriptions.json")):
        return False
    train = root / "train"
    return train.is_dir() and sum(1 for _ in train.glob("*.jpg")) == params["n_images"]


def _clear(folder: KeyedFolder) -> None:
    """Remove what an earlier run of the generator wrote, so no stale image survives; refuse a foreign folder."""
    root = Path(folder.path)
    if folder.marker_path.is_file():
        folder.remove(_OUTPUTS)
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and was not written by the synthetic generator (no {MARKER}); "
                              f"refusing to write into it")


def _write_images(root: Path, params: dict, progress: bool) -> dict:
    """Draw and write every image, then train.csv and persons.csv; returns counts for the marker."""
    from tqdm.auto import tqdm

    height, width, seed = params["height"], params["width"], params["seed"]
    shares = {k: params[k] for k in ("second_person_share", "jumpsuit_share", "product_share")}
    rows: list[tuple] = []
    person_rows: list[tuple] = []
    kinds: dict[str, int] = {}
    for i in tqdm(range(params["n_images"]), disable=not progress, desc="synthetic images", unit="img"):
        d = draw_image(seed, i, height=height, width=width, **shares)
        # 4:4:4 chroma: at 288×192, subsampled colour would smear the fine textures (knit, stripes)
        Image.fromarray(d.image).save(root / "train" / d.image_id, format="JPEG", quality=JPEG_QUALITY,
                                      subsampling=0)
        for inst in d.instances:
            rows.append((d.image_id, encode(inst.mask), height, width, class_id_string(inst)))
        for p in d.persons:
            person_rows.append((d.image_id, p.person, p.x_min, p.y_min, p.x_max, p.y_max, int(p.annotated)))
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    _write_csv(root / "train.csv", ("ImageId", "EncodedPixels", "Height", "Width", "ClassId"), rows)
    _write_csv(root / "persons.csv", ("ImageId", "person", "x_min", "y_min", "x_max", "y_max", "annotated"),
               person_rows)
    return {"n_instances": len(rows), "n_persons": len(person_rows),
            "n_second_person": sum(1 for r in person_rows if r[-1] == 0), "kinds": kinds}


def _write_csv(path: Path, header, rows) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    tmp.replace(path)
