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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
