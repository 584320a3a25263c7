"""Time the Try it page's picture-to-answer (core.tryit.answer: decode, resize, predict, Grad-CAM,
overlay) for a MobileNet 0.25 and 0.5 transfer model at 224 px (the real ImageNet bases in
../shared/weights; heads untrained, speed does not depend on them) and the quick demo's compact
scratch net at 32 px.

Each model is saved as .keras and loaded the way the app loads it (core.modelfile, safe mode), once;
then for a camera picture (640x480 JPEG) and a phone photo (4032x3024 JPEG): the first answer
(builds and caches the Grad-CAM model) and the median of 5 warm answers. The page's target is under
1 s warm.

Usage: .venv/bin/python benchmarks/bench_try_it.py [--weights DIR] [--write]
  --write  insert/replace the "## Try it: picture to answer" section of docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.bench_explain import REPEATS, make_image, timed  # noqa: E402
from benchmarks.report import machine, write_section  # noqa: E402

SECTION = "## Try it: picture to answer"
PICTURES = {"camera 640x480 JPEG": (640, 480), "phone photo 4032x3024 JPEG": (4032, 3024)}
WEIGHT_FILES = {
    "mobilenet_0.25": "mobilenet_2_5_224_tf_no_top.h5",
    "mobilenet_0.5": "mobilenet_5_0_224_tf_no_top.h5",
}
TARGET_SECONDS = 1.0


def jpeg(width: int, height: int) -> bytes:
    """make_image's ramp, disc and noise stretched to width x height, as JPEG bytes (quality 90)."""
    pixels = cv2.resize(make_image(512), (width, height), interpolation=cv2.INTER_LINEAR)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def models_to_time(weights_dir: Path) -> list[tuple[str, object]]:
    """(description, built Keras model): the MobileNets whose weights are present, then compact."""
    from core import models as M

    out = []
    for name, file in WEIGHT_FILES.items():
        path = weights_dir / file
        if not path.is_file():
            print(f"skipped {name}: no {path}", flush=True)
            continue
        model = M.build_transfer(name, 224, 2, weights=str(path), pooling="avg")
        out.append((f"{name} at 224 px ({model.count_params():,} weights)", model))
    compact = M.build_scratch("compact", 32, 4)
    out.append((f"compact (quick demo) at 32 px ({compact.count_params():,} weights)", compact))
    return out


def run(weights_dir: Path) -> list[tuple[str, str, float, float, float]]:
    """Rows (model, picture, load s, first answer s, warm median s)."""
    import keras

    from core import modelfile, tryit

    keras.utils.set_random_seed(0)
    pictures = {name: jpeg(*size) for name, size in PICTURES.items()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for what, model in models_to_time(weights_dir):
            file = Path(tmp) / f"{len(rows)}.keras"
            model.save(file)
            t = time.perf_counter()
            loaded = modelfile.from_file(file)
            load = time.perf_counter() - t
            for picture, data in pictures.items():
                first, warm = timed(lambda loaded=loaded, data=data: tryit.answer(loaded, data))
                rows.append((what, picture, load, first, warm))
                print(
                    f"{what:<48} {picture:<28} load {load:5.2f} s  first {first:5.2f} s  warm {warm:6.3f} s"
                )
                load = float("nan")  # loaded once per model
    return rows


def report(rows: list[tuple[str, str, float, float, float]]) -> str:
    """The markdown section body."""
    load = os.getloadavg()[0]
    worst = max((warm for *_, warm in rows), default=float("nan"))
    lines = [
        "`core.tryit.answer` on one picture's bytes: decode and resize (core.images), predict, Grad-CAM "
        "of the predicted class on the last conv layer, overlay at 384 px. Models saved as .keras and "
        "loaded as the app does (core.modelfile, safe mode); the page keeps a loaded model "
        "(st.cache_resource), so only the first picture after loading pays for building the Grad-CAM "
        "model (first answer of the camera rows; the phone rows' first answer is that picture's "
        f"first). Warm = median of {REPEATS} answers. MobileNet heads are untrained (speed does not "
        "depend on the weights).",
        "",
        "| model | picture | load model | first answer | warm answer (median) |",
        "|---|---|---:|---:|---:|",
    ]
    for what, picture, loaded, first, warm in rows:
        shown = f"{loaded:.2f} s" if loaded == loaded else "(loaded)"
        lines.append(f"| {what} | {picture} | {shown} | {first:.2f} s | {warm:.3f} s |")
    verdict = "under" if worst < TARGET_SECONDS else "OVER"
    lines += [
        "",
        f"Slowest warm answer {worst:.3f} s: {verdict} the page's {TARGET_SECONDS:.0f} s target.",
        "",
        "Command: `.venv/bin/python benchmarks/bench_try_it.py --write`",
        "",
        f"Machine: {machine()}; 1-min load average at the end {load:.2f}.",
    ]
    return "\n".join(lines)


def main() -> None:
    """Run, print the table, optionally write it to docs/benchmarks.md."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=ROOT.parent / "shared" / "weights")
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    section = report(run(args.weights))
    print(section)
    if args.write:
        print(f"wrote {write_section(SECTION.removeprefix('## '), section)}")


if __name__ == "__main__":
    main()
