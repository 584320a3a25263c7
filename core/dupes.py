"""Duplicates and leakage in a split: perceptual hashes of the decoded pictures, near pairs, a report.

Every picture of the split is hashed once from the decode cache (core.cache) and the hashes are
kept beside the decoded images, so a second check reads them. Two pictures are near copies when
the Hamming distance between their hashes (a DCT hash and a gradient hash of a grayscale
version, 64 bits each) is at most THRESHOLD of 128 bits: a resized, re-encoded or slightly
cropped copy stays under it, different photos stay well above it (docs/dev-notes.md has the
measurements). Identical pictures (the same pixels after decoding) are told apart by a content
hash. Near copies are joined into groups; a group that spans training and validation or test is
leakage, a group whose pictures carry different labels is a labelling error.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import imagehash
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core import cache
from core.data import SUBSETS, Split
from core.images import ResizePolicy

# Columns of a hashes array (N, 3) uint64.
PHASH, DHASH, CONTENT = 0, 1, 2
HASH_NAME = "dupes-hashes-v1"  # the file beside the decoded images; bump when the recipe changes
CHECK_SIZE = (150, 150)  # the size THRESHOLD was measured at (the tutorials' training size)
THRESHOLD = 20  # of 128 bits; see docs/dev-notes.md "Duplicates"
PAIR_BUDGET = 1 << 21  # pairs compared at once: bounds the search's memory (~20 MB)
Stage = Callable[[str, int, int], None]  # (what, done, total)


def _bits(h: imagehash.ImageHash) -> np.ndarray:
    return h.hash.reshape(-1)


def picture_hashes(images: np.ndarray, workers: int | None = None) -> np.ndarray:
    """(N, 3) uint64 for images (N, H, W, 3) uint8: DCT hash, gradient hash (ImageHash's phash and
    dhash of a grayscale version, 64 bits each) and the first 64 bits of the pixels' SHA-1."""

    def one(i: int) -> tuple[np.ndarray, int]:
        pixels = np.ascontiguousarray(images[i])
        gray = Image.fromarray(pixels).convert("L")
        bits = np.concatenate([_bits(imagehash.phash(gray)), _bits(imagehash.dhash(gray))])
        return bits, int.from_bytes(hashlib.sha1(pixels.tobytes()).digest()[:8], "big")

    n = len(images)
    out = np.zeros((n, 3), dtype=np.uint64)
    if n == 0:
        return out
    # Pillow's resize and SHA-1 release the GIL, so threads share the work.
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = list(pool.map(one, range(n), chunksize=64))
    bits = np.stack([b for b, _ in results])  # (N, 128) bool
    out[:, :2] = np.packbits(bits, axis=1).view(">u8").astype(np.uint64)
    out[:, CONTENT] = np.array([c for _, c in results], dtype=np.uint64)
    return out


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance (0..128) between hash rows a and b (..., 3), broadcast."""
    return (
        np.bitwise_count(a[..., PHASH] ^ b[..., PHASH]) + np.bitwise_count(a[..., DHASH] ^ b[..., DHASH])
    ).astype(np.int32)


def near_pairs(
    hashes: np.ndarray, threshold: int = THRESHOLD, budget: int = PAIR_BUDGET
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair i < j of hashes (N, 3) at distance <= threshold, as arrays (i, j, distance).

    All pairs are compared, a block of rows at a time, with vectorised popcounts: memory stays
    at about `budget` pairs whatever N is, and time grows with N^2 / 2 (about 2 s for 25,000 on one
    core). Multi-index hashing would need threshold + 1 = 21 bands of 6 bits for 128-bit hashes,
    which still leaves about a third of all pairs as candidates: no gain at this threshold.
    """
    n = len(hashes)
    p, d = np.ascontiguousarray(hashes[:, PHASH]), np.ascontiguousarray(hashes[:, DHASH])
    rows = max(1, budget // max(n, 1))
    found_i, found_j, found_d = [], [], []
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        dist = np.bitwise_count(p[start:stop, None] ^ p[None, start:])
        dist += np.bitwise_count(d[start:stop, None] ^ d[None, start:])
        r, c = np.nonzero(dist <= threshold)
        upper = c > r  # column c is picture start + c: keep each pair once, never a picture with itself
        r, c = r[upper], c[upper]
        found_i.append(r + start)
        found_j.append(c + start)
        found_d.append(dist[r, c].astype(np.int32))
    if not found_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)


@dataclass(frozen=True)
class Picture:
    """One picture of the split: its subset, its path under the dataset folder, its class index."""

    subset: str
    path: str
    label: int


@dataclass(frozen=True)
class Copy:
    """`picture` is a copy of `original`, which comes earlier (an earlier subset, or earlier in it)."""

    picture: Picture
    original: Picture
    distance: int  # 0..128; 0 can still be a re-encoded copy
    identical: bool  # the same pixels after decoding

    @property
    def labels_differ(self) -> bool:
        return self.picture.label != self.original.label


@dataclass
class Group:
    """Pictures that are copies of one another (joined through near pairs), in split order:
    training first, then validation, then test, with their distances to one another."""

    pictures: list[Picture]
    distances: np.ndarray  # (k, k) int32
    identical: np.ndarray  # (k, k) bool: the same pixels

    @property
    def labels_differ(self) -> bool:
        return len({p.label for p in self.pictures}) > 1

    def copy(self, k: int, among: list[int]) -> Copy:
        """pictures[k] as a copy of the closest of pictures[among]."""
        best = min(among, key=lambda i: (self.distances[k, i], i))
        return Copy(
            self.pictures[k], self.pictures[best], int(self.distances[k, best]), bool(self.identical[k, best])
        )

    def copies(self) -> list[Copy]:
        """Every picture after the first as a copy of the closest picture before it."""
        return [self.copy(k, list(range(k))) for k in range(1, len(self.pictures))]

    def part(self, keep: list[int]) -> Group:
        return Group(
            [self.pictures[i] for i in keep],
            self.distances[np.ix_(keep, keep)],
            self.identical[np.ix_(keep, keep)],
        )


@dataclass
class DupesReport:
    """What check() found in a split."""

    classes: list[str]
    checked: dict[str, int]  # pictures hashed per subset
    groups: list[Group]
    threshold: int
    size: tuple[int, int]
    hashed: int = 0  # pictures hashed by this call: 0 when every hash came from the cache
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (subset, path, reason)

    def within(self, subset: str) -> list[Group]:
        """Groups of copies inside one subset (a group's pictures in other subsets left out)."""
        parts = ([i for i, p in enumerate(g.pictures) if p.subset == subset] for g in self.groups)
        return [g.part(keep) for g, keep in zip(self.groups, parts) if len(keep) > 1]

    def leaks(self) -> list[Copy]:
        """Validation and test pictures with a copy in an earlier subset (training, or validation
        for test), each with the closest such copy."""
        out = []
        for g in self.groups:
            order = [SUBSETS.index(p.subset) for p in g.pictures]
            for k, rank in enumerate(order):
                earlier = [i for i, r in enumerate(order) if r < rank]
                if earlier:
                    out.append(g.copy(k, earlier))
        return sorted(out, key=lambda c: (SUBSETS.index(c.picture.subset), c.picture.path))

    def label_conflicts(self) -> list[Group]:
        return [g for g in self.groups if g.labels_differ]

    def to_drop(self) -> dict[str, list[str]]:
        """{subset: paths} of validation and test pictures that are later copies of another
        picture of the split: leaving them out keeps one copy of each and training untouched."""
        drop: dict[str, list[str]] = {}
        for g in self.groups:
            for p in g.pictures[1:]:
                if p.subset != "train":
                    drop.setdefault(p.subset, []).append(p.path)
        return {s: sorted(drop[s]) for s in SUBSETS if s in drop}


def groups_of(pictures: list[Picture], hashes: np.ndarray, threshold: int = THRESHOLD) -> list[Group]:
    """Pictures (in split order) joined into groups of copies: connected components of the near pairs."""
    i, j, _ = near_pairs(hashes, threshold)
    if not len(i):
        return []
    n = len(pictures)
    _, component = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    members: dict[int, list[int]] = {}
    for k in np.unique(np.concatenate([i, j])):
        members.setdefault(int(component[k]), []).append(int(k))
    groups = []
    for idx in sorted(members.values()):
        h = hashes[idx]
        groups.append(
            Group(
                [pictures[k] for k in idx],
                distance(h[:, None], h[None, :]),
                h[:, None, CONTENT] == h[None, :, CONTENT],
            )
        )
    return groups


@dataclass
class SplitHashes:
    """A split's pictures in split order (training, validation, test) with their hashes (N, 3)."""

    pictures: list[Picture]
    hashes: np.ndarray
    checked: dict[str, int]  # pictures per subset
    failed: list[tuple[str, str, str]]  # (subset, path, reason): could not be decoded
    hashed: int  # pictures hashed by this call


def split_hashes(
    split: Split,
    size: tuple[int, int] = CHECK_SIZE,
    policy: ResizePolicy = "stretch",
    workspace: str | os.PathLike | None = None,
    progress: Stage | None = None,
) -> SplitHashes:
    """The hashes of every picture of `split` decoded at `size` through the decode cache (decoded
    now if needed), computed once per cache entry and kept beside it."""
    pictures: list[Picture] = []
    parts, checked, failed, hashed = [], {}, [], 0
    names = {"train": "training", "val": "validation", "test": "test"}
    for subset in SUBSETS:
        if not split.subsets.get(subset):
            continue
        decode = (
            (lambda d, t, s=subset: progress(f"Decoding {names[s]} pictures", d, t)) if progress else None
        )
        arrays = cache.split_arrays(split, subset, size, policy, workspace=workspace, progress=decode)
        if progress:
            progress(f"Comparing {names[subset]} pictures", 0, len(arrays))
        values, computed = cache.derived(arrays, HASH_NAME, picture_hashes, workspace)
        hashed += len(arrays) if computed else 0
        pictures += [Picture(subset, p, int(y)) for p, y in zip(arrays.paths, arrays.labels)]
        parts.append(values)
        checked[subset] = len(arrays)
        failed += [(subset, path, reason) for path, reason in arrays.failed]
    hashes = np.concatenate(parts) if parts else np.zeros((0, 3), np.uint64)
    return SplitHashes(pictures, hashes, checked, failed, hashed)


def check(
    split: Split,
    size: tuple[int, int] = CHECK_SIZE,
    policy: ResizePolicy = "stretch",
    threshold: int = THRESHOLD,
    workspace: str | os.PathLike | None = None,
    progress: Stage | None = None,
) -> DupesReport:
    """Copies inside each subset of `split` and across them (see split_hashes for the pictures)."""
    found = split_hashes(split, size, policy, workspace, progress)
    return DupesReport(
        classes=list(split.classes),
        checked=found.checked,
        groups=groups_of(found.pictures, found.hashes, threshold),
        threshold=threshold,
        size=tuple(size),
        hashed=found.hashed,
        failed=found.failed,
    )
