"""Command line: python -m core {demo,data,train,runs,predict,doctor} ... (see README for every command).

Bad input ends in one line, ``error: ...``, and exit code 2: argparse's own errors included, and
checked before anything slow happens (a folder scan, the TensorFlow import) or anything is created
(a run). TensorFlow's start-up lines stay off the terminal unless --verbose is given.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import NoReturn

from core.data import DataError


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's promise: a bad command line is one `error: ...` line and exit code 2.
    Every command and sub-command takes -v/--verbose (anywhere on the line)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,  # absent: keep what an outer parser found
            help="show TensorFlow's start-up and log lines",
        )

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def amount(text: str) -> float:
    """--train/--val/--test: images per class (1 or more) or a share (below 1); finite, not negative."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of 0 or more, not {text!r}")
    return value


def whole(text: str) -> int:
    """A whole number of 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def positive(text: str) -> int:
    """A whole number of 1 or more."""
    value = whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


class SetupError(Exception):
    """This machine's set-up, not the input, is wrong (e.g. the Keras backend cannot start): exit 1."""


def _tensorflow(args: argparse.Namespace) -> None:
    """Import Keras and TensorFlow set up to share the GPU (memory growth), quietly unless --verbose."""
    import os

    from core.devices import configure_tensorflow

    try:
        configure_tensorflow(quiet=not getattr(args, "verbose", False))
    except (ImportError, ValueError) as e:  # ValueError: Keras does not know the backend
        backend = os.environ.get("KERAS_BACKEND")
        raise SetupError(
            f"Keras cannot start{f' its {backend} backend' if backend else ''}: {e}"
            + ("" if getattr(args, "verbose", False) else " (--verbose shows more)")
        ) from None


def _progress(label: str):
    """A one-line progress counter on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total}", end=end, file=sys.stderr, flush=True)

    return report


def _progress_line(message: str) -> None:
    """A progress message on stderr, rewritten in place, only when stderr is a terminal."""
    if sys.stderr.isatty():
        print(f"\r{message}", end="", file=sys.stderr, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import ensure_demo

    path = ensure_demo(args.workspace)
    print(path)
    return 0


def cmd_data_get(args: argparse.Namespace) -> int:
    from core import download

    def report(stage: str, done: int, total: int) -> None:
        _progress_line(f"{stage}: {done / 1e6:.0f} of {total / 1e6:.0f} MB")

    args.path = str(download.get(args.name, args.workspace, args.url, report))
    return cmd_data_scan(args)  # the report lists the photos that will be left out


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
    from core.data import SplitSpec, check_name, make_split, save_split, scan, split_path

    check_name(args.name, "split name")  # before the scan, which can take a while
    if split_path(args.name, args.workspace).exists() and not args.overwrite:
        raise DataError(f"a split named '{args.name}' already exists; choose another name")
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
    "warmup_epochs": "warmup_epochs",
    "weight_decay": "weight_decay",
    "label_smoothing": "label_smoothing",
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


def read_config_file(path: str) -> dict:
    """The JSON object of training settings in a --config file; DataError for anything else."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"--config {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        values = json.loads(text)
    except ValueError as e:
        where = (
            f" (line {e.lineno}, column {e.colno}: {e.msg})" if isinstance(e, json.JSONDecodeError) else ""
        )
        raise DataError(f"--config {path}: not valid JSON{where}") from None
    if not isinstance(values, dict):
        kind = {type(None): "null", bool: "true/false", list: "a list", str: "a string"}.get(
            type(values), "a number"
        )
        raise DataError(f"--config {path}: expected a JSON object of training settings, found {kind}")
    return values


def _train_config(args: argparse.Namespace):
    """The finalized, checked TrainConfig the train flags describe (TensorFlow imported quietly)."""
    from core import rundir
    from core.config import TrainConfig, default_settings
    from core.data import load_split
    from core.train import check_inputs, finalize

    values: dict = {}
    if args.config:
        values.update(read_config_file(args.config))
    mode = args.mode or values.get("mode", "scratch")
    flags = {
        field: getattr(args, flag) for flag, field in TRAIN_FLAGS.items() if getattr(args, flag) is not None
    }
    # Typos fail here, before the TensorFlow import; check_inputs below checks everything.
    if mode == "finetune":
        rundir.run_dir(flags.get("from_run") or values.get("from_run") or "", args.workspace)
    elif flags.get("split") or values.get("split"):
        load_split(flags.get("split") or values["split"], args.workspace)
    if getattr(args, "workers", None) and not args.out:
        raise ValueError("--out DIR is needed with --workers")
    _tensorflow(args)
    if not args.config:  # the recipe's settings for this mode and network (sizes need core.models)
        values.update(default_settings(mode, flags.get("model"), args.recipe))
    values.update(flags)
    values["mode"] = mode
    config = finalize(TrainConfig.from_dict(values), args.workspace)
    check_inputs(config, args.workspace)  # everything the run needs is there: only then create it
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from core import runs

    config = _train_config(args)
    if args.workers:
        from core import distributed

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


def cmd_lr_find(args: argparse.Namespace) -> int:
    from core import lr_find

    config = _train_config(args)
    found = lr_find.find_lr(
        config, args.workspace, args.min_lr, args.max_lr, args.steps, progress=_progress_line
    )
    print("learning_rate\tloss\tsmoothed")
    for lr, loss, smooth in zip(found.lrs, found.losses, found.smoothed):
        print(f"{lr:.3e}\t{loss:.4f}\t{smooth:.4f}")
    ended = "the loss diverged, so the sweep stopped early" if found.diverged else "sweep complete"
    print(f"suggested learning rate: {found.suggestion:.1e} ({ended}; pass it as --lr)")
    return 0


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
    from pathlib import Path

    from core import modelfile
    from core.predict import image_files, predict_paths
    from core.rundir import RunError, run_dir

    path = run_dir(args.run, args.workspace)
    if modelfile.model_file(path, args.which) is None:
        raise RunError(f"run '{args.run}' has no saved model yet")
    if args.file and not Path(args.file).is_file():
        raise DataError(f"{args.file} is not a file")
    paths = [args.file] if args.file else image_files(args.dir)
    if not paths:
        raise ValueError(f"no images in {args.dir}")
    _tensorflow(args)
    run = modelfile.from_run(args.run, args.which, args.workspace)
    failed = 0
    for p in predict_paths(run, paths):
        if p.error:
            failed += 1
            print(f"{p.path}\terror: {p.error}")
        else:
            print(f"{p.path}\t{p.label}\t{p.probability:.4f}")
    return 1 if failed and failed == len(paths) else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from core import devices

    _tensorflow(args)
    problems = devices.doctor(args.precision, args.xla, args.steps, out=lambda line: print(line, flush=True))
    if problems:
        print("error: " + " ".join("; ".join(problems).split()), file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    # The allowed values come from core.config (no Keras import there).
    from core.config import JIT_CHOICES, MODES, OPTIMIZERS, POOLINGS, PRECISIONS, RECIPES, SCHEDULES
    from core.images import RESIZE_POLICIES

    parser = Parser(prog="python -m core", description="Convnet Workbench command line")
    parser.add_argument("--workspace", help="workspace folder (default: $CONVNET_WORKSPACE or ./workspace)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="generate the demo dataset into the workspace if missing")
    demo.set_defaults(func=cmd_demo)

    data = sub.add_parser("data", help="scan, split and lay out image folders")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("scan", help="list classes, counts and problem files of a folder")
    p.add_argument("path")
    p.add_argument("--show", type=whole, default=20, help="problem files to list (default 20)")
    p.set_defaults(func=cmd_data_scan)
    p = dsub.add_parser("get", help="download a public dataset (online only), unpack it and scan it")
    p.add_argument("name", help="dogs-vs-cats")
    p.add_argument("--url", help="download from here instead (a mirror)")
    p.add_argument("--show", type=whole, default=20, help="problem files to list (default 20)")
    p.set_defaults(func=cmd_data_get)
    p = dsub.add_parser("split", help="make a seeded, stratified split and save it under a name")
    p.add_argument("path")
    p.add_argument("--train", type=amount, default=0.6, help="images per class (>= 1) or a fraction")
    p.add_argument("--val", type=amount, default=0.2)
    p.add_argument("--test", type=amount, default=0.2)
    p.add_argument("--seed", type=whole, default=0)
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

    t = argparse.ArgumentParser(add_help=False)  # the training settings, shared by train and lr-find
    t.add_argument("--config", help="a JSON file of TrainConfig fields (e.g. a run's config.json)")
    t.add_argument("--split", help="saved split name")
    t.add_argument(
        "--recipe",
        default="default",
        choices=list(RECIPES),
        help="starting settings without --config: default (fitted to the network: its own image size, "
        "a pooled head at Adam 3e-4 on pretrained bases) or seed (the tutorials' settings exactly)",
    )
    t.add_argument("--mode", choices=MODES)
    t.add_argument(
        "--model",
        help="scratch net (seed000, seed002, seed003, small, compact, resnet) or base (vgg16, mobilenet_0.5, ...)",
    )
    t.add_argument("--size", type=int, help="image size in pixels")
    t.add_argument("--resize", choices=RESIZE_POLICIES)
    t.add_argument("--augment", help="augmentation preset or saved config name")
    t.add_argument("--weights", help="imagenet, none, or a path to a weights file")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--schedule", choices=SCHEDULES)
    t.add_argument("--warmup-epochs", type=int, help="raise the learning rate from 0 over these epochs")
    t.add_argument("--weight-decay", type=float, help="AdamW's decoupled weight decay, e.g. 0.05")
    t.add_argument("--label-smoothing", type=float, help="e.g. 0.1: targets 0.9 / 0.1 instead of 1 / 0")
    t.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    t.add_argument("--seed", type=int)
    t.add_argument("--precision", choices=PRECISIONS)
    t.add_argument("--xla", choices=JIT_CHOICES)
    t.add_argument("--from-run", help="fine-tune: the run to start from")
    t.add_argument("--unfreeze-from", help="fine-tune: first base layer to train, e.g. block5_conv1")
    t.add_argument("--unfreeze-top", type=int, help="fine-tune: train the top N weight layers of the base")
    t.add_argument("--head-pooling", choices=POOLINGS)
    t.add_argument("--name", help="a label for the run")
    settings = t
    f = sub.add_parser(
        "lr-find",
        parents=[settings],
        help="try learning rates from tiny to large on a throw-away copy of the model; suggest one",
    )
    f.add_argument("--min-lr", type=float, default=1e-7)
    f.add_argument("--max-lr", type=float, default=1.0)
    f.add_argument("--steps", type=int, default=100, help="batches to try (default 100)")
    f.set_defaults(func=cmd_lr_find)
    t = sub.add_parser(
        "train", parents=[settings], help="train a model in its own process (see README for the modes)"
    )
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

    doc = sub.add_parser(
        "doctor",
        help="backend, versions, devices, precision and XLA choices, a short speed test; exit 1 if something is wrong",
    )
    doc.add_argument(
        "--precision",
        choices=[*PRECISIONS, "bfloat16", "float16"],
        default="auto",
        help="the precision to check (default auto: what a run would pick)",
    )
    doc.add_argument("--xla", choices=JIT_CHOICES, default="auto")
    doc.add_argument(
        "--steps", type=positive, default=10, help="timed training steps per device (default 10)"
    )
    doc.set_defaults(func=cmd_doctor)
    return parser


def one_line(e: BaseException) -> str:
    """An exception as one line for people."""
    if isinstance(e, OSError) and e.strerror:
        text = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    elif isinstance(e, KeyError) and e.args:
        text = str(e.args[0])
    else:
        text = str(e)
    return " ".join(text.split()) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ValueError, OSError, KeyError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except SetupError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
