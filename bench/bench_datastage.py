"""The data stage (reader, stores, split, refinement) on a small slice of iMaterialist-layout data.

A smoke-sized run of ``bench/datastage.py``: per stage, CPU ms per source image, the peak memory of its
process tree and the full set's cost projected on 2 and 16 cores. At this size the per-image costs carry
the fixed costs of each stage (imports are not counted, a store's worker start-up is); the measurement at
the paper's size is ``python bench/datastage.py --fraction 0.05 0.2`` (see its docstring and the book's
*Reproduce* page).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from benchlib import Row, bench

#: Shares of the 45,622 images: 46 images (quick) or 137 (the default run, about half a minute).
QUICK_FRACTION, FRACTION = 0.001, 0.003


@bench("datastage", "data stage per stage: CPU ms/image, peak memory, full-set projection (small slice)")
def datastage(quick: bool) -> list[Row]:
    from datastage import project, run_fraction
    from imat_synth import FULL_IMAGES

    fraction = QUICK_FRACTION if quick else FRACTION
    with tempfile.TemporaryDirectory(prefix="clothparse-datastage-") as tmp:
        run = run_fraction(fraction, Path(tmp), workers=None, progress=False)
    n = run["data"]["images"]
    rows = []
    total2 = total16 = 0.0
    for r in run["stages"]:
        cpu = r["cpu_serial_s"] + r["cpu_parallel_s"]
        p2, p16 = project(r, n, FULL_IMAGES, 2), project(r, n, FULL_IMAGES, 16)
        total2, total16 = total2 + p2, total16 + p16
        rows.append(Row(f"{r['stage']} ({n} images)", 1e3 * cpu / n, "CPU ms/image",
                        f"wall {r['seconds']:.1f} s, peak anon {r['peak_anon_mb']:,.0f} MB, "
                        f"rss {r['peak_rss_mb']:,.0f} MB"))
    rows.append(Row("full set projected, 2 cores", total2 / 60, "min", f"{FULL_IMAGES:,} images, linear"))
    rows.append(Row("full set projected, 16 cores", total16 / 60, "min", "stores ≤ 8 workers, refine ≤ 4 threads"))
    return rows
