"""Command line: python -m core {data,demo} ... (see README for every command)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.data import DataError


def _progress(label: str):
    """A one-line progress counter on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total}", end=end, file=sys.stderr, flush=True)

    return report


def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import ensure_demo

    path = ensure_demo(args.workspace)
    print(path)
    return 0


def cmd_data_scan(args: argparse.Namespace) -> int:
    from core.data import scan

    index = scan(args.path, progress=_progress("checking"))
    print(f"{index.root}  layout: {index.layout}  images: {len(index)}  classes: {len(index.classes)}")
    for name, count in index.class_counts().items():
        print(f"  {name:<24} {count:>7}")
    if index.layout == "pre_split" and index.given_splits:
        from collections import Counter

        print(
            "  given splits: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(index.given_splits).items()))
        )
    if index.ignored:
        print(f"ignored (hidden or not images): {index.ignored}")
    if index.problems:
        print(f"left out: {len(index.problems)}")
        for p in index.problems[: args.show]:
            print(f"  {p.path}: {p.reason}")
        if len(index.problems) > args.show:
            print(f"  ... and {len(index.problems) - args.show} more")
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from core.data import SplitSpec, make_split, save_split, scan

    values = (args.train, args.val, args.test)
    if args.given:
        method = "given"
    elif all(float(v) == int(v) and v >= 1 or v == 0 for v in values) and sum(values) > 1:
        method = "counts"
    else:
        method = "fractions"
    spec = SplitSpec(
        method=method, train=args.train, val=args.val, test=args.test, seed=args.seed, balance=args.balance
    )
    index = scan(args.path, progress=_progress("checking"))
    split = make_split(index, spec, name=args.name)
    path = save_split(split, workspace=args.workspace, overwrite=args.overwrite)
    print(f"saved split '{split.name}' ({spec.method}, seed {spec.seed}) to {path}")
    for subset, counts in split.table().items():
        print(f"  {subset:<6} " + "  ".join(f"{c} {n}" for c, n in counts.items()))
    return 0


def cmd_data_materialize(args: argparse.Namespace) -> int:
    from core.data import load_split, materialize

    split = load_split(args.name, args.workspace)
    changed = split.changed()
    if changed:
        raise DataError(f"split '{args.name}': {changed}")
    out = materialize(split, args.dir, progress=_progress("linking"))
    print(f"wrote {out}/{{train,validation,test}}/<class>/")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from core.data import list_splits, load_split

    for name in list_splits(args.workspace):
        split = load_split(name, args.workspace)
        sizes = ", ".join(f"{s} {len(v)}" for s, v in split.subsets.items())
        print(f"{name}: {split.dataset_root} ({sizes})")
    return 0


TRAIN_FLAGS = {  # flag -> TrainConfig field
    "split": "split",
    "mode": "mode",
    "model": "model",
    "size": "image_size",
    "resize": "resize_policy",
    "augment": "augment_name",
    "weights": "weights",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "optimizer": "optimizer",
    "schedule": "lr_schedule",
    "patience": "patience",
    "seed": "seed",
    "precision": "precision",
    "xla": "jit_compile",
    "from_run": "from_run",
    "unfreeze_from": "unfreeze_from",
    "unfreeze_top": "unfreeze_top",
    "head_pooling": "head_pooling",
    "name": "name",
}


def _follow(run_id: str, workspace) -> int:
    """Print epoch rows as they arrive until the run ends; Ctrl-C detaches (the run goes on)."""
    import time

    from core import runs

    shown = 0
    try:
        while True:
            rows = [r for r in runs.metrics(run_id, workspace) if r.get("kind") == "epoch"]
            for r in rows[shown:]:
                val = (
                    f"  val_loss {r['val_loss']:.4f}  val_acc {r['val_accuracy']:.3f}"
                    if "val_loss" in r
                    else ""
                )
                print(
                    f"epoch {r['epoch']:>3}  loss {r.get('loss', float('nan')):.4f}  "
                    f"acc {r.get('accuracy', float('nan')):.3f}{val}  {r.get('images_per_s', 0):.0f} img/s",
                    flush=True,
                )
            shown = len(rows)
            status = runs.status(run_id, workspace)
            if status["state"] not in runs.ACTIVE_STATES:
                print(
                    f"run {run_id}: {status['state']}"
                    + (f" ({status['error']})" if status.get("error") else "")
                )
                return 0 if status["state"] in ("done", "stopped") else 1
            time.sleep(1.0)
    except KeyboardInterrupt:
        print(f"\ndetached; the run goes on. Follow it with: python -m core runs show {run_id}")
        return 0


def cmd_train(args: argparse.Namespace) -> int:
    import json

    from core import runs
    from core.train import TrainConfig, finalize, seed_defaults

    values: dict = {}
    if args.config:
        values.update(json.loads(open(args.config, encoding="utf-8").read()))
    mode = args.mode or values.get("mode", "scratch")
    if not args.config:
        values.update(seed_defaults(mode))
    for flag, field in TRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            values[field] = value
    values["mode"] = mode
    config = finalize(TrainConfig.from_dict(values), args.workspace)
    if args.workers:
        from core import distributed

        if not args.out:
            raise ValueError("--out DIR is needed with --workers")
        return distributed.run(
            config,
            args.workers,
            args.out,
            worker_index=args.worker_index,
            coordinator=args.coordinator,
            workspace=args.workspace,
        )
    run_id = runs.submit(config.to_dict(), args.workspace)
    print(f"started run {run_id}")
    return 0 if args.detach else _follow(run_id, args.workspace)


def cmd_runs(args: argparse.Namespace) -> int:
    import time

    from core import runs

    if args.runs_command == "list":
        for run in runs.list_runs(args.workspace):
            c, s = run["config"], run["status"]
            best = max(
                (
                    r.get("val_accuracy", 0)
                    for r in runs.metrics(run["id"], args.workspace)
                    if r.get("kind") == "epoch"
                ),
                default=None,
            )
            best_text = f"best val_acc {best:.3f}" if best is not None else ""
            print(
                f"{run['id']:<48} {s['state']:<11} {c.get('mode', ''):<9} {c.get('model', ''):<14} "
                f"epoch {s.get('epoch', 0)}/{c.get('epochs', '?')}  {best_text}"
            )
        return 0
    if args.runs_command == "show":
        s = runs.status(args.id, args.workspace)
        print(f"state: {s['state']}")
        for key in ("epoch", "batch", "batches", "message", "error", "plan"):
            if s.get(key) is not None:
                print(f"{key}: {s[key]}")
        if s.get("started"):
            end = s.get("ended") or time.time()
            print(f"elapsed: {end - s['started']:.0f} s")
        return _follow(args.id, args.workspace) if s["state"] in runs.ACTIVE_STATES and args.follow else 0
    if args.runs_command == "stop":
        runs.stop(args.id, args.workspace)
        print(f"asked run {args.id} to stop after its current batch")
        return 0
    runs.resume(args.id, args.workspace)
    print(f"resumed run {args.id}")
    return _follow(args.id, args.workspace) if args.follow else 0


def cmd_predict(args: argparse.Namespace) -> int:
    from core.evaluate import image_files, load_run_model, predict_paths

    run = load_run_model(args.run, args.which, args.workspace)
    paths = [args.file] if args.file else image_files(args.dir)
    if not paths:
        raise ValueError(f"no images in {args.dir}")
    failed = 0
    for p in predict_paths(run, paths):
        if p.error:
            failed += 1
            print(f"{p.path}\terror: {p.error}")
        else:
            print(f"{p.path}\t{p.label}\t{p.probability:.4f}")
    return 1 if failed and failed == len(paths) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Convnet Workbench command line")
    parser.add_argument("--workspace", help="workspace folder (default: $CONVNET_WORKSPACE or ./workspace)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate the demo dataset into the workspace if missing")
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("data", help="scan, split and lay out image folders")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("scan", help="list classes, counts and problem files of a folder")
    p.add_argument("path")
    p.add_argument("--show", type=int, default=20, help="problem files to list (default 20)")
    p.set_defaults(func=cmd_data_scan)
    p = dsub.add_parser("split", help="make a seeded, stratified split and save it under a name")
    p.add_argument("path")
    p.add_argument("--train", type=float, default=0.6, help="images per class (>= 1) or a fraction")
    p.add_argument("--val", type=float, default=0.2)
    p.add_argument("--test", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--balance", action="store_true", help="cut every class to the smallest one")
    p.add_argument("--given", action="store_true", help="keep the folder's own train/val/test")
    p.add_argument("--name", required=True)
    p.add_argument("--overwrite", action="store_true", help="replace a saved split of the same name")
    p.set_defaults(func=cmd_data_split)
    p = dsub.add_parser("materialize", help="lay a saved split out as train/validation/test folders")
    p.add_argument("name")
    p.add_argument("dir")
    p.set_defaults(func=cmd_data_materialize)
    p = dsub.add_parser("list", help="list saved splits")
    p.set_defaults(func=cmd_data_list)

    t = sub.add_parser("train", help="train a model in its own process (see README for the modes)")
    t.add_argument("--config", help="a JSON file of TrainConfig fields (e.g. a run's config.json)")
    t.add_argument("--split", help="saved split name")
    t.add_argument("--mode", choices=["scratch", "features", "frozen", "finetune"])
    t.add_argument(
        "--model", help="scratch net (seed000, seed002, seed003, small) or base (vgg16, mobilenet_0.5, ...)"
    )
    t.add_argument("--size", type=int, help="image size in pixels")
    t.add_argument("--resize", choices=["stretch", "crop", "pad"])
    t.add_argument("--augment", help="augmentation preset or saved config name")
    t.add_argument("--weights", help="imagenet, none, or a path to a weights file")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--optimizer", choices=["rmsprop", "adam", "sgd"])
    t.add_argument("--schedule", choices=["constant", "cosine", "plateau"])
    t.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    t.add_argument("--seed", type=int)
    t.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"])
    t.add_argument("--xla", choices=["auto", "on", "off"])
    t.add_argument("--from-run", help="fine-tune: the run to start from")
    t.add_argument("--unfreeze-from", help="fine-tune: first base layer to train, e.g. block5_conv1")
    t.add_argument("--unfreeze-top", type=int, help="fine-tune: train the top N weight layers of the base")
    t.add_argument("--head-pooling", choices=["flatten", "avg"])
    t.add_argument("--name", help="a label for the run")
    t.add_argument("--detach", action="store_true", help="return at once instead of following the run")
    t.add_argument(
        "--workers", type=int, help="data-parallel worker processes in all (JAX backend; docs/distributed.md)"
    )
    t.add_argument(
        "--worker-index", type=int, help="with --workers: this machine's worker 0..N-1 (omit: all N here)"
    )
    t.add_argument("--coordinator", help="with --worker-index: worker 0's HOST:PORT")
    t.add_argument("--out", help="with --workers: folder for weights, metrics and model.keras")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("runs", help="list, show, stop and resume runs")
    rsub = r.add_subparsers(dest="runs_command", required=True)
    rsub.add_parser("list", help="every run, newest first").set_defaults(func=cmd_runs)
    for name, text in (
        ("show", "state and progress of a run"),
        ("stop", "stop after the current batch"),
        ("resume", "continue a stopped or interrupted run"),
    ):
        p = rsub.add_parser(name, help=text)
        p.add_argument("id")
        if name != "stop":
            p.add_argument("--follow", action="store_true", help="print epochs until the run ends")
        p.set_defaults(func=cmd_runs)

    pr = sub.add_parser("predict", help="class and probability for an image file or every image in a folder")
    pr.add_argument("--run", required=True, help="run id")
    src = pr.add_mutually_exclusive_group(required=True)
    src.add_argument("-f", "--file")
    src.add_argument("-d", "--dir")
    pr.add_argument("--which", choices=["best", "last"], default="best")
    pr.set_defaults(func=cmd_predict)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ValueError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
