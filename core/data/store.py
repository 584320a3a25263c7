"""Splits saved by name: workspace/splits/<name>.json, never overwritten unless asked."""

from __future__ import annotations

import os
from pathlib import Path

from core.data.splits import Split
from core.errors import DataError
from core.fileio import atomic_write_json, read_json
from core.workspace import check_name, subdir


def split_path(name: str, workspace: str | os.PathLike | None = None) -> Path:
    return subdir("splits", workspace) / f"{check_name(name, 'split name')}.json"


def save_split(
    split: Split, name: str | None = None, workspace: str | os.PathLike | None = None, overwrite: bool = False
) -> Path:
    """Write the split as JSON under workspace/splits/; an existing name is kept unless overwrite."""
    if name is not None:
        split.name = name
    path = split_path(split.name, workspace)
    if path.exists() and not overwrite:
        raise DataError(f"a split named '{split.name}' already exists; choose another name")
    return atomic_write_json(path, split.to_dict())


def load_split(name: str, workspace: str | os.PathLike | None = None) -> Split:
    path = split_path(name, workspace)
    if not path.exists():
        raise DataError(f"no saved split named '{name}'")
    try:
        return Split.from_dict(read_json(path))
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"the split file {path.name} is damaged ({e})") from e


def list_splits(workspace: str | os.PathLike | None = None) -> list[str]:
    return sorted(p.stem for p in subdir("splits", workspace).glob("*.json"))


def saved_twin(split: Split, workspace: str | os.PathLike | None = None) -> Split | None:
    """The saved split holding exactly `split`'s pictures, labels and subsets (the one whose
    pictures can be marked for cleaning), or None when it was not saved."""

    def content(s: Split) -> tuple:
        return s.dataset_root, list(s.classes), {k: [tuple(x) for x in v] for k, v in s.subsets.items()}

    wanted = content(split)
    for name in list_splits(workspace):
        try:
            saved = load_split(name, workspace)
        except DataError:
            continue
        if content(saved) == wanted:
            return saved
    return None


def delete_split(name: str, workspace: str | os.PathLike | None = None) -> None:
    split_path(name, workspace).unlink(missing_ok=True)
