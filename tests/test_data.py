"""core.data: layouts, bad files, splits (counts, fractions, given), saving, materialize."""

from __future__ import annotations

import os
import shutil

import pytest

from core import data
from core.data import DataError, SplitSpec, make_split, scan
from tests.conftest import CATSDOGS, make_class_folders


def test_scan_class_folders_ignores_hidden_and_non_images(class_folders):
    index = scan(class_folders)
    assert index.layout == "class_folders"
    assert index.classes == ["a", "b", "c"]
    assert index.class_counts() == {"a": 30, "b": 20, "c": 10}
    assert index.problems == []
    assert index.ignored == 2  # .DS_Store and notes.txt
    assert all(not p.startswith(".") for p in index.paths)


def test_scan_reports_every_bad_file_and_keeps_odd_ones(messy_folder):
    index = scan(messy_folder)
    reasons = {p.path.split("/")[-1]: p.reason for p in index.problems}
    assert set(reasons) == {"truncated.jpg", "text.jpg", "zero.jpg", "huge.png", "tiny.png"}
    assert "too large" in reasons["huge.png"] and "too small" in reasons["tiny.png"]
    assert "empty" in reasons["zero.jpg"] and "not an image" in reasons["text.jpg"]
    kept = {p.split("/")[-1] for p in index.files_of("cats")}
    assert {"rgba.png", "gray16.png", "cmyk.jpg", "rotated.jpg"} <= kept
    assert index.class_counts() == {"cats": 10, "dogs": 6}


def test_scan_kaggle_flat_layout(tmp_path):
    from tests import imagefiles

    for i in range(5):
        imagefiles.noisy(tmp_path / f"cat.{i}.jpg", seed=i)
        imagefiles.noisy(tmp_path / f"dog.{i}.jpg", seed=10 + i)
    imagefiles.noisy(tmp_path / "oddname.jpg")
    index = scan(tmp_path)
    assert index.layout == "kaggle_flat"
    assert index.class_counts() == {"cat": 5, "dog": 5}
    assert [p.path for p in index.problems] == ["oddname.jpg"]


def test_scan_pre_split_layout_keeps_given_splits(tmp_path):
    for subset, n in (("train", 8), ("validation", 3), ("test", 4)):
        make_class_folders(tmp_path / subset, {"x": n, "y": n})
    index = scan(tmp_path)
    assert index.layout == "pre_split"
    split = make_split(index, SplitSpec(method="given"), "given")
    assert {s: len(v) for s, v in split.subsets.items()} == {"train": 16, "val": 6, "test": 8}
    assert all(p.startswith("validation/") for p in split.files("val"))
    with pytest.raises(DataError, match="no train/val/test folders"):
        make_split(scan(make_class_folders(tmp_path / "plain", {"x": 3, "y": 3})), SplitSpec(method="given"))


def test_empty_class_is_reported_and_left_out(tmp_path):
    from tests import imagefiles

    make_class_folders(tmp_path, {"a": 4, "b": 4})
    imagefiles.text_as_jpg(tmp_path / "empty" / "x.jpg")
    index = scan(tmp_path)
    assert index.classes == ["a", "b"]
    assert any("no usable images" in p.reason for p in index.problems)


def test_scan_errors_are_plain(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        scan(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        scan(tmp_path / "empty")


def test_split_by_counts_is_stratified_disjoint_and_deterministic(class_folders):
    index = scan(class_folders)
    spec = SplitSpec(method="counts", train=5, val=2, test=3, seed=7)
    a, b = make_split(index, spec, "a"), make_split(index, spec, "b")
    assert a.subsets == b.subsets
    assert a.table() == {s: {c: n for c in "abc"} for s, n in (("train", 5), ("val", 2), ("test", 3))}
    files = [set(a.files(s)) for s in data.SUBSETS]
    assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    other = make_split(index, SplitSpec(method="counts", train=5, val=2, test=3, seed=8))
    assert other.subsets != a.subsets
    for subset in data.SUBSETS:  # labels follow the files' class folders
        for path, y in a.subsets[subset]:
            assert path.split("/")[0] == a.classes[y]


def test_split_by_fractions_and_balance(class_folders):
    index = scan(class_folders)
    split = make_split(index, SplitSpec(method="fractions", train=0.5, val=0.25, test=0.25, seed=0))
    assert split.table()["train"] == {"a": 15, "b": 10, "c": 5}
    assert sum(len(v) for v in split.subsets.values()) == 60
    balanced = make_split(index, SplitSpec(method="fractions", train=0.6, val=0.2, test=0.2, balance=True))
    assert balanced.table()["train"] == {"a": 6, "b": 6, "c": 6}
    assert balanced.table()["test"] == {"a": 2, "b": 2, "c": 2}


def test_split_asking_too_much_is_a_clear_error(class_folders):
    index = scan(class_folders)
    with pytest.raises(DataError, match=r"class 'c' has 10 usable images but the split asks for 20"):
        make_split(index, SplitSpec(method="counts", train=10, val=5, test=5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "fractions", "train": 0.8, "val": 0.2, "test": 0.2}, "must not exceed 1"),
        ({"method": "counts", "train": 0, "val": 1, "test": 1}, "at least 1"),
        ({"method": "counts", "train": 2.5, "val": 1, "test": 1}, "whole numbers"),
        ({"method": "fractions", "train": -0.1}, "negative"),
        ({"method": "shuffle"}, "method"),
    ],
)
def test_bad_split_specs(kwargs, message):
    with pytest.raises(DataError, match=message):
        SplitSpec(**kwargs)


def test_single_class_cannot_be_split(tmp_path):
    index = scan(make_class_folders(tmp_path, {"only": 5}))
    with pytest.raises(DataError, match="at least two classes"):
        make_split(index, SplitSpec())


def test_save_load_and_no_silent_overwrite(class_folders, workspace):
    split = make_split(scan(class_folders), SplitSpec(method="counts", train=4, val=2, test=2), "first")
    path = data.save_split(split)
    assert path.parent == workspace / "splits"
    loaded = data.load_split("first")
    assert loaded.subsets == split.subsets and loaded.spec == split.spec and loaded.classes == split.classes
    with pytest.raises(DataError, match="already exists"):
        data.save_split(split)
    assert data.list_splits() == ["first"]
    with pytest.raises(DataError, match="not allowed"):
        data.save_split(split, name="../escape")
    with pytest.raises(DataError, match="no saved split"):
        data.load_split("nope")


def test_damaged_split_file_is_a_clear_error(workspace):
    (workspace / "splits").mkdir()
    (workspace / "splits" / "broken.json").write_text('{"name": "broken"}')
    with pytest.raises(DataError, match="damaged"):
        data.load_split("broken")


def test_changed_folder_is_noticed(class_folders):
    split = make_split(scan(class_folders), SplitSpec(method="counts", train=4, val=2, test=2))
    assert split.changed() is None
    victim = class_folders / split.files("train")[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert "changed" in split.changed()
    victim.unlink()
    assert "missing" in split.changed()


def test_materialize_hard_links_into_seed_layout(class_folders, tmp_path):
    split = make_split(scan(class_folders), SplitSpec(method="counts", train=4, val=2, test=3))
    out = data.materialize(split, tmp_path / "out")
    for folder, n in (("train", 4), ("validation", 2), ("test", 3)):
        for c in ("a", "b", "c"):
            assert len(list((out / folder / c).iterdir())) == n
    first = split.files("train")[0]
    linked = out / "train" / first.split("/")[0] / first.split("/")[-1]
    assert os.stat(linked).st_ino == os.stat(class_folders / first).st_ino
    assert scan(out).layout == "pre_split"
    with pytest.raises(DataError, match="not empty"):
        data.materialize(split, out)


@pytest.mark.skipif(not CATSDOGS.is_dir(), reason="../shared/data/catsdogs not present")
def test_shared_catsdogs_as_it_is_and_flat(tmp_path):
    index = scan(CATSDOGS)
    assert index.layout == "class_folders"
    assert index.class_counts() == {"cats": 1500, "dogs": 1500}
    split = make_split(index, SplitSpec(method="counts", train=1000, val=250, test=250, seed=0))
    assert {s: len(v) for s, v in split.subsets.items()} == {"train": 2000, "val": 500, "test": 500}
    with pytest.raises(DataError, match="1500 usable images but the split asks for 2000"):
        make_split(index, SplitSpec(method="counts", train=1000, val=500, test=500))

    flat = tmp_path / "flat"
    flat.mkdir()
    for cls in ("cats", "dogs"):
        for f in (CATSDOGS / cls).iterdir():
            try:
                os.link(f, flat / f.name)
            except OSError:
                shutil.copy(f, flat / f.name)
    flat_index = scan(flat)
    assert flat_index.layout == "kaggle_flat"
    assert flat_index.class_counts() == {"cat": 1500, "dog": 1500}
    flat_split = make_split(flat_index, SplitSpec(method="fractions", train=0.5, val=0.25, test=0.25, seed=1))
    assert flat_split.table()["test"] == {"cat": 375, "dog": 375}


def test_images_in_formats_we_do_not_read_are_listed_not_ignored(class_folders, capsys):
    from core.cli import main
    from tests import imagefiles

    imagefiles.ftyp_file(class_folders / "a" / "IMG_0001.HEIC", b"heic")
    imagefiles.ftyp_file(class_folders / "b" / "nested" / "photo.avif", b"avif")
    imagefiles.svg(class_folders / "c" / "logo.svg")
    imagefiles.ftyp_file(class_folders / "c" / ".hidden.heic")  # hidden: still ignored
    imagefiles.eps_as(class_folders / "c" / "drawing.jpg")  # named like a JPEG, is PostScript
    index = scan(class_folders)
    reasons = {p.path: p.reason for p in index.problems}
    assert reasons == {
        "a/IMG_0001.HEIC": "not a supported image format (HEIC); convert to JPEG or PNG",
        "b/nested/photo.avif": "not a supported image format (AVIF); convert to JPEG or PNG",
        "c/logo.svg": "not a supported image format (SVG); convert to JPEG or PNG",
        "c/drawing.jpg": "not a supported image format (EPS); convert to JPEG or PNG",
    }
    assert index.ignored == 3  # .DS_Store, notes.txt, .hidden.heic
    assert index.class_counts() == {"a": 30, "b": 20, "c": 10}

    assert main(["data", "scan", str(class_folders)]) == 0
    out = capsys.readouterr().out
    assert "left out: 4" in out
    assert "a/IMG_0001.HEIC: not a supported image format (HEIC); convert to JPEG or PNG" in out


def test_unsupported_formats_in_flat_and_pre_split_layouts(tmp_path):
    from tests import imagefiles

    flat = tmp_path / "flat"
    for i in range(3):
        imagefiles.noisy(flat / f"cat.{i}.jpg", seed=i)
        imagefiles.noisy(flat / f"dog.{i}.jpg", seed=10 + i)
    imagefiles.ftyp_file(flat / "cat.9.heic")
    (flat / "labels.json").write_text("{}")
    index = scan(flat)
    assert [(p.path, p.reason) for p in index.problems] == [
        ("cat.9.heic", "not a supported image format (HEIC); convert to JPEG or PNG")
    ]
    assert index.ignored == 1

    for subset in ("train", "test"):
        make_class_folders(tmp_path / "given" / subset, {"x": 3, "y": 3})
    imagefiles.ftyp_file(tmp_path / "given" / "train" / "x" / "shot.heif", b"mif1")
    index = scan(tmp_path / "given")
    assert index.layout == "pre_split"
    assert [p.path for p in index.problems] == ["train/x/shot.heif"]
    assert "(HEIF)" in index.problems[0].reason
