"""Time the augmentation preview redraw: 2 configs (seed-000, strong) x 4 images x 6 variants at 180x180.

Usage: .venv/bin/python benchmarks/bench_augment.py [--write]
  --write  insert/replace the "## Augmentation preview" section of docs/benchmarks.md
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for core and benchmarks

import numpy as np  # noqa: E402

from benchmarks.report import machine_and_load, print_or_write  # noqa: E402

TITLE = "Augmentation preview"
CONFIGS = ("seed-000", "strong")
N_IMAGES, N_VARIANTS, SIZE, REPEATS = 4, 6, 180, 5


def make_images(n: int = N_IMAGES, size: int = SIZE) -> np.ndarray:
    """Deterministic uint8 (n, size, size, 3) test images: gradients, a disc and noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = []
    for i in range(n):
        r = 255 * xx
        g = 255 * yy
        b = 255 * ((xx - 0.5 + 0.1 * i) ** 2 + (yy - 0.5) ** 2 < 0.08)
        img = np.stack([r, g, b], -1) + rng.normal(0, 12, (size, size, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def run() -> dict[str, list[float]]:
    """Timings in seconds: keras import, cold redraw, warm redraws, redraw after one setting changed."""
    t0 = time.perf_counter()
    import keras  # noqa: F401  (timed on its own: the app imports it once at start-up)

    t_import = time.perf_counter() - t0
    from core import augment as A

    imgs = make_images()
    seeds = list(range(N_VARIANTS))
    configs = [A.PRESETS[name] for name in CONFIGS]

    def redraw(cfgs, **kw) -> float:
        t = time.perf_counter()
        for cfg in cfgs:
            out = A.preview(cfg, imgs, seeds, **kw)
            assert out.shape == (N_IMAGES, N_VARIANTS, SIZE, SIZE, 3)
        return time.perf_counter() - t

    cold = redraw(configs)
    warm = [redraw(configs) for _ in range(REPEATS)]
    # A slider moved: 'strong' gets a new rotation each time (new layer stack, new rotation draws).
    changed = [
        redraw([configs[0], dataclasses.replace(configs[1], rotation_deg=31.0 + i)]) for i in range(REPEATS)
    ]
    per_seed = [redraw(configs, batched=False) for _ in range(REPEATS)]
    return {"import": [t_import], "cold": [cold], "warm": warm, "changed": changed, "per_seed": per_seed}


def report(t: dict[str, list[float]]) -> str:
    """The markdown section body (without its heading)."""

    def row(label: str, xs: list[float]) -> str:
        return f"| {label} | {statistics.median(xs):.2f} s | {min(xs):.2f} s |"

    lines = [
        f"`benchmarks/bench_augment.py`: `core.augment.preview()` redraw of {len(CONFIGS)} configs "
        f"({', '.join(CONFIGS)}) x {N_IMAGES} images x {N_VARIANTS} variants at {SIZE}x{SIZE}. "
        "Target: warm < 1 s.",
        "",
        "Command: `.venv/bin/python benchmarks/bench_augment.py --write`",
        "",
        machine_and_load(),
        "",
        "| case | median | best |",
        "|---|---:|---:|",
        row("`import keras` (TensorFlow start-up, once per process; not part of a redraw)", t["import"]),
        row("cold: first redraw after the import (builds the layers)", t["cold"]),
        row(f"warm: same configs and seeds again ({REPEATS} runs)", t["warm"]),
        row(f"one setting changed: 'strong' rotation moved ({REPEATS} runs)", t["changed"]),
        row(f"warm, unbatched reference path `batched=False` ({REPEATS} runs)", t["per_seed"]),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print_or_write(__doc__, TITLE, lambda: report(run()))
