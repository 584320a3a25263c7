"""python -m core predict: class and probability for an image file or every image in a folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.console import start_keras
from core.data import DataError
from core.modelfile import MODEL_CHOICES


def cmd_predict(args: argparse.Namespace) -> int:
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
    start_keras(args)
    run = modelfile.from_run(args.run, args.which, args.workspace)
    failed = 0
    for p in predict_paths(run, paths):
        if p.error:
            failed += 1
            print(f"{p.path}\terror: {p.error}")
        else:
            print(f"{p.path}\t{p.label}\t{p.probability:.4f}")
    return 1 if failed and failed == len(paths) else 0


def register(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("predict", help="class and probability for an image file or every image in a folder")
    pr.add_argument("--run", required=True, help="run id")
    src = pr.add_mutually_exclusive_group(required=True)
    src.add_argument("-f", "--file")
    src.add_argument("-d", "--dir")
    pr.add_argument("--which", choices=MODEL_CHOICES, default="best")
    pr.set_defaults(func=cmd_predict)
