"""Scan an image folder into a DatasetIndex, and make, save and load seeded splits.

Three layouts are recognised without being told:
- class folders: ``root/<class>/**/<image>`` (any number of classes);
- Kaggle flat: ``root/<label>.<id>.<ext>`` (label = the name before the first dot);
- already split: ``root/{train,validation|val,test}/<class>/...``, kept as given.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from core.fileio import atomic_write_json, read_json
from core.images import check_image, is_image_name, unsupported_format, unsupported_reason
from core.workspace import subdir

Layout = Literal["class_folders", "kaggle_flat", "pre_split"]
SUBSETS: tuple[str, ...] = ("train", "val", "test")
SPLIT_FOLDER_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
Progress = Callable[[int, int], None]


class DataError(ValueError):
    """Bad input data or a request the data cannot satisfy; the message is for the user."""


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


# ---------------------------------------------------------------------------- splits


@dataclass
class SplitSpec:
    """How to split: per-class counts or fractions for train/val/test, a seed, and balancing.

    method "counts": train/val/test are images per class (seeds: 1000/500/500, 1000/500/1000).
    method "fractions": shares of each class (the rest is left out). method "given": keep the
    folders' own train/val/test. balance: cut every class to the size of the smallest.
    """

    method: Literal["counts", "fractions", "given"] = "fractions"
    train: float = 0.6
    val: float = 0.2
    test: float = 0.2
    seed: int = 0
    balance: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("counts", "fractions", "given"):
            raise DataError(f"split method must be counts, fractions or given, not {self.method!r}")
        values = {"train": self.train, "val": self.val, "test": self.test}
        if any(v < 0 for v in values.values()):
            raise DataError("train, val and test must not be negative")
        if self.method == "counts":
            if any(float(v) != int(v) for v in values.values()):
                raise DataError("counts must be whole numbers of images per class")
            self.train, self.val, self.test = int(self.train), int(self.val), int(self.test)
            if self.train < 1:
                raise DataError("the training split needs at least 1 image per class")
        elif self.method == "fractions":
            if sum(values.values()) > 1.0 + 1e-9:
                raise DataError(f"fractions add up to {sum(values.values()):.2f}; they must not exceed 1")
            if self.train <= 0:
                raise DataError("the training fraction must be above 0")


@dataclass
class Split:
    """A saved split: which files of which dataset go to train, val and test."""

    name: str
    dataset_root: str
    classes: list[str]
    spec: SplitSpec
    subsets: dict[str, list[tuple[str, int]]]  # subset -> [(rel path, class index)]
    fingerprint: str  # of the files in the split, to notice a changed folder
    created: float = field(default_factory=time.time)

    def files(self, subset: str) -> list[str]:
        return [p for p, _ in self.subsets[subset]]

    def labels(self, subset: str) -> np.ndarray:
        return np.array([y for _, y in self.subsets[subset]], dtype=np.int32)

    def table(self) -> dict[str, dict[str, int]]:
        """{subset: {class: count}} for display."""
        out = {}
        for s in SUBSETS:
            counts = Counter(y for _, y in self.subsets.get(s, []))
            out[s] = {c: counts.get(i, 0) for i, c in enumerate(self.classes)}
        return out

    def all_files(self) -> list[str]:
        return [p for s in SUBSETS for p, _ in self.subsets.get(s, [])]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["subsets"] = {s: [[p, y] for p, y in items] for s, items in self.subsets.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Split:
        return cls(
            name=d["name"],
            dataset_root=d["dataset_root"],
            classes=list(d["classes"]),
            spec=SplitSpec(**d["spec"]),
            subsets={s: [(p, int(y)) for p, y in items] for s, items in d["subsets"].items()},
            fingerprint=d["fingerprint"],
            created=d.get("created", 0.0),
        )

    def changed(self) -> str | None:
        """Why the dataset no longer matches this split, or None when it still does."""
        root = Path(self.dataset_root)
        if not root.is_dir():
            return f"the dataset folder {root} is gone"
        missing = [p for p in self.all_files() if not (root / p).exists()]
        if missing:
            return f"{len(missing)} files of this split are missing (e.g. {missing[0]})"
        if fingerprint_files(root, self.all_files()) != self.fingerprint:
            return "files of this split changed on disk since it was made"
        return None


def _class_rng(seed: int, class_name: str) -> np.random.Generator:
    # Seeding per class keeps one class's shuffle stable when another class changes.
    return np.random.default_rng([seed, zlib.crc32(class_name.encode())])


def _fraction_counts(n: int, spec: SplitSpec) -> tuple[int, int, int]:
    raw = [n * spec.train, n * spec.val, n * spec.test]
    counts = [int(np.floor(r)) for r in raw]
    target = int(round(sum(raw)))
    order = np.argsort([-(r - c) for r, c in zip(raw, counts)], kind="stable")
    for i in order[: max(0, target - sum(counts))]:
        counts[i] += 1
    if spec.train > 0 and counts[0] == 0 and n > 0:
        counts[0] = 1
        for j in (2, 1):
            if sum(counts) > n and counts[j] > 0:
                counts[j] -= 1
    return counts[0], counts[1], counts[2]


def make_split(index: DatasetIndex, spec: SplitSpec, name: str = "") -> Split:
    """Seeded, stratified, disjoint train/val/test lists per class, by counts or fractions."""
    if len(index.classes) < 2:
        raise DataError(f"a split needs at least two classes with images; found {len(index.classes)}")
    if spec.method == "given" and index.layout != "pre_split":
        raise DataError("this folder has no train/val/test folders; split by counts or fractions")
    per_class = {i: [] for i in range(len(index.classes))}
    given = index.given_splits or [None] * len(index)
    for p, y, g in zip(index.paths, index.labels, given):
        per_class[y].append((p, g))
    smallest = min(len(v) for v in per_class.values())
    subsets: dict[str, list[tuple[str, int]]] = {s: [] for s in SUBSETS}
    for y, items in per_class.items():
        name_c = index.classes[y]
        rng = _class_rng(spec.seed, name_c)
        order = [items[i] for i in rng.permutation(len(items))]
        if spec.method == "given":
            for s in SUBSETS:
                chosen = [p for p, g in order if g == s]
                if spec.balance:
                    least = min(sum(1 for _, g in v if g == s) for v in per_class.values())
                    chosen = chosen[:least]
                subsets[s] += [(p, y) for p in sorted(chosen)]
            continue
        n = smallest if spec.balance else len(order)
        if spec.method == "counts":
            counts = (spec.train, spec.val, spec.test)
            need = sum(counts)
            if need > len(order):
                raise DataError(
                    f"class '{name_c}' has {len(order)} usable images but the split asks for {need} "
                    f"per class ({spec.train} train + {spec.val} val + {spec.test} test)"
                )
        else:
            counts = _fraction_counts(n, spec)
        start = 0
        for s, k in zip(SUBSETS, counts):
            subsets[s] += [(p, y) for p, _ in sorted(order[start : start + k])]
            start += k
    if not subsets["train"]:
        raise DataError("the training split came out empty")
    files = [p for s in SUBSETS for p, _ in subsets[s]]
    return Split(
        name=name,
        dataset_root=index.root,
        classes=list(index.classes),
        spec=spec,
        subsets=subsets,
        fingerprint=fingerprint_files(index.root, files),
    )


def check_name(name: str, what: str = "name") -> str:
    """A name for files in the workspace: letters, digits, space, - _ . (at most 64)."""
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise DataError(f"{what} {name!r} is not allowed: use letters, digits, spaces, - _ . (max 64)")
    return name


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


def delete_split(name: str, workspace: str | os.PathLike | None = None) -> None:
    split_path(name, workspace).unlink(missing_ok=True)


def materialize(split: Split, out_dir: str | os.PathLike, progress: Progress | None = None) -> Path:
    """Lay the split out as out_dir/{train,validation,test}/<class>/<file> like the seeds do.

    Hard links where the file system allows (no extra space), copies otherwise. Refuses to
    write into a folder that already has files in it.
    """
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} is not empty; choose a new folder")
    root = Path(split.dataset_root)
    folder = {"train": "train", "val": "validation", "test": "test"}
    total = sum(len(v) for v in split.subsets.values())
    done = 0
    for s in SUBSETS:
        used: set[str] = set()
        for rel, y in split.subsets.get(s, []):
            target_name = Path(rel).name
            if target_name in used:  # same file name in two nested folders of one class
                target_name = rel.replace("/", "__")
            used.add(target_name)
            target = out / folder[s] / split.classes[y] / target_name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(root / rel, target)
            except OSError:
                shutil.copy2(root / rel, target)
            done += 1
            if progress and (done % 64 == 0 or done == total):
                progress(done, total)
    return out
