"""Cleaned versions of a split: marks ("the label is wrong, it is X", "leave it out") applied to a copy
of the split, saved under a new name with a record of what changed. The user's picture files are
never moved or changed, and the original split file is never touched."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from core.data.splits import Split
from core.data.store import load_split, split_path
from core.errors import DataError
from core.fileio import read_json
from core.workspace import check_name, temp_name

ACTIONS = ("relabel", "drop")
# "<parent>-clean-<n>": the default names of cleaned versions, numbered per original split.
CLEAN_SUFFIX = re.compile(r"-clean-\d+$")


@dataclass(frozen=True)
class Mark:
    """One picture marked for the next version: relabel it to class `to`, or drop it."""

    file: str  # relative to the split's dataset_root, as in Split.subsets
    action: str  # "relabel" or "drop"
    to: str = ""  # the right class, for "relabel"

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise DataError(f"a mark is 'relabel' or 'drop', not {self.action!r}")
        if self.action == "relabel" and not self.to:
            raise DataError(f"say which class '{self.file}' really is")

    def to_dict(self) -> dict:
        return {"file": self.file, "action": self.action, "to": self.to}

    @classmethod
    def from_dict(cls, d: dict) -> Mark:
        return cls(file=str(d["file"]), action=str(d["action"]), to=str(d.get("to") or ""))


@dataclass(frozen=True)
class Record:
    """What a cleaned version changed: its parent split, the changes and when it was made.

    changes: {file, subset, from, to} for a relabelled picture, {file, subset, from, dropped: True}
    for one left out."""

    derived_from: str
    changes: list[dict]
    when: float

    @property
    def relabelled(self) -> int:
        return sum(1 for c in self.changes if not c.get("dropped"))

    @property
    def dropped(self) -> int:
        return sum(1 for c in self.changes if c.get("dropped"))

    def summary(self) -> str:
        """'3 relabelled, 2 left out' (only the parts that are not zero)."""
        parts = [
            f"{n} {what}" for n, what in ((self.relabelled, "relabelled"), (self.dropped, "left out")) if n
        ]
        return ", ".join(parts) or "no changes"

    def lines(self) -> list[str]:
        """One sentence per change, for people."""
        return [
            f"{c['file']} ({c['subset']}): left out"
            if c.get("dropped")
            else f"{c['file']} ({c['subset']}): {c['from']} → {c['to']}"
            for c in self.changes
        ]


def relative_file(split: Split, file: str) -> str:
    """`file` as the split names it: a path inside the dataset folder (absolute paths under it are
    made relative); nothing is read from disk."""
    path = Path(file)
    if path.is_absolute():
        with contextlib.suppress(ValueError):
            return path.relative_to(split.dataset_root).as_posix()
    return path.as_posix()


def locate(split: Split, file: str) -> tuple[str, int]:
    """(subset, class index) of a file of the split; DataError when the split does not hold it."""
    rel = relative_file(split, file)
    for subset, items in split.subsets.items():
        for path, label in items:
            if path == rel:
                return subset, label
    raise DataError(f"'{file}' is not a picture of split '{split.name}'")


def check_mark(split: Split, mark: Mark, where: tuple[str, int] | None = None) -> dict:
    """The change a mark makes to the split (see Record); DataError when it cannot apply."""
    subset, label = where or locate(split, mark.file)
    change = {"file": relative_file(split, mark.file), "subset": subset, "from": split.classes[label]}
    if mark.action == "drop":
        return {**change, "dropped": True}
    if mark.to not in split.classes:
        raise DataError(
            f"split '{split.name}' has no class '{mark.to}' (its classes: {', '.join(split.classes)})"
        )
    if mark.to == change["from"]:
        raise DataError(f"'{mark.file}' is already labelled '{mark.to}'")
    return {**change, "to": mark.to}


def apply_marks(split: Split, marks: list[Mark], name: str) -> tuple[Split, list[dict]]:
    """A new Split named `name` with the marks applied, and its changes; `split` is not modified.

    Dropped files leave their subset, relabelled files keep their subset with the new label."""
    if not marks:
        raise DataError("there are no marks to save")
    where = {p: (s, y) for s, items in split.subsets.items() for p, y in items}
    changes: dict[str, dict] = {}
    for mark in marks:
        rel = relative_file(split, mark.file)
        if rel not in where:
            raise DataError(f"'{mark.file}' is not a picture of split '{split.name}'")
        if rel in changes:
            raise DataError(f"'{mark.file}' is marked twice; keep one mark per picture")
        changes[rel] = check_mark(split, mark, where[rel])
    subsets: dict[str, list[tuple[str, int]]] = {}
    for subset, items in split.subsets.items():
        kept = []
        for path, label in items:
            change = changes.get(path)
            if change is None:
                kept.append((path, label))
            elif not change.get("dropped"):
                kept.append((path, split.classes.index(change["to"])))
        subsets[subset] = kept
    if not subsets.get("train"):
        raise DataError("leaving these pictures out would empty the training set")
    return split.with_subsets(subsets, name), list(changes.values())


def save_cleaned(
    parent: str, marks: list[Mark], name: str, workspace: str | os.PathLike | None = None
) -> Path:
    """Save split `parent` with `marks` applied as the new split `name`, with its record.

    Refuses an existing name (nothing is overwritten), a parent whose files changed on disk since
    it was made, and marks that do not apply; the parent's file stays byte for byte the same."""
    name = check_name(name, "split name")
    path = split_path(name, workspace)
    if path.exists():
        raise DataError(f"a split named '{name}' already exists; choose another name")
    split = load_split(parent, workspace)
    changed = split.changed()
    if changed:
        raise DataError(f"split '{parent}': {changed}; make the split again before cleaning it")
    cleaned, changes = apply_marks(split, marks, name)
    record = {"derived_from": split.name, "changes": changes, "cleaned": time.time()}
    _write_new(path, {**cleaned.to_dict(), **record})
    return path


def _write_new(path: Path, obj: dict) -> None:
    """Write JSON to a new file: a temp file linked into place, so an existing file (even one made
    a moment ago by another session) is never replaced."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_name(path.name) + ".")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(obj, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise DataError(f"a split named '{path.stem}' already exists; choose another name") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_record(name: str, workspace: str | os.PathLike | None = None) -> Record | None:
    """The record of a cleaned version, or None for a split made from a folder (or unreadable)."""
    try:
        path = split_path(name, workspace)
        return _record(str(path), path.stat().st_mtime_ns)
    except (OSError, DataError):
        return None


@functools.lru_cache(maxsize=256)
def _record(path: str, mtime_ns: int) -> Record | None:
    # Keyed by the file's mtime: the Train page labels every split on every rerun.
    try:
        d = read_json(path)
        if not d.get("derived_from"):
            return None
        return Record(str(d["derived_from"]), list(d.get("changes") or []), float(d.get("cleaned") or 0))
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return None


def version_label(name: str, workspace: str | os.PathLike | None = None) -> str:
    """'NAME (cleaned from PARENT: 3 relabelled, 2 left out)' for a cleaned version, else NAME."""
    record = read_record(name, workspace)
    if record is None:
        return name
    return f"{name} (cleaned from {record.derived_from}: {record.summary()})"


def default_name(parent: str, workspace: str | os.PathLike | None = None) -> str:
    """'<original>-clean-<n>' with the first n not taken (a cleaned version's own suffix is dropped)."""
    base = CLEAN_SUFFIX.sub("", parent)[:50].rstrip(" .")
    n = 1
    while split_path(f"{base}-clean-{n}", workspace).exists():
        n += 1
    return f"{base}-clean-{n}"
