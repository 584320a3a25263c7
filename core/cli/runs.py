"""python -m core runs {list,show,stop,resume}, and following a run's epochs on the terminal."""

from __future__ import annotations

import argparse
import time


def follow(run_id: str, workspace) -> int:
    """Print epoch rows as they arrive until the run ends; Ctrl-C detaches (the run goes on)."""
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


def cmd_runs(args: argparse.Namespace) -> int:
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
        return follow(args.id, args.workspace) if s["state"] in runs.ACTIVE_STATES and args.follow else 0
    if args.runs_command == "stop":
        runs.stop(args.id, args.workspace)
        print(f"asked run {args.id} to stop after its current batch")
        return 0
    runs.resume(args.id, args.workspace)
    print(f"resumed run {args.id}")
    return follow(args.id, args.workspace) if args.follow else 0


def register(sub: argparse._SubParsersAction) -> None:
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
