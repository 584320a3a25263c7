"""Time the augmentation preview redraw: 2 configs (seed-000, strong) x 4 images x 6 variants at 180x180.

Usage: .venv/bin/python benchmarks/bench_augment.py [--write]
  --write  insert/replace the "## Augmentation preview" section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SECTION = "## Augmentation preview"
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


def cpu_name() -> str:
    """platform.processor(), or the model name from /proc/cpuinfo when that is empty."""
    name = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{name or platform.machine()} ({line.split(':', 1)[1].strip()})"
    except OSError:
        pass
    return name or platform.machine()


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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
    """The markdown section (heading included)."""
    import keras
    import tensorflow as tf

    def row(label: str, xs: list[float]) -> str:
        return f"| {label} | {statistics.median(xs):.2f} s | {min(xs):.2f} s |"

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        SECTION,
        "",
        f"`benchmarks/bench_augment.py`: `core.augment.preview()` redraw of {len(CONFIGS)} configs "
        f"({', '.join(CONFIGS)}) x {N_IMAGES} images x {N_VARIANTS} variants at {SIZE}x{SIZE}. "
        "Target: warm < 1 s.",
        "",
        "Command: `.venv/bin/python benchmarks/bench_augment.py --write`",
        "",
        f"Machine: {cpu_name()}, {cores()} cores; Keras {keras.__version__} ({keras.backend.backend()} backend), "
        f"TensorFlow {tf.__version__}, Python {platform.python_version()}; "
        f"{dt.date.today().isoformat()}; 1-min load average at the end {load:.2f} "
        "(other jobs share the 2 cores, so timings are noisy).",
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


def write_section(section: str, path: Path = ROOT / "docs" / "benchmarks.md") -> Path:
    """Insert or replace our section in docs/benchmarks.md, leaving other sections alone."""
    from core.fileio import atomic_write_text

    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    new = section.rstrip("\n").splitlines()
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *new]
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        tail = lines[end:]
        lines = [*lines[:start], *new, *([""] if tail else []), *tail]
    return atomic_write_text(path, "\n".join(lines).rstrip("\n") + "\n")


def main() -> None:
    """Run, print the table, optionally write it to docs/benchmarks.md."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    section = report(run())
    print(section)
    if args.write:
        print(f"wrote {write_section(section)}")


if __name__ == "__main__":
    main()
