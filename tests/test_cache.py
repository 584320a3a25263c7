"""core.cache: decode once to disk, reuse without decoding, keys follow files, size and policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import cache
from core.data import SplitSpec, make_split, scan
from core.images import load_resized
from tests import imagefiles


@pytest.fixture
def split(class_folders):
    return make_split(scan(class_folders), SplitSpec(method="counts", train=6, val=2, test=2, seed=0))


def test_cold_then_warm_decodes_nothing(split, workspace, monkeypatch):
    seen = []
    cold = cache.split_arrays(split, "train", (24, 32), progress=lambda d, t: seen.append((d, t)))
    assert cold.images.shape == (18, 24, 32, 3) and cold.images.dtype == np.uint8
    assert cold.decoded == 18 and seen[-1] == (18, 18)
    assert list(cold.labels) == list(split.labels("train"))
    expected = load_resized(f"{split.dataset_root}/{split.files('train')[3]}", (24, 32))
    assert np.array_equal(cold.images[3], expected)

    def boom(*args, **kwargs):
        raise AssertionError("the warm path must not decode")

    monkeypatch.setattr(cache, "load_resized", boom)
    warm = cache.split_arrays(split, "train", (24, 32))
    assert warm.decoded == 0 and warm.key == cold.key
    assert isinstance(warm.images, np.memmap)
    assert np.array_equal(np.asarray(warm.images), np.asarray(cold.images))


def test_other_size_policy_or_changed_file_gets_new_entry(split, workspace):
    a = cache.split_arrays(split, "val", (16, 16))
    assert cache.split_arrays(split, "val", (20, 16)).key != a.key
    assert cache.split_arrays(split, "val", (16, 16), policy="crop").key != a.key
    path = f"{split.dataset_root}/{split.files('val')[0]}"
    imagefiles.noisy(Path(path), seed=999)
    again = cache.split_arrays(split, "val", (16, 16))
    assert again.key != a.key and again.decoded == 6


def test_files_that_fail_to_decode_are_left_out(tmp_path, workspace, monkeypatch):
    for i in range(3):
        imagefiles.noisy(tmp_path / f"ok{i}.png", seed=i)
    imagefiles.text_as_jpg(tmp_path / "bad.jpg")
    paths = ["ok0.png", "bad.jpg", "ok1.png", "ok2.png"]
    out = cache.load_arrays(tmp_path, paths, [0, 1, 0, 1], (8, 8))
    assert out.images.shape == (3, 8, 8, 3)
    assert out.paths == ["ok0.png", "ok1.png", "ok2.png"]
    assert list(out.labels) == [0, 0, 1]
    assert out.failed[0][0] == "bad.jpg" and "not an image" in out.failed[0][1]


def test_incomplete_entry_is_rebuilt(split, workspace):
    a = cache.split_arrays(split, "test", (12, 12))
    (workspace / "cache" / a.key / "meta.json").unlink()  # as if killed before the last write
    b = cache.split_arrays(split, "test", (12, 12))
    assert b.decoded == 6 and np.array_equal(np.asarray(a.images), np.asarray(b.images))
    assert [p.name for p in (workspace / "cache").iterdir() if p.is_dir()] == [a.key]  # one entry, rebuilt


def test_large_decodes_run_one_at_a_time(tmp_path, workspace, monkeypatch):
    """The decode pool never holds two large images at once; small ones still decode in parallel."""
    import threading
    import time

    from PIL import ImageFile

    from core import images

    for i in range(8):
        imagefiles.noisy(tmp_path / f"p{i}.png", size=(40, 40), seed=i)
    paths = [f"p{i}.png" for i in range(8)]
    active, most = 0, []
    lock = threading.Lock()
    real_load = ImageFile.ImageFile.load

    def slow_load(self):
        nonlocal active
        with lock:
            active += 1
            most.append(active)
        try:
            time.sleep(0.05)
            return real_load(self)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", slow_load)
    monkeypatch.setattr(images, "LARGE_DECODE_PIXELS", 40 * 40 - 1, raising=False)  # every file is "large"
    out = cache.load_arrays(tmp_path, paths, [0] * 8, (8, 8), workers=4)
    assert out.images.shape == (8, 8, 8, 3) and max(most) == 1

    most.clear()
    monkeypatch.setattr(images, "LARGE_DECODE_PIXELS", 40 * 40, raising=False)  # none is
    cache.load_arrays(tmp_path, paths, [0] * 8, (9, 9), workers=4)
    assert max(most) > 1


def test_derived_values_are_kept_beside_the_entry_and_rebuilt_when_damaged(split, workspace):
    arrays = cache.split_arrays(split, "val", (8, 8))
    calls = []

    def means(images):
        calls.append(len(images))
        return np.asarray(images).reshape(len(images), -1).mean(axis=1)

    values, computed = cache.derived(arrays, "means-v1", means)
    assert computed and calls == [6] and values.shape == (6,)
    again, computed = cache.derived(arrays, "means-v1", means)
    assert not computed and calls == [6] and np.array_equal(again, values)
    (workspace / "cache" / arrays.key / "means-v1.npy").write_bytes(b"damaged")
    rebuilt, computed = cache.derived(arrays, "means-v1", means)
    assert computed and np.array_equal(rebuilt, values)
    for bad in ("images", "../x", "Means"):
        with pytest.raises(ValueError):
            cache.derived(arrays, bad, means)
