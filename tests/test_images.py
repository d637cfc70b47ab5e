"""Reading the parser's inputs: files of every odd format, EXIF orientation, 16-bit and transparency as RGB
uint8, arrays and PIL images by the same rules, reduction of large images with their original size kept,
errors that name the file, folders and globs expanded to image files, batches read ahead in order, and the
normalisation of a run."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from clothparse.images import (
    IMAGENET_STATS,
    ImageLoadError,
    LoadedImage,
    empty_folders,
    expand_inputs,
    load_batches,
    load_image,
    normalise_batch,
    stats_of,
    to_rgb_array,
)


# --- inputs ---------------------------------------------------------------------------------------
def write_inputs(folder):
    """Odd image files in ``folder``; their expected (H, W) by name."""
    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    rgb = rng.integers(0, 256, (77, 101, 3), dtype=np.uint8)
    files = {}
    files["odd.png"] = (77, 101)
    Image.fromarray(rgb).save(folder / "odd.png")
    Image.fromarray(rgb[:, :, 0]).save(folder / "gray.jpg")
    files["gray.jpg"] = (77, 101)
    rgba = np.dstack([rgb, np.full((77, 101), 255, np.uint8)])
    rgba[:10, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    files["rgba.png"] = (77, 101)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    files["cmyk.jpg"] = (77, 101)
    Image.fromarray((np.arange(60 * 50).reshape(60, 50) * 21).astype(np.uint16)).save(folder / "deep.png")
    files["deep.png"] = (60, 50)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.gif")
    files["palette.gif"] = (77, 101)
    raw = np.zeros((60, 90, 3), np.uint8)  # stored 90 wide × 60 high: left half red, right half blue
    raw[:, :45] = (220, 20, 20)
    raw[:, 45:] = (20, 20, 220)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": shown 60 wide × 90 high, the red half on top
    Image.fromarray(raw).save(folder / "rotated.jpg", exif=exif, quality=95)
    files["rotated.jpg"] = (90, 60)
    return files


def test_loading_odd_formats(tmp_path):
    files = write_inputs(tmp_path)
    for name, size in files.items():
        li = load_image(tmp_path / name)
        assert li.size == size and li.image.shape == (*size, 3) and li.image.dtype == np.uint8, name
    rot = load_image(tmp_path / "rotated.jpg").image.astype(int)
    assert rot[:40, :, 0].mean() > 180 and rot[:40, :, 2].mean() < 60      # red on top
    assert rot[50:, :, 2].mean() > 180 and rot[50:, :, 0].mean() < 60      # blue below
    deep = load_image(tmp_path / "deep.png").image[:, :, 0].astype(int)
    expected = np.round((np.arange(60 * 50).reshape(60, 50) * 21) / 257)
    assert np.abs(deep - expected).max() <= 1 and deep.max() > 200          # scaled, not clipped at 255
    rgba = load_image(tmp_path / "rgba.png").image
    assert (rgba[:10] == 255).all()                                         # transparent → white
    big = np.zeros((300, 420, 3), np.uint8)
    Image.fromarray(big).save(tmp_path / "big.jpg")
    li = load_image(tmp_path / "big.jpg", max_side=100)                    # JPEG decoded at reduced scale
    assert li.size == (300, 420) and max(li.image.shape[:2]) <= 100
    with pytest.raises(ImageLoadError, match="nothing.jpg.*no such file"):
        load_image(tmp_path / "nothing.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageLoadError, match="broken.jpg"):
        load_image(tmp_path / "broken.jpg")


def test_the_parser_reads_inputs_with_this_module():
    from clothparse.parser import parse

    assert parse.load_image is load_image and parse.ImageLoadError is ImageLoadError
    assert issubclass(ImageLoadError, ValueError)


def test_every_exif_orientation_is_displayed_upright(tmp_path):
    """A photo stored in each of the 8 EXIF orientations reads as the upright photo (size and pixels)."""
    upright = np.zeros((40, 60, 3), np.uint8)  # displayed: 40 high, 60 wide, one coloured quadrant each
    upright[:20, :30] = (250, 0, 0)
    upright[:20, 30:] = (0, 250, 0)
    upright[20:, :30] = (0, 0, 250)
    upright[20:, 30:] = (250, 250, 250)
    # what a camera stores for each orientation tag: the inverse of the transform the tag asks for
    stored = {1: upright, 2: upright[:, ::-1], 3: upright[::-1, ::-1], 4: upright[::-1],
              5: upright.transpose(1, 0, 2), 6: np.rot90(upright, 1), 7: upright.transpose(1, 0, 2)[::-1, ::-1],
              8: np.rot90(upright, -1)}
    for tag, raw in stored.items():
        exif = Image.Exif()
        exif[0x0112] = tag
        Image.fromarray(np.ascontiguousarray(raw)).save(tmp_path / f"o{tag}.png", exif=exif)
        li = load_image(tmp_path / f"o{tag}.png")
        assert li.size == (40, 60) and li.image.shape == (40, 60, 3), tag
        assert np.array_equal(li.image, upright), tag
        # the same photo as a PIL image is turned the same way
        with Image.open(tmp_path / f"o{tag}.png") as im:
            assert np.array_equal(load_image(im).image, upright), tag


def test_arrays_of_every_dtype_and_shape_become_rgb_uint8():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_rgb_array(grey)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8 and (out == grey[:, :, None]).all()
    assert np.array_equal(to_rgb_array(grey[:, :, None]), out)                       # H×W×1
    deep = np.array([[0, 257, 65535]], np.uint16)
    assert to_rgb_array(deep)[0, :, 0].tolist() == [0, 1, 255]                       # 16 bit: by 1/257
    assert to_rgb_array(deep.astype(">u2"))[0, :, 0].tolist() == [0, 1, 255]         # big-endian too
    assert to_rgb_array(np.array([[0, 1000]], np.int32))[0, :, 0].tolist() == [0, 4]  # int above 255 as 16 bit
    assert to_rgb_array(np.array([[0, 131070]], np.int64))[0, :, 0].tolist() == [0, 255]  # above 16 bit: to top
    assert to_rgb_array(np.array([[0.0, 0.5, 1.0]]))[0, :, 0].tolist() == [0, 128, 255]  # floats in 0..1
    assert to_rgb_array(np.array([[0.0, 100.0, 300.0]], np.float32))[0, :, 0].tolist() == [0, 100, 255]
    assert to_rgb_array(np.array([[np.nan, 1.0]]))[0, :, 0].tolist() == [0, 255]
    assert to_rgb_array(np.array([[True, False]]))[0, :, 0].tolist() == [255, 0]
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, :3] = 100
    rgba[0, :, 3] = (0, 255, 128)                                                    # straight alpha on white
    assert to_rgb_array(rgba)[0, :, 0].tolist() == [255, 100, round(100 * 128 / 255 + 255 * 127 / 255)]
    for bad in (np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 3, 1), np.uint8)):
        with pytest.raises(ValueError, match="an image array must be H×W, H×W×3 or H×W×4"):
            to_rgb_array(bad)
    with pytest.raises(ValueError, match="unsupported array dtype complex128"):
        to_rgb_array(np.zeros((2, 2), complex))


def test_pil_modes_become_rgb_uint8():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    assert np.array_equal(to_rgb_array(Image.fromarray(rgb)), rgb)
    la = Image.fromarray(np.dstack([np.full((2, 2), 10, np.uint8), np.array([[0, 255], [255, 0]], np.uint8)]), "LA")
    assert to_rgb_array(la)[:, :, 1].tolist() == [[255, 10], [10, 255]]              # transparent → white
    i16 = Image.fromarray(np.array([[0, 65535]], np.uint16))
    assert to_rgb_array(i16)[0, :, 2].tolist() == [0, 255]                           # scaled, not clipped
    f = Image.fromarray(np.array([[0.0, 0.25]], np.float32), "F")
    assert to_rgb_array(f)[0, :, 0].tolist() == [0, 64]
    one = Image.fromarray(np.array([[True, False]]))                                 # mode "1"
    assert to_rgb_array(one)[0].tolist() == [[255] * 3, [0] * 3]


def test_arrays_and_pil_images_are_reduced_and_keep_their_size():
    big = np.random.default_rng(1).integers(0, 256, (300, 120, 3), dtype=np.uint8)
    li = load_image(big, max_side=100, source="mine")
    assert isinstance(li, LoadedImage) and li.source == "mine"
    assert li.size == (300, 120) and li.image.shape == (100, 40, 3)
    assert load_image(Image.fromarray(big), max_side=100).image.shape == (100, 40, 3)
    assert load_image(big).image.shape == (300, 120, 3) and load_image(big).source == "<array>"
    flat = np.full((30, 30, 3), 77, np.uint8)
    assert (load_image(flat, max_side=10).image == 77).all()                         # a box filter keeps a flat colour
    with pytest.raises(ImageLoadError, match=r"<array>: cannot read image \(empty image"):
        load_image(np.zeros((0, 5, 3), np.uint8))


def test_a_folder_or_a_non_image_is_an_error_naming_it(tmp_path):
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(ImageLoadError, match=r"folder\.jpg: cannot read image \(not a file\)") as err:
        load_image(tmp_path / "folder.jpg")
    assert err.value.source == str(tmp_path / "folder.jpg") and err.value.reason == "not a file"
    (tmp_path / "notes.png").write_text("plain text, not a picture")
    with pytest.raises(ImageLoadError, match=r"notes\.png: cannot read image \(UnidentifiedImageError"):
        load_image(tmp_path / "notes.png")
    with pytest.raises(ImageLoadError, match="^photo 3: cannot read image"):
        load_image(tmp_path / "notes.png", source="photo 3")
    # a truncated file: the header reads, the pixels do not
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageLoadError, match=r"cut\.png"):
        load_image(tmp_path / "cut.png")


def test_folders_and_globs_expand_to_their_image_files(tmp_path):
    for name in ("b.jpg", "a.PNG", "c.webp", "notes.txt", "sub/d.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    folder = [str(tmp_path / n) for n in ("a.PNG", "b.jpg", "c.webp")]   # sorted, not recursive, no .txt
    assert expand_inputs([tmp_path]) == folder
    assert expand_inputs([str(tmp_path / "*.jpg")]) == [str(tmp_path / "b.jpg")]
    assert expand_inputs([str(tmp_path / "**" / "*.jpg")]) == [str(tmp_path / "b.jpg"), str(tmp_path / "sub/d.jpg")]
    # duplicates dropped, order kept; a missing file or an empty glob stays, to be reported
    missing, nothing = str(tmp_path / "gone.jpg"), str(tmp_path / "*.gif")
    assert expand_inputs([tmp_path / "c.webp", tmp_path, missing, nothing]) == [
        str(tmp_path / "c.webp"), str(tmp_path / "a.PNG"), str(tmp_path / "b.jpg"), missing, nothing]
    assert expand_inputs([tmp_path / "notes.txt"]) == [str(tmp_path / "notes.txt")]  # a named file as given
    assert expand_inputs([tmp_path / "empty"]) == []
    assert empty_folders([tmp_path, tmp_path / "empty", tmp_path / "b.jpg", missing]) == [str(tmp_path / "empty")]


@pytest.mark.parametrize("threads", [0, 2])
def test_batches_are_read_in_order_with_errors_in_their_place(tmp_path, threads):
    images = [np.full((4 + i, 5, 3), i, np.uint8) for i in range(5)]
    items = [images[0], tmp_path / "missing.png", images[2], images[3], images[4]]
    pool = ThreadPoolExecutor(threads) if threads else None
    try:
        batches = list(load_batches(items, batch_size=2, max_side=100, pool=pool))
    finally:
        if pool:
            pool.shutdown()
    assert [len(b) for b in batches] == [2, 2, 1]
    flat = [x for b in batches for x in b]
    assert isinstance(flat[1], ImageLoadError) and "missing.png" in str(flat[1])
    for i in (0, 2, 3, 4):
        assert flat[i].size == (4 + i, 5) and (flat[i].image == i).all() and flat[i].source == f"<image {i}>"
    assert list(load_batches([], batch_size=3)) == []


def test_stats_of_a_run_and_the_normalised_batch():
    assert stats_of("imagenet") == (list(IMAGENET_STATS[0]), list(IMAGENET_STATS[1]))
    assert stats_of({"mean": [0.5] * 3, "std": [0.25] * 3}) == ([0.5] * 3, [0.25] * 3)
    for bad in ("lite", {"mean": [0.5] * 3}, {"mean": [0.5] * 3, "std": [0.5, 0.5, 0.0]},
                {"mean": [0.5] * 2, "std": [0.5] * 2}, None):
        with pytest.raises(ValueError, match="unknown input normalisation"):
            stats_of(bad)
    images = torch.tensor([[[[0, 255, 51]]]], dtype=torch.uint8)            # B=1, H=1, W=1, RGB
    x = normalise_batch(images, ([0.5, 0.5, 0.2], [0.5, 0.25, 0.1]))
    assert x.shape == (1, 3, 1, 1) and x.dtype == torch.float32
    assert torch.allclose(x.flatten(), torch.tensor([-1.0, 2.0, 0.0]), atol=1e-6)
    default = normalise_batch(images)
    assert torch.allclose(default.flatten()[0], torch.tensor(-0.485 / 0.229))

