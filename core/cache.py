"""Decode once: a split's images as resized uint8 arrays on disk, memory-mapped by every run.

An entry lives in ``workspace/cache/<key>/`` with ``images.npy`` of shape (N, H, W, 3) uint8,
``labels.npy`` of shape (N,) int32 and ``meta.json`` (written last: an entry without it is
incomplete and rebuilt); values computed per picture from the images (e.g. core.dupes' hashes)
are kept beside them as ``<name>.npy`` (see `derived`). The key hashes the files' names, sizes and mtimes, the target size and
the resize policy, so a changed folder or another size gets its own entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data import Split, fingerprint_files
from core.fileio import atomic_write_json, read_json, replacing
from core.images import ImageError, ResizePolicy, load_resized
from core.workspace import make_temp_dir, subdir

Progress = Callable[[int, int], None]
CACHE_VERSION = 1


@dataclass
class CachedArrays:
    """Decoded images (N, H, W, 3) uint8 (a read-only memmap) with labels (N,) int32."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[str]
    failed: list[tuple[str, str]]  # (rel path, reason) of files that could not be decoded
    decoded: int  # images decoded by this call: 0 when the cache was warm
    key: str

    def __len__(self) -> int:
        return len(self.labels)


def cache_key(root: str | os.PathLike, paths: list[str], size: tuple[int, int], policy: str) -> str:
    h = hashlib.sha256()
    h.update(f"v{CACHE_VERSION}|{Path(root).resolve()}|{size[0]}x{size[1]}|{policy}|".encode())
    # Order matters (labels follow it), so hash the list as given and the fingerprint.
    h.update("\n".join(paths).encode())
    h.update(fingerprint_files(root, paths).encode())
    return h.hexdigest()[:20]


def _open(entry: Path, key: str, decoded: int) -> CachedArrays:
    meta = read_json(entry / "meta.json")
    return CachedArrays(
        images=np.load(entry / "images.npy", mmap_mode="r"),
        labels=np.load(entry / "labels.npy"),
        paths=meta["paths"],
        failed=[tuple(f) for f in meta["failed"]],
        decoded=decoded,
        key=key,
    )


def load_arrays(
    root: str | os.PathLike,
    paths: list[str],
    labels: list[int] | np.ndarray,
    size: tuple[int, int],
    policy: ResizePolicy = "stretch",
    workspace: str | os.PathLike | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> CachedArrays:
    """The images at root/paths resized to `size` = (height, width), from the cache or decoded now.

    Decoding runs on all cores (Pillow and OpenCV release the GIL while they work); images of
    over 16 megapixels decode one at a time (core.images.LARGE_DECODE_PIXELS), so the pool
    never holds several of them in memory at once. Files that fail to decode are left out and
    listed in `failed`; order is otherwise kept.
    """
    root = Path(root)
    if len(paths) != len(labels):
        raise ValueError("paths and labels differ in length")
    key = cache_key(root, list(paths), size, policy)
    entry = subdir("cache", workspace) / key
    if (entry / "meta.json").exists():
        try:
            return _open(entry, key, decoded=0)
        except (OSError, ValueError, KeyError):
            pass  # damaged entry: rebuilt below
    if entry.exists():  # left by a process killed mid-write, or damaged
        shutil.rmtree(entry, ignore_errors=True)

    h, w = size
    n = len(paths)
    tmp = make_temp_dir(entry.parent, key)
    try:
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=(n, h, w, 3))
        ok = np.ones(n, dtype=bool)
        failed: list[tuple[str, str]] = []

        def decode(i: int) -> tuple[int, str | None]:
            try:
                images[i] = load_resized(root / paths[i], size, policy)
                return i, None
            except (ImageError, OSError) as e:
                return i, str(e)

        done = 0
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            for i, error in pool.map(decode, range(n), chunksize=8):
                if error is not None:
                    ok[i] = False
                    failed.append((paths[i], error))
                done += 1
                if progress and (done % 32 == 0 or done == n):
                    progress(done, n)
        kept_paths = [p for p, k in zip(paths, ok) if k]
        if failed:
            compact = np.lib.format.open_memmap(
                tmp / "kept.npy", mode="w+", dtype=np.uint8, shape=(int(ok.sum()), h, w, 3)
            )
            compact[:] = images[ok]
            compact.flush()
            del images, compact
            os.replace(tmp / "kept.npy", tmp / "images.npy")
        else:
            images.flush()
            del images
        np.save(tmp / "labels.npy", np.asarray(labels, dtype=np.int32)[ok])
        atomic_write_json(
            tmp / "meta.json",
            {
                "version": CACHE_VERSION,
                "root": str(root),
                "size": [h, w],
                "policy": policy,
                "paths": kept_paths,
                "failed": failed,
                "created": time.time(),
            },
        )
        try:
            os.replace(tmp, entry)
        except OSError:  # another process finished the same entry first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _open(entry, key, decoded=n)


def split_arrays(
    split: Split,
    subset: str,
    size: tuple[int, int],
    policy: ResizePolicy = "stretch",
    workspace: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> CachedArrays:
    """One subset (train, val or test) of a saved split, decoded to `size` through the cache."""
    if subset not in split.subsets:
        raise KeyError(f"split has no subset {subset!r}")
    return load_arrays(
        split.dataset_root,
        split.files(subset),
        split.labels(subset),
        size,
        policy,
        workspace=workspace,
        progress=progress,
    )


def derived(
    arrays: CachedArrays,
    name: str,
    compute: Callable[[np.ndarray], np.ndarray],
    workspace: str | os.PathLike | None = None,
) -> tuple[np.ndarray, bool]:
    """Per-picture values computed from an entry's images, kept beside them as ``<name>.npy``.

    `compute` maps the images (N, H, W, 3) to an array of N rows; it runs once per entry and
    name (put a version in the name to change what it computes). Returns (values, computed now).
    An entry that cannot be written (read-only workspace) still gets its values, just not kept.
    """
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name) or name in ("images", "labels"):
        raise ValueError(f"not a name for derived values: {name!r}")
    path = subdir("cache", workspace) / arrays.key / f"{name}.npy"
    if path.exists():
        try:
            values = np.load(path)
            if len(values) == len(arrays):
                return values, False
        except (OSError, ValueError):
            pass  # damaged: computed again below
    values = np.asarray(compute(arrays.images))
    if len(values) != len(arrays):
        raise ValueError(f"{name}: {len(values)} values for {len(arrays)} images")
    with contextlib.suppress(OSError), replacing(path) as tmp:
        np.save(tmp, values)
    return values, True
