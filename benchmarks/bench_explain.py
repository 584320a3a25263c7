"""Time the explain views on a VGG16 transfer model at 224 px (random weights; speed does not depend on them).

For Grad-CAM, Grad-CAM++, Score-CAM (max_channels 64) at base/block5_conv3, and for the activations
+ channel grid of base/block1_conv1 (64 channels, 224x224) and base/block5_conv3 (512 channels,
14x14): the first call (builds and caches the replayed model) and the median of 5 warm calls, one
image each time. The model is built before timing starts, like a model the app already loaded.

Usage: .venv/bin/python benchmarks/bench_explain.py [--write]
  --write  insert/replace the "## Explain: Grad-CAM and activations on VGG16 at 224" section of docs/benchmarks.md
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for core and benchmarks

import numpy as np  # noqa: E402

from benchmarks.report import machine_and_load, print_or_write  # noqa: E402

TITLE = "Explain: Grad-CAM and activations on VGG16 at 224"
SIZE, REPEATS, TARGET = 224, 5, "base/block5_conv3"


def make_image(size: int = SIZE) -> np.ndarray:
    """A deterministic uint8 (size, size, 3) image: a colour ramp, a disc and noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([255 * xx, 255 * yy, 255 * ((xx - 0.4) ** 2 + (yy - 0.6) ** 2 < 0.05)], -1)
    return np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(first call, median of REPEATS warm calls) in seconds."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    warm = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t)
    return first, statistics.median(warm)


def run() -> list[tuple[str, float, float]]:
    """Rows (what, first call s, warm median s)."""
    import keras

    from core import explain as E
    from core import models as M

    keras.utils.set_random_seed(0)
    model = M.build_transfer("vgg16", SIZE, 2, weights=None)
    image = make_image()
    model(image[None].astype("float32"))  # the app's model has run once already

    rows = []
    for name, fn in (
        ("Grad-CAM", lambda: E.gradcam(model, image, TARGET)),
        ("Grad-CAM++", lambda: E.gradcam_plus_plus(model, image, TARGET)),
        ("Score-CAM (64 channels)", lambda: E.scorecam(model, image, TARGET, max_channels=64)),
    ):
        first, warm = timed(fn)
        rows.append((f"{name} at {TARGET} (14x14)", first, warm))
        print(f"{rows[-1][0]:<50} first {first:6.2f} s  warm {warm:6.3f} s", flush=True)
    for path, label in (("base/block1_conv1", "224x224x64"), ("base/block5_conv3", "14x14x512, page of 64")):
        per_page = 64

        def view(path=path, per_page=per_page):
            act = E.activations(model, image, [path])[path]
            return E.channel_grid(act, per_page=per_page)

        first, warm = timed(view)
        rows.append((f"activations + channel grid of {path} ({label})", first, warm))
        print(f"{rows[-1][0]:<50} first {first:6.2f} s  warm {warm:6.3f} s", flush=True)
    return rows


def report(rows: list[tuple[str, float, float]]) -> str:
    """The markdown section body."""
    lines = [
        f'One {SIZE}x{SIZE} image through `build_transfer("vgg16", {SIZE}, 2, weights=None)` '
        "(15 M weights, model already built and run once). First call = builds and caches the "
        f"replayed model; warm = median of {REPEATS} calls. Score-CAM runs 64 masked images through "
        "the whole model.",
        "",
        "| view | first call | warm (median) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {what} | {first:.2f} s | {warm:.3f} s |" for what, first, warm in rows]
    lines += [
        "",
        "Command: `.venv/bin/python benchmarks/bench_explain.py --write`",
        "",
        machine_and_load(),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print_or_write(__doc__, TITLE, lambda: report(run()))
