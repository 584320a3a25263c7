"""Training images/s: our pipeline vs the seed way, same model and augmentation, one run.

    .venv/bin/pip install -r requirements-bench.txt   # tf-keras + scipy, for ImageDataGenerator
    .venv/bin/python benchmarks/bench_train.py [--data ../shared/data/catsdogs] [--steps 40] [--write]

Model: seed 000's net (4x conv+pool, Dense 512, 3,453,121 weights) at 150x150, batch 32,
RMSprop 1e-4. Augmentation: seed 000's settings (rotation 40, shifts 0.2, shear 0.2, zoom 0.2,
horizontal flip, fill nearest).
(a) the seed way: tf_keras ImageDataGenerator(rescale=1/255, ...).flow_from_directory feeding
    model.fit; decoding, resizing and augmentation happen per image in Python/SciPy on the CPU;
(b) ours: images decoded once into the cache (core.cache), fed as uint8 batches; augmentation is
    layers inside the model (core.augment.build: a flip and one RandomAffine), float32 and
    mixed_bfloat16; and, for comparison, the same settings as four chained Keras layers
    (RandomRotation, RandomTranslation, RandomShear, RandomZoom: four resamplings per image).
Images/s is measured over the steps after the first two (which include tracing).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.report import machine, write_section  # noqa: E402
from core import augment, cache, models  # noqa: E402
from core.data import scan  # noqa: E402
from core.devices import cpu_has_bf16  # noqa: E402
from core.feeding import batches  # noqa: E402

SIZE, BATCH, WARMUP = 150, 32, 2


class StepTimer(keras.callbacks.Callback):
    """Wall time per training step; the first WARMUP steps (tracing) are left out."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)

    def rate(self) -> float:
        return BATCH * len(self.times[WARMUP:]) / sum(self.times[WARMUP:])


def compile_(model) -> None:
    model.compile(optimizer=keras.optimizers.RMSprop(1e-4), loss="binary_crossentropy", metrics=["accuracy"])


def seed_way(data: Path, steps: int) -> float:
    from tf_keras.preprocessing.image import ImageDataGenerator

    gen = ImageDataGenerator(
        rescale=1 / 255,
        rotation_range=40,
        width_shift_range=0.2,
        height_shift_range=0.2,
        shear_range=0.2,
        zoom_range=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
    )
    flow = gen.flow_from_directory(
        data, target_size=(SIZE, SIZE), batch_size=BATCH, class_mode="binary", seed=0
    )
    keras.mixed_precision.set_dtype_policy("float32")
    # The same net; the generator already rescaled, so a Rescaling(1) keeps the layer count equal.
    model = models.build_scratch("seed000", SIZE, 2)
    compile_(model)
    times = []
    for _ in range(steps):  # model.fit on a Python generator stalled here, so step by hand
        x, y = next(flow)
        start = time.perf_counter()
        model.train_on_batch(x * 255.0, y)  # our nets rescale inside: undo the generator's rescale
        times.append(time.perf_counter() - start)
    # Decoding and augmentation happen in next(flow), outside the timed step: add them back per step.
    start = time.perf_counter()
    for _ in range(steps):
        next(flow)
    aug = (time.perf_counter() - start) / steps
    return BATCH * len(times[WARMUP:]) / (sum(times[WARMUP:]) + aug * len(times[WARMUP:]))


def chained_keras_layers() -> keras.Sequential:
    """Seed 000's augmentation as stock Keras layers, one resampling each (what build() made before)."""
    fill = {"fill_mode": "nearest", "interpolation": "bilinear"}
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=1),
            keras.layers.RandomRotation(40 / 360, seed=2, **fill),
            keras.layers.RandomTranslation(0.2, 0.2, seed=3, **fill),
            keras.layers.RandomShear(x_factor=math.tan(math.radians(0.2)), y_factor=0.0, seed=4, **fill),
            keras.layers.RandomZoom(0.2, seed=5, **fill),
        ],
        name="augmentation",
    )


def ours(images: np.ndarray, labels: np.ndarray, steps: int, precision: str, chained: bool = False) -> float:
    keras.mixed_precision.set_dtype_policy(precision)
    keras.utils.set_random_seed(0)
    aug = chained_keras_layers() if chained else augment.build(augment.PRESETS["seed-000"], seed=0)
    model = models.build_scratch("seed000", SIZE, 2, augmentation=aug)
    compile_(model)
    timer = StepTimer()
    model.fit(
        batches(images, labels, BATCH, shuffle=True, seed=0),
        steps_per_epoch=steps,
        epochs=1,
        callbacks=[timer],
        verbose=0,
    )
    keras.mixed_precision.set_dtype_policy("float32")
    return timer.rate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "catsdogs"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="time mixed_bfloat16 even where it is emulated")
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"error: {data} is not a folder")
    index = scan(data)
    with tempfile.TemporaryDirectory() as ws:
        arrays = cache.load_arrays(index.root, index.paths, index.labels, (SIZE, SIZE), workspace=ws)
        images, labels = arrays.images, np.asarray(arrays.labels)  # the memmap, as training reads it
        rows = [
            (
                "(a) seed way: ImageDataGenerator + seed 000 augmentation, one train step per batch",
                seed_way(data, args.steps),
            )
        ]
        # Without bfloat16 hardware bf16 is emulated (~6x slower than float32): skipped unless asked for.
        precisions = ["float32", *(["mixed_bfloat16"] if cpu_has_bf16() or args.bf16 else [])]
        for precision in precisions:
            label = (
                "(b) ours: cached uint8 + augmentation layers in the model"
                if precision == "float32"
                else "(b) ours"
            )
            rows.append((f"{label}, {precision}", ours(images, labels, args.steps, precision)))
        for precision in precisions:
            rows.append(
                (
                    f"(b) ours with four chained Keras layers instead of one RandomAffine, {precision}",
                    ours(images, labels, args.steps, precision, chained=True),
                )
            )
    base = rows[0][1]
    lines = ["| pipeline | images/s | vs seed way |", "|---|---:|---:|"]
    lines += [f"| {name} | {rate:,.1f} | {rate / base:.2f}x |" for name, rate in rows]
    table = "\n".join(lines)
    print(table)
    note = (
        "This CPU has bfloat16 hardware, so `precision=auto` picks mixed_bfloat16."
        if cpu_has_bf16()
        else "This CPU has no bfloat16 hardware (no AVX512-BF16/AMX), so `precision=auto` picks float32 here "
        "(bfloat16 rows skipped: emulated, it is several times slower; `--bf16` times it anyway)."
    )
    body = (
        f"Seed 000's net at {SIZE}x{SIZE}, batch {BATCH}, seed 000's augmentation, {args.steps} steps "
        f"(first {WARMUP} left out), on `{data.name}`.\n\nCommand: `.venv/bin/python benchmarks/bench_train.py "
        f"--write`\n\nMachine: {machine()}\n\n{table}\n\n{note}"
    )
    if args.write:
        print(f"wrote {write_section('Training throughput: seed 000 net with augmentation', body)}")


if __name__ == "__main__":
    main()
