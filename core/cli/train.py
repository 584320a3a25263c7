"""python -m core train and lr-find: the training settings flags, a --config file, the finalized config."""

from __future__ import annotations

import argparse
import json

from core.cli.console import progress_line, start_keras
from core.cli.runs import follow
from core.config import JIT_CHOICES, MODES, OPTIMIZERS, POOLINGS, PRECISIONS, RECIPES, SCHEDULES
from core.data import DataError
from core.images import RESIZE_POLICIES

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


def read_config_file(path: str) -> dict:
    """The JSON object of training settings in a --config file; DataError for anything else."""
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


def train_config(args: argparse.Namespace):
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
    start_keras(args)
    if not args.config:  # the recipe's settings for this mode and network (sizes need core.models)
        values.update(default_settings(mode, flags.get("model"), args.recipe))
    values.update(flags)
    values["mode"] = mode
    config = finalize(TrainConfig.from_dict(values), args.workspace)
    check_inputs(config, args.workspace)  # everything the run needs is there: only then create it
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from core import runs

    config = train_config(args)
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
    return 0 if args.detach else follow(run_id, args.workspace)


def cmd_lr_find(args: argparse.Namespace) -> int:
    from core import lr_find

    config = train_config(args)
    found = lr_find.find_lr(
        config, args.workspace, args.min_lr, args.max_lr, args.steps, progress=progress_line
    )
    print("learning_rate\tloss\tsmoothed")
    for lr, loss, smooth in zip(found.lrs, found.losses, found.smoothed):
        print(f"{lr:.3e}\t{loss:.4f}\t{smooth:.4f}")
    ended = "the loss diverged, so the sweep stopped early" if found.diverged else "sweep complete"
    print(f"suggested learning rate: {found.suggestion:.1e} ({ended}; pass it as --lr)")
    return 0


def settings_parser() -> argparse.ArgumentParser:
    """The training settings, shared by train and lr-find (the allowed values come from core.config)."""
    t = argparse.ArgumentParser(add_help=False)
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
    return t


def register(sub: argparse._SubParsersAction) -> None:
    settings = settings_parser()
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
