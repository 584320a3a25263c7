"""Atomic file writes (temp file + rename) and append-only JSON lines."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from core.workspace import temp_name


def atomic_write_bytes(path: str | os.PathLike, data: bytes, make_parents: bool = True) -> Path:
    """Write `data` to `path` so readers see the old file or the new one, never half of it.

    make_parents=False: the folder must exist (FileNotFoundError otherwise), e.g. a run's folder
    that someone deleted must not come back."""
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_name(path.name) + ".")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes owner-only files; these are ordinary readable files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temp path beside `path` for a writer that makes its own file (model.save, np.save): renamed
    over `path` when the block ends, removed when it raises. The temp name keeps `path`'s suffix."""
    path = Path(path)
    tmp = path.with_name(temp_name(path.name))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str, make_parents: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), make_parents)


def atomic_write_json(path: str | os.PathLike, obj: Any, make_parents: bool = True) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", make_parents)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict] | dict) -> None:
    """Append one or more rows as JSON lines; each row is one write call ending in a newline."""
    if isinstance(rows, dict):
        rows = [rows]
    payload = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write(payload)
        f.flush()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """All complete rows; a torn last line (writer killed mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def repair_jsonl(path: str | os.PathLike) -> int:
    """Make a JSON-lines file end with a newline, so the next append starts a row of its own: a torn
    last line (writer killed mid-write) is cut off, or ended if it is a whole row. Returns bytes cut."""
    try:
        f = open(path, "r+b")
    except FileNotFoundError:
        return 0
    with f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        end, keep = size, 0
        while end > 0:  # the last newline, reading backwards
            begin = max(0, end - 65536)
            f.seek(begin)
            i = f.read(end - begin).rfind(b"\n")
            if i >= 0:
                keep = begin + i + 1
                break
            end = begin
        f.seek(keep)
        tail = f.read()
        try:
            whole = isinstance(json.loads(tail), dict)
        except ValueError:
            whole = False
        if whole:
            f.seek(size)
            f.write(b"\n")
            cut = 0
        else:
            f.truncate(keep)
            cut = size - keep
        f.flush()
        os.fsync(f.fileno())
    return cut
