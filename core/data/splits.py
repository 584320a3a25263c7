"""Seeded, stratified, disjoint train/val/test splits of a DatasetIndex, and laying one out as folders."""

from __future__ import annotations

import os
import shutil
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from core.data.scanning import DatasetIndex, Progress, fingerprint_files
from core.errors import DataError

SUBSETS: tuple[str, ...] = ("train", "val", "test")


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

    def with_subsets(self, subsets: dict[str, list[tuple[str, int]]], name: str | None = None) -> Split:
        """This split holding `subsets` instead, with the fingerprint of their files; with a new
        name it is a new split (made now), without one the same split changed."""
        files = [p for items in subsets.values() for p, _ in items]
        made = {"name": self.name, "created": self.created} if name is None else {"name": name}
        return Split(
            dataset_root=self.dataset_root,
            classes=list(self.classes),
            spec=self.spec,
            subsets=subsets,
            fingerprint=fingerprint_files(self.dataset_root, files),
            **made,
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


def drop_files(split: Split, drop: dict[str, list[str]]) -> Split:
    """A copy of `split` without the files `drop` names ({subset: paths}) in validation or test,
    e.g. the later copies of duplicate pictures (core.dupes). Training is never touched; the files
    stay on disk."""
    if drop.get("train"):
        raise DataError("only validation and test pictures can be left out this way; training stays as it is")
    leave = {s: set(paths) for s, paths in drop.items()}
    unknown = [
        p for s, paths in leave.items() for p in sorted(paths - {f for f, _ in split.subsets.get(s, [])})
    ]
    if unknown:
        raise DataError(f"{len(unknown)} of the files to leave out are not in the split (e.g. {unknown[0]})")
    return split.with_subsets(
        {s: [(p, y) for p, y in items if p not in leave.get(s, ())] for s, items in split.subsets.items()}
    )
