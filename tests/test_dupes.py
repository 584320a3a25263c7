"""core.dupes: copies survive resizing, re-encoding and cropping; different pictures do not match;
leakage across subsets, copies inside one, label conflicts; the hash cache; dropping later copies."""

from __future__ import annotations

import io
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import data, dupes
from core.images import load_resized
from tests.conftest import CATSDOGS, run_cli
from tests.imagefiles import jpeg_bytes, photo_like


def crop(img: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


VARIANTS = {
    "resized to 60%": lambda img: jpeg_bytes(img.resize((img.width * 6 // 10, img.height * 6 // 10))),
    "re-encoded at JPEG quality 60": lambda img: jpeg_bytes(Image.open(io.BytesIO(jpeg_bytes(img, 95))), 60),
    "3% cropped on every side": lambda img: jpeg_bytes(crop(img, 0.03, 0.03, 0.03, 0.03)),
    "4% cropped off one corner": lambda img: jpeg_bytes(crop(img, 0.04, 0, 0, 0.04)),
    "resized, cropped and re-encoded": lambda img: jpeg_bytes(
        crop(img, 0.02, 0, 0, 0.02).resize((120, 90)), 60
    ),
}


def hashes_of(sources: list[bytes]) -> np.ndarray:
    """Hashes of pictures decoded as the check decodes them (the size the threshold was measured at)."""
    return dupes.picture_hashes(np.stack([load_resized(s, dupes.CHECK_SIZE) for s in sources]))


@pytest.fixture(scope="module")
def originals() -> list[Image.Image]:
    return [photo_like(seed) for seed in range(12)]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_changed_copy_is_found(originals, variant):
    make = VARIANTS[variant]
    hashes = hashes_of([jpeg_bytes(o) for o in originals] + [make(o) for o in originals])
    n = len(originals)
    i, j, d = dupes.near_pairs(hashes)
    assert sorted(zip(i.tolist(), j.tolist())) == [
        (k, k + n) for k in range(n)
    ]  # each with its own original only
    assert (d <= dupes.THRESHOLD).all()


def test_different_pictures_are_far_apart(originals):
    hashes = hashes_of([jpeg_bytes(o) for o in originals])
    far = [int(dupes.distance(a, b)) for a, b in itertools.combinations(hashes, 2)]
    assert min(far) > dupes.THRESHOLD + 10  # not just over the line
    assert not len(dupes.near_pairs(hashes)[0])


def test_identical_pixels_are_told_from_near_copies(originals):
    same = jpeg_bytes(originals[0])
    hashes = hashes_of([same, same, jpeg_bytes(originals[0], 60)])
    assert hashes[0, dupes.CONTENT] == hashes[1, dupes.CONTENT] != hashes[2, dupes.CONTENT]
    assert dupes.distance(hashes[0], hashes[1]) == 0


def test_the_blocked_search_finds_what_comparing_everything_finds():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, (700, 3), dtype=np.int64).astype(np.uint64)
    for a, b, flips in ((3, 650, 5), (10, 11, 20), (200, 699, 21), (400, 401, 0)):  # 21: just too far
        hashes[b] = hashes[a]
        for bit in rng.choice(128, flips, replace=False):
            hashes[b, bit // 64] ^= np.uint64(1 << (int(bit) % 64))
    i, j, d = dupes.near_pairs(hashes, budget=5000)  # 7 rows per block: many blocks
    full = dupes.distance(hashes[:, None], hashes[None, :])
    expected = [(a, b) for a, b in zip(*np.nonzero(full <= dupes.THRESHOLD)) if a < b]
    assert sorted(zip(i.tolist(), j.tolist())) == expected == [(3, 650), (10, 11), (400, 401)]
    assert sorted(d.tolist()) == [0, 5, 20]


# ---------------------------------------------------------------------------- a split with copies


def save(img: Image.Image | bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(img if isinstance(img, bytes) else jpeg_bytes(img))


def folder_with_copies(root: Path) -> Path:
    """train/val/test folders of cats and dogs (photo-like pictures) holding every kind of copy:
    a training cat copied into validation (resized) and test (cropped), a training cat filed as a
    dog in validation, a file twice in training, and a picture twice in test (re-encoded)."""
    seeds = itertools.count(100)
    for subset, n in (("train", 3), ("val", 2), ("test", 2)):
        for cls in ("cat", "dog"):
            for k in range(n):
                save(photo_like(next(seeds)), root / subset / cls / f"{cls}_{k}.jpg")
    cat, other_cat, dog = photo_like(1), photo_like(2), photo_like(3)
    save(cat, root / "train" / "cat" / "original.jpg")
    save(VARIANTS["resized to 60%"](cat), root / "val" / "cat" / "resized.jpg")
    save(VARIANTS["3% cropped on every side"](cat), root / "test" / "cat" / "cropped.jpg")
    save(other_cat, root / "train" / "cat" / "tabby.jpg")
    save(VARIANTS["re-encoded at JPEG quality 60"](other_cat), root / "val" / "dog" / "filed_as_dog.jpg")
    save(dog, root / "train" / "dog" / "rex.jpg")
    shutil.copy(root / "train" / "dog" / "rex.jpg", root / "train" / "dog" / "rex_again.jpg")
    twin = photo_like(4)
    save(twin, root / "test" / "dog" / "twin_a.jpg")
    save(VARIANTS["re-encoded at JPEG quality 60"](twin), root / "test" / "dog" / "twin_b.jpg")
    return root


@pytest.fixture(scope="module")
def copies_split(tmp_path_factory) -> data.Split:
    root = folder_with_copies(tmp_path_factory.mktemp("copies"))
    return data.make_split(data.scan(root), data.SplitSpec(method="given"), name="copies")


@pytest.fixture(scope="module")
def report(copies_split, tmp_path_factory) -> dupes.DupesReport:
    return dupes.check(copies_split, workspace=tmp_path_factory.mktemp("ws"))


def paths(pictures) -> list[str]:
    return [p.path for p in pictures]


def test_leakage_is_each_validation_or_test_copy_of_an_earlier_picture(report):
    leaks = {c.picture.path: c for c in report.leaks()}
    assert sorted(leaks) == ["test/cat/cropped.jpg", "val/cat/resized.jpg", "val/dog/filed_as_dog.jpg"]
    assert leaks["val/cat/resized.jpg"].original == dupes.Picture("train", "train/cat/original.jpg", 0)
    assert leaks["test/cat/cropped.jpg"].picture.subset == "test"
    assert leaks["test/cat/cropped.jpg"].original.path in ("train/cat/original.jpg", "val/cat/resized.jpg")
    assert leaks["val/dog/filed_as_dog.jpg"].original.path == "train/cat/tabby.jpg"
    assert leaks["val/dog/filed_as_dog.jpg"].labels_differ
    assert not leaks["val/cat/resized.jpg"].labels_differ
    assert all(0 <= c.distance <= report.threshold for c in leaks.values())


def test_copies_inside_each_subset(report):
    (train,) = report.within("train")
    assert paths(train.pictures) == ["train/dog/rex.jpg", "train/dog/rex_again.jpg"]
    (copy,) = train.copies()
    assert copy.identical and copy.distance == 0
    assert report.within("val") == []
    (test,) = report.within("test")
    assert paths(test.pictures) == ["test/dog/twin_a.jpg", "test/dog/twin_b.jpg"]
    assert not test.copies()[0].identical


def test_a_copy_with_another_label_is_a_labelling_error(report):
    (conflict,) = report.label_conflicts()
    assert [(p.subset, p.path) for p in conflict.pictures] == [
        ("train", "train/cat/tabby.jpg"),
        ("val", "val/dog/filed_as_dog.jpg"),
    ]
    assert len(report.groups) == 4 and report.checked == {"train": 10, "val": 6, "test": 7}


def test_dropping_keeps_training_and_the_first_copy_and_removes_only_the_later_ones(report, copies_split):
    drop = report.to_drop()
    assert drop == {
        "val": ["val/cat/resized.jpg", "val/dog/filed_as_dog.jpg"],
        "test": ["test/cat/cropped.jpg", "test/dog/twin_b.jpg"],
    }
    cleaned = data.drop_files(copies_split, drop)
    assert cleaned.subsets["train"] == copies_split.subsets["train"]  # both rex files stay
    for subset in ("val", "test"):
        kept = copies_split.files(subset)
        assert cleaned.files(subset) == [p for p in kept if p not in drop[subset]]
    assert "test/dog/twin_a.jpg" in cleaned.files("test")
    assert cleaned.changed() is None and cleaned.fingerprint != copies_split.fingerprint
    assert len(copies_split.files("val")) == 6  # the original split is not changed


def test_dropping_refuses_training_and_files_not_in_the_split(copies_split):
    with pytest.raises(data.DataError, match="training"):
        data.drop_files(copies_split, {"train": ["train/dog/rex_again.jpg"]})
    with pytest.raises(data.DataError, match="not in the split"):
        data.drop_files(copies_split, {"val": ["train/cat/original.jpg"]})


def test_hashes_are_kept_with_the_decode_cache_and_not_computed_again(copies_split, workspace, monkeypatch):
    first = dupes.check(copies_split, workspace=workspace)
    assert first.hashed == sum(first.checked.values()) == 23
    entries = list((workspace / "cache").glob(f"*/{dupes.HASH_NAME}.npy"))
    assert len(entries) == 3  # one per subset, beside its decoded images

    def boom(images):
        raise AssertionError("hashed again")

    monkeypatch.setattr(dupes, "picture_hashes", boom)
    again = dupes.check(copies_split, workspace=workspace)
    assert again.hashed == 0
    assert [paths(g.pictures) for g in again.groups] == [paths(g.pictures) for g in first.groups]


def test_cli_prints_the_report_and_split_drop_dupes_saves_without_the_later_copies(copies_split, workspace):
    data.save_split(copies_split, workspace=workspace)
    out = run_cli("data", "dupes", "copies", workspace=workspace)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "23 pictures checked (training 10, validation 6, test 7)" in text
    assert "leakage (validation or test pictures with a copy in an earlier subset): 3" in text
    assert "validation val/cat/resized.jpg (cat) ~ training train/cat/original.jpg (cat): distance" in text
    assert "validation val/dog/filed_as_dog.jpg (dog) ~ training train/cat/tabby.jpg (cat)" in text
    assert "LABELS DIFFER" in text
    assert "train/dog/rex.jpg (dog) = train/dog/rex_again.jpg (dog): the same picture" in text
    assert "leaves the later copies out: 2 validation, 2 test" in text

    made = run_cli(
        "data",
        "split",
        copies_split.dataset_root,
        "--given",
        "--name",
        "clean",
        "--drop-dupes",
        workspace=workspace,
    )
    assert made.returncode == 0, made.stderr
    assert "left out as copies of other pictures: 2 validation, 2 test" in made.stdout
    clean = data.load_split("clean", workspace)
    assert clean.subsets["train"] == copies_split.subsets["train"]
    assert len(clean.files("val")) == 4 and len(clean.files("test")) == 5
    again = run_cli("data", "dupes", "clean", workspace=workspace)
    assert "leakage (validation or test pictures with a copy in an earlier subset): none" in again.stdout


@pytest.mark.slow
@pytest.mark.skipif(not CATSDOGS.is_dir(), reason="no shared cat and dog photos")
def test_shared_photos_hold_one_known_copy_and_no_false_match(tmp_path):
    split = data.make_split(data.scan(CATSDOGS), data.SplitSpec("fractions", 0.6, 0.2, 0.2))
    report = dupes.check(split, workspace=tmp_path)
    # The only copy among these 3,000 photos (checked by eye): the same boxer puppies twice.
    assert [sorted(paths(g.pictures)) for g in report.groups] == [["dogs/dog.180.jpg", "dogs/dog.74.jpg"]]
