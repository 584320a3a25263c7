"""Scan an image folder into a DatasetIndex: its layout, classes, usable images and problems.

Three layouts are recognised without being told:
- class folders: ``root/<class>/**/<image>`` (any number of classes);
- Kaggle flat: ``root/<label>.<id>.<ext>`` (label = the name before the first dot);
- already split: ``root/{train,validation|val,test}/<class>/...``, kept as given.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.errors import DataError
from core.images import check_image, is_image_name, unsupported_format, unsupported_reason

Layout = Literal["class_folders", "kaggle_flat", "pre_split"]
SPLIT_FOLDER_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
Progress = Callable[[int, int], None]


@dataclass
class Problem:
    """A file left out of the dataset and why."""

    path: str
    reason: str


@dataclass
class DatasetIndex:
    """What a folder holds: usable images with labels, and the files left out."""

    root: str
    layout: Layout
    classes: list[str]
    paths: list[str]  # relative to root, forward slashes
    labels: list[int]  # index into classes
    given_splits: list[str] | None = None  # per item, only for the pre_split layout
    problems: list[Problem] = field(default_factory=list)
    ignored: int = 0  # hidden files and non-image extensions
    fingerprint: str = ""

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {c: counts.get(i, 0) for i, c in enumerate(self.classes)}

    def files_of(self, class_name: str) -> list[str]:
        i = self.classes.index(class_name)
        return [p for p, y in zip(self.paths, self.labels) if y == i]


def _file_signature(root: Path, rel: str) -> str:
    st = (root / rel).stat()
    return f"{rel}\t{st.st_size}\t{st.st_mtime_ns}"


def fingerprint_files(root: str | os.PathLike, rel_paths: list[str]) -> str:
    """A short hash of the files' names, sizes and modification times (not their bytes)."""
    root = Path(root)
    h = hashlib.sha256()
    for rel in sorted(rel_paths):
        try:
            h.update(_file_signature(root, rel).encode())
        except FileNotFoundError:
            h.update(f"{rel}\tmissing".encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def _visible(entries: list[os.DirEntry]) -> list[os.DirEntry]:
    return [e for e in entries if not e.name.startswith(".") and not e.name.startswith("__MACOSX")]


def _unsupported(rel: str) -> Problem | None:
    """A Problem for an image in a format we do not read (HEIC, AVIF, SVG...), judged by name."""
    fmt = unsupported_format(rel)
    return Problem(rel, unsupported_reason(fmt)) if fmt else None


def _walk_files(folder: Path, root: Path) -> tuple[list[str], list[Problem], int]:
    """Image files under `folder` (relative to root), images in formats we do not read, and
    how many other files (hidden, not images) were ignored."""
    found, unsupported, ignored = [], [], 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(filenames):
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if is_image_name(name):
                found.append(rel)
            elif problem := _unsupported(rel):
                unsupported.append(problem)
            else:
                ignored += 1
    return found, unsupported, ignored


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(
        (Path(e.path) for e in _visible(list(os.scandir(folder))) if e.is_dir()), key=lambda p: p.name
    )


def _detect_layout(root: Path) -> Layout:
    dirs = _class_dirs(root)
    split_dirs = {SPLIT_FOLDER_NAMES[d.name.lower()] for d in dirs if d.name.lower() in SPLIT_FOLDER_NAMES}
    if (
        "train" in split_dirs
        and len(split_dirs) >= 2
        and all(_class_dirs(d) for d in dirs if d.name.lower() in SPLIT_FOLDER_NAMES)
    ):
        return "pre_split"
    if dirs:
        return "class_folders"
    return "kaggle_flat"


def scan(path: str | os.PathLike, progress: Progress | None = None, workers: int = 4) -> DatasetIndex:
    """Index the images under `path`, checking each file's header; never raises on a bad file.

    Raises DataError only when `path` is not a folder or holds no images at all.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    root = root.resolve()
    layout = _detect_layout(root)
    candidates: list[tuple[str, str, str | None]] = []  # (rel path, label, given split)
    problems: list[Problem] = []
    ignored = 0
    if layout == "pre_split":
        for split_dir in _class_dirs(root):
            subset = SPLIT_FOLDER_NAMES.get(split_dir.name.lower())
            if subset is None:
                ignored += 1
                continue
            for class_dir in _class_dirs(split_dir):
                files, unsupported, n = _walk_files(class_dir, root)
                problems += unsupported
                ignored += n
                candidates += [(f, class_dir.name, subset) for f in files]
    elif layout == "class_folders":
        for class_dir in _class_dirs(root):
            files, unsupported, n = _walk_files(class_dir, root)
            problems += unsupported
            ignored += n
            candidates += [(f, class_dir.name, None) for f in files]
        for e in _visible(list(os.scandir(root))):
            if e.is_file() and is_image_name(e.name):
                problems.append(Problem(e.name, "image outside any class folder"))
            elif e.is_file() and (problem := _unsupported(e.name)):
                problems.append(problem)
    else:
        for e in sorted(_visible(list(os.scandir(root))), key=lambda e: e.name):
            if not e.is_file():
                continue
            if not is_image_name(e.name):
                if problem := _unsupported(e.name):
                    problems.append(problem)
                else:
                    ignored += 1
            elif e.name.count(".") >= 2:
                candidates.append((e.name, e.name.split(".", 1)[0], None))
            else:
                problems.append(Problem(e.name, "name is not <label>.<id>.<ext> (Kaggle layout)"))
    ignored += sum(1 for e in os.scandir(root) if e.name.startswith(".") and e.is_file())
    if not candidates and not problems:
        raise DataError(
            f"no images found in {root} (looked for {', '.join(sorted({'.jpg', '.png'}))} and similar)"
        )

    reasons: list[str | None] = [None] * len(candidates)
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, reason in enumerate(pool.map(lambda c: check_image(root / c[0]), candidates, chunksize=16)):
            reasons[i] = reason
            done += 1
            if progress and (done % 64 == 0 or done == len(candidates)):
                progress(done, len(candidates))

    kept = [(c, r) for c, r in zip(candidates, reasons)]
    problems += [Problem(c[0], r) for c, r in kept if r is not None]
    good = [c for c, r in kept if r is None]
    all_labels = sorted({c[1] for c in candidates})
    classes = sorted({c[1] for c in good})
    for empty in sorted(set(all_labels) - set(classes)):
        problems.append(Problem(empty + "/", "class has no usable images; left out"))
    class_index = {c: i for i, c in enumerate(classes)}
    paths = [c[0] for c in good]
    return DatasetIndex(
        root=str(root),
        layout=layout,
        classes=classes,
        paths=paths,
        labels=[class_index[c[1]] for c in good],
        given_splits=[c[2] for c in good] if layout == "pre_split" else None,
        problems=problems,
        ignored=ignored,
        fingerprint=fingerprint_files(root, paths),
    )
