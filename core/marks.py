"""Pending marks per split, kept on disk until they are saved as a cleaned version of the split:
workspace/splits/marks/<split>.json, so they survive a reload, a page switch or a restart."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from core.data import Split, load_split
from core.data.cleaning import Mark, check_mark, relative_file, save_cleaned
from core.fileio import atomic_write_json, read_json
from core.workspace import check_name, subdir


def marks_path(split_name: str, workspace: str | os.PathLike | None = None) -> Path:
    folder = subdir("splits", workspace) / "marks"
    folder.mkdir(exist_ok=True)
    return folder / f"{check_name(split_name, 'split name')}.json"


def pending(split_name: str, workspace: str | os.PathLike | None = None) -> dict[str, Mark]:
    """{file: Mark} not yet saved for this split, in the order they were made (a damaged file reads
    as no marks)."""
    path = marks_path(split_name, workspace)
    try:
        return {m.file: m for m in (Mark.from_dict(d) for d in read_json(path)["marks"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


@contextlib.contextmanager
def _locked(split_name: str, workspace: str | os.PathLike | None) -> Iterator[dict[str, Mark]]:
    """The pending marks to change in place, written back when the block ends; one writer at a
    time (two browser tabs marking the same split lose nothing)."""
    path = marks_path(split_name, workspace)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marks = pending(split_name, workspace)
        yield marks
        atomic_write_json(path, {"split": split_name, "marks": [m.to_dict() for m in marks.values()]})


def set_mark(split: Split, mark: Mark, workspace: str | os.PathLike | None = None) -> None:
    """Add or replace the mark of one picture; DataError when it cannot apply to the split."""
    check_mark(split, mark)
    mark = Mark(relative_file(split, mark.file), mark.action, mark.to)
    with _locked(split.name, workspace) as marks:
        marks[mark.file] = mark


def keep(split_name: str, file: str, workspace: str | os.PathLike | None = None) -> None:
    """Forget the mark of one picture (it stays as it is)."""
    with _locked(split_name, workspace) as marks:
        marks.pop(file, None)


def clear(split_name: str, workspace: str | os.PathLike | None = None) -> None:
    """Forget every pending mark of the split."""
    with _locked(split_name, workspace) as marks:
        marks.clear()


def save(split_name: str, name: str, workspace: str | os.PathLike | None = None) -> Path:
    """Save the pending marks as the new split `name` (see cleaning.save_cleaned), then forget them."""
    marks = list(pending(split_name, workspace).values())
    path = save_cleaned(split_name, marks, name, workspace)
    with _locked(split_name, workspace) as current:
        for mark in marks:
            if current.get(mark.file) == mark:  # a mark changed meanwhile in another tab stays
                del current[mark.file]
    return path


def changes(split_name: str, workspace: str | os.PathLike | None = None) -> list[dict]:
    """The pending marks as the changes they make (cleaning.Record's form), for display; marks that
    no longer apply (the split changed) are left out."""
    split = load_split(split_name, workspace)
    out = []
    for mark in pending(split_name, workspace).values():
        with contextlib.suppress(ValueError):
            out.append(check_mark(split, mark))
    return out
