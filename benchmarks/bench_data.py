"""Images per second for one epoch of input at 150x150: the seed way vs Keras vs our cache.

    .venv/bin/pip install -r requirements-bench.txt   # tf-keras, for ImageDataGenerator
    .venv/bin/python benchmarks/bench_data.py [--data ../shared/data/catsdogs] [--write]

(a) tf_keras ImageDataGenerator(rescale=1/255).flow_from_directory, batch 20 (seed 000);
(b) keras.utils.image_dataset_from_directory, batch 32, rescaled to [0, 1];
(c) core.cache: cold (decode into the cache), then a warm epoch reading the memmap in batches
    of 32 with the same float conversion.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.report import machine, write_section  # noqa: E402

SIZE = (150, 150)


def seed_way(data: Path) -> tuple[int, float]:
    from tf_keras.preprocessing.image import ImageDataGenerator

    gen = ImageDataGenerator(rescale=1 / 255).flow_from_directory(
        data, target_size=SIZE, batch_size=20, class_mode="binary", shuffle=True, seed=0
    )
    start, n = time.perf_counter(), 0
    for _ in range(len(gen)):
        x, _y = next(gen)
        n += len(x)
    return n, time.perf_counter() - start


def keras_dataset(data: Path) -> tuple[int, float]:
    import keras

    ds = keras.utils.image_dataset_from_directory(data, image_size=SIZE, batch_size=32, seed=0, verbose=False)
    start, n = time.perf_counter(), 0
    for x, _y in ds:
        n += int((x / 255.0).shape[0])
    return n, time.perf_counter() - start


def ours(data: Path, workspace: Path) -> tuple[tuple[int, float], tuple[int, float]]:
    from core import cache
    from core.data import scan

    index = scan(data)
    start = time.perf_counter()
    arrays = cache.load_arrays(index.root, index.paths, index.labels, SIZE, workspace=workspace)
    cold = (len(arrays), time.perf_counter() - start)

    start = time.perf_counter()
    warm_arrays = cache.load_arrays(index.root, index.paths, index.labels, SIZE, workspace=workspace)
    assert warm_arrays.decoded == 0
    order = np.random.default_rng(0).permutation(len(warm_arrays))
    n = 0
    batch = np.empty((32, *SIZE, 3), dtype=np.float32)
    for i in range(0, len(order), 32):
        idx = np.sort(order[i : i + 32])  # sorted reads are kinder to the page cache
        x = batch[: len(idx)]
        np.multiply(warm_arrays.images[idx], np.float32(1 / 255), out=x)  # one pass, no temporaries
        n += len(x)
    return cold, (n, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "catsdogs"))
    parser.add_argument("--write", action="store_true", help="write the table to docs/benchmarks.md")
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"error: {data} is not a folder")

    with tempfile.TemporaryDirectory() as ws:
        rows = []
        n, t = seed_way(data)
        seed_rate = n / t
        rows.append(("(a) seed way: ImageDataGenerator.flow_from_directory (tf-keras)", n, t))
        n, t = keras_dataset(data)
        rows.append(("(b) keras.utils.image_dataset_from_directory", n, t))
        (cn, ct), (wn, wt) = ours(data, Path(ws))
        rows.append(("(c) core.cache, cold (decode once into the cache)", cn, ct))
        rows.append(("(c) core.cache, warm epoch (memmap -> float32 batches)", wn, wt))

    lines = ["| pipeline | images | seconds | images/s | vs seed way |", "|---|---:|---:|---:|---:|"]
    for name, n, t in rows:
        lines.append(f"| {name} | {n:,} | {t:.2f} | {n / t:,.0f} | {n / t / seed_rate:.1f}x |")
    table = "\n".join(lines)
    print(table)
    body = (
        f"One epoch over `{data.name}` ({rows[0][1]:,} photos) at {SIZE[0]}x{SIZE[1]}.\n\n"
        f"Command: `.venv/bin/python benchmarks/bench_data.py --write`\n\nMachine: {machine()}\n\n{table}"
    )
    if args.write:
        print(f"wrote {write_section('Data loading: one epoch at 150x150', body)}")


if __name__ == "__main__":
    main()
