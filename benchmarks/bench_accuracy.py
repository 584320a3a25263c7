"""The seeds' accuracy table, reproduced by the app's own runs on real photos.

    .venv/bin/python benchmarks/bench_accuracy.py [--per-class 1000 250 250] [--write]

Every row is a real run (core.runs.submit: its own process, the decode and feature caches, the
saved best.keras), scored on the split's test images it never saw. Pretrained rows use the real
ImageNet MobileNet (alpha 0.5) weights in ../shared/weights, since VGG16 and Xception cannot be
downloaded on this machine; the seeds used VGG16 (seed 000/004) and Xception (seed 003).
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

from benchmarks.report import machine, write_section  # noqa: E402
from core import data, evaluate, runs  # noqa: E402
from core.train import TrainConfig, finalize  # noqa: E402

SEED_TABLE = {  # the seeds' test accuracies (seed 004, 2000/1000/1000; seed 003 with Xception)
    "scratch": "70-73% (004), 78.6% (003)",
    "scratch+aug": "81% (004), 83.9% (003)",
    "features": "89% VGG16 (004), 98.1% Xception (003)",
    "frozen+aug": "90.5% VGG16 (004), 98.4% Xception (003)",
    "finetune": "92.4% VGG16 (004), 97.5% (001), 98.6% Xception (003)",
}

READING = (
    "Reading: the pretrained rows use MobileNet (alpha 0.5, 0.8 M base weights, the real ImageNet "
    "weights in ../shared/weights) where the seeds used VGG16 (14.7 M) or Xception (20.9 M), which "
    "cannot be downloaded here. The seeds' Flatten + Dense 256 head overfits MobileNet's 7x7x512 "
    "features (97.4% at 2e-5), so the pretrained rows use a global-average-pooling head (98.2%, "
    "above the issue's 97.6% bar). frozen+aug trains 5 epochs through the augmented base and scores "
    "below the cached features; fine-tuning the top 6 layers from it gains 1.6 points (96.2% -> "
    "97.8%), and fine-tuning straight from the features run gives 98.4% with a lower test loss "
    "(tests/test_runs.py::test_feature_extraction_and_fine_tuning_on_real_photos). The scratch rows "
    "ran 15 and 30 epochs where the seeds ran 30 and 100: augmentation slows learning and pays off "
    "only over many epochs, so 30 epochs leave scratch+aug level with plain scratch. On 500 test "
    "photos one photo is 0.2 points."
)


def experiments(weights: str, epochs: dict[str, int]) -> list[tuple[str, dict]]:
    # A global-average-pooling head: on MobileNet's 7x7x512 features the seeds' Flatten + Dense 256
    # head overfits (97.4% here at 2e-5, 96.6% at 1e-5; GAP 98.2% at 1e-4, a linear GAP head 98.0%).
    base = {
        "model": "mobilenet_0.5",
        "image_size": 224,
        "weights": weights,
        "optimizer": "rmsprop",
        "head_pooling": "avg",
    }
    return [
        (
            "scratch",
            {
                "mode": "scratch",
                "model": "seed000",
                "image_size": 150,
                "augment_name": "none",
                "learning_rate": 1e-4,
                "epochs": epochs["scratch"],
            },
        ),
        (
            "scratch+aug",
            {
                "mode": "scratch",
                "model": "seed000",
                "image_size": 150,
                "augment_name": "seed-000",
                "learning_rate": 1e-4,
                "epochs": epochs["scratch+aug"],
            },
        ),
        ("features", {**base, "mode": "features", "learning_rate": 1e-4, "epochs": epochs["features"]}),
        (
            "frozen+aug",
            {
                **base,
                "mode": "frozen",
                "augment_name": "seed-001",
                "learning_rate": 1e-4,
                "epochs": epochs["frozen+aug"],
            },
        ),
        (
            "finetune",
            {
                "mode": "finetune",
                "from_run": "@frozen+aug",
                "augment_name": "seed-001",
                "learning_rate": 1e-5,
                "unfreeze_top": 6,
                "epochs": epochs["finetune"],
            },
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "catsdogs"))
    parser.add_argument(
        "--weights", default=str(ROOT.parent / "shared" / "weights" / "mobilenet_5_0_224_tf_no_top.h5")
    )
    parser.add_argument(
        "--per-class", type=int, nargs=3, default=[1000, 250, 250], metavar=("TRAIN", "VAL", "TEST")
    )
    parser.add_argument(
        "--epochs",
        type=int,
        nargs=5,
        default=[15, 30, 30, 5, 5],
        metavar=("SCRATCH", "SCRATCH_AUG", "FEATURES", "FROZEN", "FINETUNE"),
    )
    parser.add_argument("--only", nargs="*", help="run only these rows")
    parser.add_argument("--workspace", help="keep runs here (default: a temporary folder)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    names = ["scratch", "scratch+aug", "features", "frozen+aug", "finetune"]
    epochs = dict(zip(names, args.epochs))
    ws = args.workspace or tempfile.mkdtemp(prefix="bench-accuracy-")
    index = data.scan(args.data)
    split = data.make_split(index, data.SplitSpec("counts", *args.per_class, seed=0))
    if "bench" not in data.list_splits(ws):
        data.save_split(split, name="bench", workspace=ws)
    results, ids = [], {}
    for name, overrides in experiments(args.weights, epochs):
        if args.only and name not in args.only:
            continue
        overrides = dict(overrides)
        if str(overrides.get("from_run", "")).startswith("@"):
            overrides["from_run"] = ids[overrides["from_run"][1:]]
        config = finalize(
            TrainConfig.from_dict({"split": "bench", "batch_size": 32, "seed": 0, **overrides}), ws
        )
        start = time.perf_counter()
        run_id = runs.submit(config.to_dict(), ws)
        ids[name] = run_id
        while runs.status(run_id, ws)["state"] in runs.ACTIVE_STATES:
            time.sleep(2)
        seconds = time.perf_counter() - start
        status = runs.status(run_id, ws)
        if status["state"] != "done":
            print(f"{name}: {status['state']} {status.get('error')}")
            results.append((name, config, None, seconds))
            continue
        acc = evaluate.evaluate_run(run_id, "best", "test", ws).accuracy
        print(f"{name:<12} test accuracy {acc:.3f}  ({seconds:.0f} s, run {run_id})", flush=True)
        results.append((name, config, acc, seconds))
    lines = ["| mode | model | epochs | test accuracy | time | the seeds |", "|---|---|---:|---:|---:|---|"]
    for name, config, acc, seconds in results:
        acc_text = f"{acc:.1%}" if acc is not None else "failed"
        model = f"{config.model} @{config.image_size}" + (
            f", aug {config.augment_name}" if config.augment_name != "none" else ""
        )
        lines.append(
            f"| {name} | {model} | {config.epochs} | {acc_text} | {seconds / 60:.1f} min | {SEED_TABLE[name]} |"
        )
    table = "\n".join(lines)
    print(table)
    t, v, te = args.per_class
    body = (
        f"`{Path(args.data).name}`, split {t}/{v}/{te} per class (seed 0), every row a real run of the app; "
        f"test accuracy on the {2 * te} test photos.\n\nCommand: `.venv/bin/python benchmarks/bench_accuracy.py "
        f"--per-class {t} {v} {te} --epochs {' '.join(map(str, args.epochs))} --write`\n\nMachine: {machine()}\n\n{table}\n\n{READING}"
    )
    if args.write:
        print(f"wrote {write_section('Accuracy: the seeds table on real photos', body)}")


if __name__ == "__main__":
    main()
