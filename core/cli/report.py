"""python -m core report RUN -o FILE: a run's report as one HTML file that opens offline in any browser."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.console import progress_counter, start_keras
from core.data import DataError


def cmd_report(args: argparse.Namespace) -> int:
    from core import evaluate, modelfile
    from core.rundir import RunError, run_dir

    path = run_dir(args.run, args.workspace)
    if modelfile.model_file(path, args.which) is None:
        raise RunError(f"run '{args.run}' has no saved model yet")
    out = Path(args.output or f"{args.run}-report.html")
    if out.exists() and not args.overwrite:
        raise DataError(f"{out} already exists; choose another file name or pass --overwrite")
    if not out.parent.is_dir():
        raise DataError(f"there is no folder {out.parent} to write the report in")
    start_keras(args)
    from core import report

    result = evaluate.cached_evaluation(args.run, args.which, workspace=args.workspace)
    if result is None:
        print(
            "The model has no test scores yet: scoring it on the test pictures of its split first.",
            flush=True,
        )
        counters = {}

        def progress(stage: str, done: int, total: int) -> None:
            counter = counters.setdefault(stage, progress_counter(stage))
            if counter:
                counter(done, total)

        result = evaluate.evaluate_run(args.run, args.which, workspace=args.workspace, progress=progress)
    written = report.write_report(
        args.run, out, args.which, args.workspace, result=result, overwrite=args.overwrite
    )
    print(
        f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB): open it in any browser, no server needed"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="a run's report as one HTML file that opens offline in any browser")
    r.add_argument("run", help="run id")
    r.add_argument("-o", "--output", help="the HTML file to write (default: RUN-report.html here)")
    r.add_argument("--which", choices=["best", "last"], default="best", help="which saved model to report on")
    r.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    r.set_defaults(func=cmd_report)
