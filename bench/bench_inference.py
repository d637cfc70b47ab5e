"""Inference throughput: images per second through the plain U-Net and "Our model" at the paper's 288×192.

The network alone (``eval()``, ``torch.inference_mode``, batch 8, random weights — the speed does not depend
on them), on the CPU and, where available, on CUDA (fp16 autocast, as ``clothparse.parse`` runs it).
Also the whole :class:`clothparse.parse.Parser` on 825×550 photos (CCP's size), on each device: images from
memory, resizing, the network, the mask back at full size, boxes and colours (the last two on the CPU).
"""
from __future__ import annotations

import numpy as np
import torch

from clothparse.models import build_model, deployable

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


def _parser_rows(device: str, quick: bool) -> list[Row]:
    from PIL import Image

    from clothparse.parse import Parser

    model = build_model("extended_unet", input_size=SIZE).eval()
    parser = Parser(model=model, device=device, batch_size=BATCH)
    rng = np.random.default_rng(0)
    # smooth random "photos": noise images would make every garment a confetti of colours
    n = 2 if quick else BATCH
    small = rng.integers(0, 256, (n, 33, 22, 3), dtype=np.uint8)
    photos = [np.asarray(Image.fromarray(p).resize((550, 825), Image.Resampling.BICUBIC)) for p in small]
    if device.startswith("cuda"):
        parser(photos)  # warm-up
    seconds = best_time(lambda: parser(photos), repeat=1 if quick else 2, min_seconds=0.1 if quick else 1.0)
    return [Row(f"parse() 825×550 photos, {device}", n / seconds, "images/s",
                "extended_unet; resize, network, full-size mask, boxes, colours")]


@bench("inference", "images/s through unet and extended_unet at 288×192 (CPU, and CUDA when available)")
def inference(quick: bool) -> list[Row]:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = [row for d in devices for row in _network_rows(d, quick)]
    return rows + [row for d in devices for row in _parser_rows(d, quick)]
