"""Inference throughput: images per second through the plain U-Net and "Our model" at the paper's 288×192.

The network alone (``eval()``, ``torch.inference_mode``, batch 8, random weights — the speed does not depend
on them), on the CPU and, where available, on CUDA (fp16 autocast, as ``clothparse.parser.parse`` runs it).
Also the whole :class:`clothparse.parser.parse.Parser` on 825×550 JPEG files (CCP's size), on each device: decoding,
resizing, the network, the mask back at full size, boxes and colours (the last two on the CPU) — one image after
the other and with the parser's thread pool, side by side.

``onnx_inference``: the shipped parser's network (smp U-Net, EfficientNet-Lite0, 192×128, random weights) on the
CPU through torch and through onnxruntime (its ``clothparse export`` ONNX file), side by side in one run, at the
same thread count — the network alone, then the whole parser on 825×550 photos with each backend.

``parse_cost``: what the parser costs beyond its network — the shipped parser's network alone (torch, batch 8)
and the whole ``clothparse parse`` of 825×550 JPEG files (decoding, resizing, the network, the full-size mask,
boxes, colours, and writing each photo's mask PNG, overlay JPEG and JSON), timed side by side in one run, and
the ratio of the two rates ("parse / network alone": 1 would mean the rest of the parse were free): five rounds
of the two one after the other, the median of the rounds' ratios (the machines are shared; a round's two
times see about the same load). The photos
are CCP's where ``../shared/data/ccp`` is beside the checkout, else synthetic people; the network runs with
random weights but answers the photos' ground truth (:class:`_TrainedAnswers`), because what follows the
network costs what the masks make it cost.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clothparse.models import build_model, deployable
from clothparse.runs import RunDir, write_json

from benchlib import Row, bench, best_time

SIZE = (288, 192)
BATCH = 8
MODELS = ("unet", "extended_unet")


def _network_rows(device: str, quick: bool) -> list[Row]:
    rows = []
    amp = device.startswith("cuda")
    for name in MODELS:
        model = deployable(build_model(name, input_size=SIZE)).to(device).eval()
        x = torch.randn(BATCH, 3, *SIZE, device=device)

        def step(model=model, x=x):
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                out = model(x)
            if amp:
                torch.cuda.synchronize()
            return out

        if amp or not quick:
            step()  # warm-up: cuDNN autotuning, lazy allocations
        seconds = best_time(step, repeat=1 if quick else 3, min_seconds=0.1 if quick else 1.0)
        note = f"batch {BATCH}, {'fp16 autocast' if amp else 'fp32'}, {torch.get_num_threads()} CPU threads"
        rows.append(Row(f"{name} {SIZE[0]}×{SIZE[1]} {device}", BATCH / seconds, "images/s", note))
        del model
    return rows


def _photos(n: int) -> list[np.ndarray]:
    """Smooth random 825×550 "photos": noise images would make every garment a confetti of colours."""
    from PIL import Image

    small = np.random.default_rng(0).integers(0, 256, (n, 33, 22, 3), dtype=np.uint8)
    return [np.asarray(Image.fromarray(p).resize((550, 825), Image.Resampling.BICUBIC)) for p in small]


def _parser_rows(device: str, quick: bool) -> list[Row]:
    """The whole parser on 825×550 JPEG files (decoding included), one image after the other (``workers=0``)
    and with its default thread pool (reading the next batch and finishing results beside the network)."""
    import tempfile

    from PIL import Image

    from clothparse.parser.parse import Parser, default_workers

    model = build_model("extended_unet", input_size=SIZE).eval()
    n = 2 * BATCH if not quick else BATCH
    rows, rates = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for k, photo in enumerate(_photos(n)):
            files.append(f"{tmp}/photo{k:02d}.jpg")
            Image.fromarray(photo).save(files[-1], quality=90)
        for workers in (0, default_workers()):
            parser = Parser(model=model, device=device, batch_size=BATCH, workers=workers)
            if device.startswith("cuda"):
                parser(files[:BATCH])  # warm-up
            seconds = best_time(lambda p=parser: p(files), repeat=1 if quick else 2,
                                min_seconds=0.1 if quick else 1.0)
            rates[workers] = n / seconds
            rows.append(Row(f"parse() 825×550 JPEGs, {device}, workers={workers}", rates[workers], "images/s",
                            "extended_unet; decode, resize, network, full-size mask, boxes, colours"))
    rows.append(Row(f"parse() threads / one after the other, {device}", rates[default_workers()] / rates[0], "ratio",
                    f"{default_workers()} threads, {torch.get_num_threads()} torch threads"))
    return rows


@bench("inference", "images/s through unet and extended_unet at 288×192 (CPU, and CUDA when available)")
def inference(quick: bool) -> list[Row]:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = [row for d in devices for row in _network_rows(d, quick)]
    return rows + [row for d in devices for row in _parser_rows(d, quick)]


# --- torch vs onnxruntime ------------------------------------------------------------------------------------
PARSER_SIZE = (192, 128)


def _parser_run(folder) -> RunDir:
    """A finished run folder of the shipped parser's architecture (random weights: the speed does not depend on
    them), so the real export path makes the ONNX file."""

    from safetensors.torch import save_file

    from clothparse.categories import CLASSES

    folder = Path(folder)
    torch.manual_seed(0)  # the same weights each run: the parse's masks, hence its cost beyond the network, too
    net = build_model("smp_unet", input_size=PARSER_SIZE, encoder_name="tf_efficientnet_lite0")
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    write_json(folder / "params.json", {"model": "smp_unet", "variant": "base", "size": list(PARSER_SIZE),
                                        "input_size": list(PARSER_SIZE), "classes": list(CLASSES),
                                        "encoder_name": "tf_efficientnet_lite0",
                                        "normalisation": {"mean": [0.5] * 3, "std": [0.5] * 3}})
    run = RunDir(folder)
    run.mark_complete()
    return run


@bench("onnx_inference", "CPU images/s of the parser's network and the whole parser: torch vs onnxruntime")
def onnx_inference(quick: bool) -> list[Row]:
    import tempfile

    from clothparse.parser.export import export_onnx
    from clothparse.parser.parse import Parser

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run = _parser_run(f"{tmp}/smp_unet-bench")
        onnx_path = export_onnx(run.path, f"{tmp}/model.onnx")
        parsers = {"torch": Parser(run=run.path, device="cpu", batch_size=BATCH),
                   "onnxruntime": Parser(run=onnx_path, device="cpu", batch_size=BATCH)}
        x = torch.randn(BATCH, 3, *PARSER_SIZE)
        threads = f"{torch.get_num_threads()} CPU threads"
        for name, parser in parsers.items():
            parser.network(x)  # warm-up: onnxruntime plans its graph on the first run
            seconds = best_time(lambda p=parser: p.network(x), repeat=1 if quick else 3,
                                min_seconds=0.1 if quick else 1.0)
            rows.append(Row(f"smp_unet lite0 {PARSER_SIZE[0]}×{PARSER_SIZE[1]} cpu, {name}", BATCH / seconds,
                            "images/s", f"network alone, batch {BATCH}, fp32, {threads}"))
        n = 2 if quick else BATCH
        photos = _photos(n)
        for name, parser in parsers.items():
            seconds = best_time(lambda p=parser: p(photos), repeat=1 if quick else 2, min_seconds=0.1 if quick else 1.0)
            rows.append(Row(f"parse() 825×550 photos, cpu, {name}", n / seconds, "images/s",
                            "smp_unet lite0; resize, network, full-size mask, boxes, colours"))
    return rows


def _parse_and_write(parser, files: list[str], out) -> None:
    """What ``clothparse parse`` does per photo once its model is loaded (:func:`clothparse.parser.files.parse_files`
    without its progress bar and summary.csv): parse, then write the mask, overlay and JSON."""
    from clothparse.parser.outputs import write_outputs

    for f, res in zip(files, parser.iter_parse(files, errors="report")):
        write_outputs(res, out, Path(f).stem, run=parser.run)


class _TrainedAnswers(torch.nn.Module):
    """The shipped network's cost with a trained model's answers. ``module`` runs on every batch, as in a real
    parse; the logits returned are the ground truth of the photos, in the order they are parsed, as soft one-hot
    planes at the network's resolution. What the parse does after the network depends on the masks (a class
    boundary costs the full-size argmax more, each garment costs its colours): a random network's confetti
    would measure another workload than a trained model's few garments with smooth outlines."""

    def __init__(self, module: torch.nn.Module, masks: list[np.ndarray], size: tuple[int, int]):
        import torch.nn.functional as F
        from PIL import Image

        from clothparse.categories import NUM_CLASSES

        super().__init__()
        self.module, self.input_size, self.next = module, tuple(size), 0
        planes = []
        for m in masks:
            small = np.array(Image.fromarray(m).resize((size[1], size[0]), Image.Resampling.NEAREST))
            onehot = F.one_hot(torch.from_numpy(small).long(), NUM_CLASSES).permute(2, 0, 1).float()[None]
            planes.append(8 * F.avg_pool2d(onehot, 3, 1, 1, count_include_pad=False)[0])  # soft outlines
        self.answers = torch.stack(planes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        self.module(x)
        k = torch.arange(self.next, self.next + len(x)) % len(self.answers)
        self.next += len(x)
        return self.answers[k], None  # (segmentation, class logits) as the parser's deployed models answer


#: CCP beside the checkout, as on the project's machines (``../shared/data/ccp``); without it, synthetic people
CCP_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ccp"


def _workload(n: int, folder: Path) -> tuple[list[str], list[np.ndarray], str]:
    """``n`` 825×550 JPEG photos of people and their class-id masks, and what they are: CCP's first photos with
    their annotations where CCP is beside the checkout, else synthetic people
    (:func:`clothparse.datasets.synthetic.scene.draw_image`: textured garments, a background, shading) saved
    at quality 90."""
    from PIL import Image

    if (CCP_ROOT / "annotations").is_dir():
        from clothparse.datasets.ccp import CCP

        names = sorted(p.name for p in (CCP_ROOT / "photos").glob("*.jpg"))[:2 * n]
        ccp = CCP(CCP_ROOT, image_ids=[i for i in names if (CCP_ROOT / "annotations" / "pixel-level" /
                                                           f"{Path(i).stem}.mat").is_file()])
        files = [str(ccp.photo_dir / ccp.image_ids[i]) for i in range(n)]
        return files, [ccp.mask_of(i) for i in range(n)], "CCP photos"
    from clothparse.datasets.synthetic.scene import draw_image

    files, masks = [], []
    for i in range(n):
        drawn = draw_image(11, i, height=825, width=550)
        files.append(str(folder / f"photo{i:02d}.jpg"))
        Image.fromarray(drawn.image).save(files[-1], quality=90)
        masks.append(drawn.semantic)
    return files, masks, "synthetic people"


@bench("parse_cost", "CPU: the whole parse of 825×550 JPEGs, outputs written, vs the parser's network alone")
def parse_cost(quick: bool) -> list[Row]:
    import tempfile

    from clothparse.parser.parse import Parser

    n = BATCH if quick else 4 * BATCH
    with tempfile.TemporaryDirectory() as tmp:
        files, masks, what = _workload(n, Path(tmp))
        torch.manual_seed(0)
        network = build_model("smp_unet", input_size=PARSER_SIZE, encoder_name="tf_efficientnet_lite0").eval()
        model = _TrainedAnswers(network, masks, PARSER_SIZE)
        parser = Parser(model=model, device="cpu", batch_size=BATCH,
                        normalisation={"mean": [0.5] * 3, "std": [0.5] * 3})
        out = Path(tmp) / "out"
        out.mkdir()
        x = torch.randn(BATCH, 3, *PARSER_SIZE)
        parser.network(x)  # warm-up
        rounds, min_seconds = (1, 0.1) if quick else (5, 1.0)
        alone, whole = [], []
        for _ in range(rounds):  # alternating: each round's two times see the same load on a shared machine
            alone.append(best_time(lambda: parser.network(x), repeat=1, min_seconds=min_seconds) / BATCH)
            model.next = 0  # the answers follow the photos from the first
            whole.append(best_time(lambda: _parse_and_write(parser, files, out), repeat=1,
                                   min_seconds=min_seconds) / n)
    garments = sum(len(np.unique(m)) - (m == 0).any() for m in masks) / n
    threads = f"{torch.get_num_threads()} torch threads, {parser.workers} parser threads"
    ratios = [a / w for a, w in zip(alone, whole)]
    return [Row(f"smp_unet lite0 {PARSER_SIZE[0]}×{PARSER_SIZE[1]} cpu, network alone", 1 / float(np.median(alone)),
                "images/s", f"torch, batch {BATCH}, fp32, {threads}; median of {rounds} rounds"),
            Row("parse 825×550 JPEGs, outputs written, cpu", 1 / float(np.median(whole)), "images/s",
                f"{what}, {garments:.1f} garments a photo; decode, resize, network, full-size mask, boxes, "
                "colours, mask PNG, overlay JPEG, JSON"),
            Row("parse / network alone", float(np.median(ratios)), "ratio",
                f"median of {rounds} rounds, each side by side (range {min(ratios):.2f}–{max(ratios):.2f}); {threads}")]
