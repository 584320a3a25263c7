"""python -m core data {scan,get,split,dupes,clean,materialize,list}: image folders and saved splits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.cli.args import amount, whole
from core.cli.console import progress_counter, progress_line
from core.data import DataError, Split

if TYPE_CHECKING:
    from core.dupes import Copy, DupesReport, Picture


def cmd_data_get(args: argparse.Namespace) -> int:
    from core import download

    def report(stage: str, done: int, total: int) -> None:
        progress_line(f"{stage}: {done / 1e6:.0f} of {total / 1e6:.0f} MB")

    args.path = str(download.get(args.name, args.workspace, args.url, report))
    return cmd_data_scan(args)  # the report lists the photos that will be left out


def cmd_data_scan(args: argparse.Namespace) -> int:
    from core.data import scan

    index = scan(args.path, progress=progress_counter("checking"))
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
    from core.data import SplitSpec, make_split, save_split, scan, split_path
    from core.workspace import check_name

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
    index = scan(args.path, progress=progress_counter("checking"))
    split = make_split(index, spec, name=args.name)
    if args.drop_dupes:
        split = without_dupes(split, args.workspace)
    path = save_split(split, workspace=args.workspace, overwrite=args.overwrite)
    print(f"saved split '{split.name}' ({spec.method}, seed {spec.seed}) to {path}")
    for subset, counts in split.table().items():
        print(f"  {subset:<6} " + "  ".join(f"{c} {n}" for c, n in counts.items()))
    return 0


SUBSET_NAMES = {"train": "training", "val": "validation", "test": "test"}


def stage_counter() -> Callable[[str, int, int], None] | None:
    """core.dupes' (stage, done, total) progress on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    return lambda stage, done, total: progress_line(f"{stage}: {done}/{total}   ")


def without_dupes(split: Split, workspace: str | None) -> Split:
    """The split without the later copies of duplicate pictures in validation and test."""
    from core import dupes
    from core.data import drop_files

    drop = dupes.check(split, workspace=workspace, progress=stage_counter()).to_drop()
    if drop:
        counts = ", ".join(f"{len(v)} {SUBSET_NAMES[s]}" for s, v in drop.items())
        print(f"left out as copies of other pictures: {counts}")
    return drop_files(split, drop)


def picture_text(p: Picture, classes: list[str]) -> str:
    return f"{p.path} ({classes[p.label]})"


def match_text(c: Copy) -> str:
    """How a copy matches: 'the same picture' or 'distance N', and a flag when the labels differ."""
    return ("the same picture" if c.identical else f"distance {c.distance}") + (
        ", LABELS DIFFER" if c.labels_differ else ""
    )


def print_dupes(report: DupesReport, show: int) -> None:
    """core.dupes.check's report as text: leakage, copies inside each subset, label conflicts."""
    classes = report.classes
    counts = ", ".join(f"{SUBSET_NAMES[s]} {n:,}" for s, n in report.checked.items())
    print(
        f"{sum(report.checked.values()):,} pictures checked ({counts}) at {report.size[0]}x{report.size[1]}; "
        f"copies: hash distance {report.threshold} or less (of 128 bits)"
    )
    if report.failed:
        print(f"{len(report.failed)} pictures could not be decoded and were not checked")

    def listing(title: str, lines: list[str]) -> None:
        print(f"{title}: {len(lines) or 'none'}")
        for line in lines[:show]:
            print(f"  {line}")
        if len(lines) > show:
            print(f"  ... and {len(lines) - show} more")

    listing(
        "leakage (validation or test pictures with a copy in an earlier subset)",
        [
            f"{SUBSET_NAMES[c.picture.subset]} {picture_text(c.picture, classes)} ~ "
            f"{SUBSET_NAMES[c.original.subset]} {picture_text(c.original, classes)}: {match_text(c)}"
            for c in report.leaks()
        ],
    )
    for subset in report.checked:
        listing(
            f"groups of copies inside {SUBSET_NAMES[subset]}",
            [
                picture_text(g.pictures[0], classes)
                + "".join(f" = {picture_text(c.picture, classes)}: {match_text(c)}" for c in g.copies())
                for g in report.within(subset)
            ],
        )
    listing(
        "groups whose pictures carry different labels (labelling errors)",
        [
            ", ".join(f"{SUBSET_NAMES[p.subset]} {picture_text(p, classes)}" for p in g.pictures)
            for g in report.label_conflicts()
        ],
    )
    drop = report.to_drop()
    if drop:
        counts = ", ".join(f"{len(v)} {SUBSET_NAMES[s]}" for s, v in drop.items())
        print(
            f"`data split ... --drop-dupes` leaves the later copies out: {counts} (training stays as it is)"
        )


def cmd_data_dupes(args: argparse.Namespace) -> int:
    from core import dupes
    from core.data import load_split

    split = load_split(args.name, args.workspace)
    changed = split.changed()
    if changed:
        raise DataError(f"split '{args.name}': {changed}")
    report = dupes.check(split, threshold=args.threshold, workspace=args.workspace, progress=stage_counter())
    print_dupes(report, args.show)
    return 0


def cmd_data_materialize(args: argparse.Namespace) -> int:
    from core.data import load_split, materialize

    split = load_split(args.name, args.workspace)
    changed = split.changed()
    if changed:
        raise DataError(f"split '{args.name}': {changed}")
    out = materialize(split, args.dir, progress=progress_counter("linking"))
    print(f"wrote {out}/{{train,validation,test}}/<class>/")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from core.data import list_splits, load_split

    for name in list_splits(args.workspace):
        split = load_split(name, args.workspace)
        sizes = ", ".join(f"{s} {len(v)}" for s, v in split.subsets.items())
        print(f"{name}: {split.dataset_root} ({sizes})")
    return 0


def cmd_data_clean(args: argparse.Namespace) -> int:
    from core.data import load_split
    from core.data.cleaning import Mark, read_record, save_cleaned

    marks = [Mark(file, "drop") for file in args.drop]
    for item in args.relabel:
        file, sep, to = item.rpartition(":")
        if not sep or not file or not to:
            raise DataError(f"--relabel takes FILE:CLASS, not {item!r}")
        marks.append(Mark(file, "relabel", to))
    path = save_cleaned(args.split, marks, args.name, args.workspace)
    record, split = read_record(args.name, args.workspace), load_split(args.name, args.workspace)
    print(f"saved split '{split.name}' (cleaned from {args.split}: {record.summary()}) to {path}")
    for line in record.lines():
        print(f"  {line}")
    for subset, counts in split.table().items():
        print(f"  {subset:<6} " + "  ".join(f"{c} {n}" for c, n in counts.items()))
    return 0


def add_clean(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser(
        "clean", help="save a split with pictures relabelled or left out as a new split (the original stays)"
    )
    p.add_argument("split", help="the saved split to start from")
    p.add_argument(
        "--relabel",
        action="append",
        default=[],
        metavar="FILE:CLASS",
        help="FILE really is CLASS (repeatable)",
    )
    p.add_argument("--drop", action="append", default=[], metavar="FILE", help="leave FILE out (repeatable)")
    p.add_argument("--name", required=True, help="the new split's name")
    p.set_defaults(func=cmd_data_clean)


def register(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument(
        "--drop-dupes",
        action="store_true",
        help="leave out validation and test pictures that copy another picture of the split",
    )
    p.set_defaults(func=cmd_data_split)
    p = dsub.add_parser(
        "dupes", help="find copied pictures in a saved split: leakage, duplicates, label conflicts"
    )
    p.add_argument("name", help="a saved split")
    p.add_argument("--show", type=whole, default=20, help="lines to list per part of the report (default 20)")
    p.add_argument(
        "--threshold",
        type=whole,
        default=20,
        help="largest hash distance (of 128 bits) for a copy (default 20)",
    )
    p.set_defaults(func=cmd_data_dupes)
    p = dsub.add_parser("materialize", help="lay a saved split out as train/validation/test folders")
    p.add_argument("name")
    p.add_argument("dir")
    p.set_defaults(func=cmd_data_materialize)
    p = dsub.add_parser("list", help="list saved splits")
    p.set_defaults(func=cmd_data_list)
    add_clean(dsub)
