"""core.data.cleaning: marks applied to a new version of a split; the original never changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import data
from core.data import cleaning
from core.data.cleaning import Mark
from tests.conftest import make_class_folders


@pytest.fixture
def pets(tmp_path, workspace) -> data.Split:
    """Split 'pets': cat/dog/fox, 10 pictures each, 6/2/2 per class."""
    root = make_class_folders(tmp_path / "pets", {"cat": 10, "dog": 10, "fox": 10}, size=(16, 16))
    split = data.make_split(data.scan(root), data.SplitSpec("counts", 6, 2, 2), name="pets")
    data.save_split(split, workspace=workspace)
    return split


def test_cleaned_version_has_the_right_counts_labels_and_record(pets, workspace):
    original = data.split_path("pets", workspace).read_bytes()
    test_cat, val_dog = pets.files("test")[0], pets.files("val")[2]
    dropped = pets.files("train")[:2]
    marks = [
        Mark(test_cat, "relabel", "dog"),
        Mark(str(pets.dataset_root) + "/" + val_dog, "relabel", "fox"),  # absolute paths are made relative
        *(Mark(f, "drop") for f in dropped),
    ]
    path = cleaning.save_cleaned("pets", marks, "pets-clean-1", workspace)

    assert data.split_path("pets", workspace).read_bytes() == original  # byte for byte untouched
    new = data.load_split("pets-clean-1", workspace)
    assert path == data.split_path("pets-clean-1", workspace)
    assert new.dataset_root == pets.dataset_root and new.classes == pets.classes and new.spec == pets.spec
    assert new.table()["train"] == {"cat": 4, "dog": 6, "fox": 6}  # both dropped files were cats
    assert new.table()["val"] == {"cat": 2, "dog": 1, "fox": 3}
    assert new.table()["test"] == {"cat": 1, "dog": 3, "fox": 2}
    labels = {p: new.classes[y] for items in new.subsets.values() for p, y in items}
    assert labels[test_cat] == "dog" and test_cat in new.files("test")  # same subset, new label
    assert labels[val_dog] == "fox" and val_dog in new.files("val")
    assert not set(dropped) & set(new.all_files())
    assert len(new.all_files()) == len(pets.all_files()) - 2
    assert new.changed() is None  # its own fingerprint: usable for training at once

    saved = json.loads(path.read_text())
    assert saved["derived_from"] == "pets" and saved["cleaned"] > 0
    assert saved["changes"] == [
        {"file": test_cat, "subset": "test", "from": "cat", "to": "dog"},
        {"file": val_dog, "subset": "val", "from": "dog", "to": "fox"},
        *({"file": f, "subset": "train", "from": "cat", "dropped": True} for f in dropped),
    ]
    record = cleaning.read_record("pets-clean-1", workspace)
    assert (record.derived_from, record.relabelled, record.dropped) == ("pets", 2, 2)
    assert record.lines()[0] == f"{test_cat} (test): cat → dog"
    assert record.lines()[2] == f"{dropped[0]} (train): left out"
    assert cleaning.version_label("pets-clean-1", workspace) == (
        "pets-clean-1 (cleaned from pets: 2 relabelled, 2 left out)"
    )
    assert cleaning.read_record("pets", workspace) is None
    assert cleaning.version_label("pets", workspace) == "pets"


def test_an_existing_name_is_never_overwritten(pets, workspace):
    mark = [Mark(pets.files("test")[0], "drop")]
    cleaning.save_cleaned("pets", mark, "v2", workspace)
    before = {n: data.split_path(n, workspace).read_bytes() for n in ("pets", "v2")}
    for name in ("v2", "pets"):
        with pytest.raises(data.DataError, match=f"a split named '{name}' already exists"):
            cleaning.save_cleaned("pets", [Mark(pets.files("test")[1], "drop")], name, workspace)
    assert {n: data.split_path(n, workspace).read_bytes() for n in ("pets", "v2")} == before
    with pytest.raises(data.DataError, match="not allowed"):
        cleaning.save_cleaned("pets", mark, "../escape", workspace)


@pytest.mark.parametrize(
    "marks, message",
    [
        (lambda s: [Mark(s.files("test")[0], "relabel", "horse")], "has no class 'horse'"),
        (
            lambda s: [Mark("cat/not_there.png", "drop")],
            "'cat/not_there.png' is not a picture of split 'pets'",
        ),
        (lambda s: [Mark("../../etc/passwd", "relabel", "dog")], "is not a picture of split 'pets'"),
        (lambda s: [Mark(s.files("test")[0], "relabel", "cat")], "is already labelled 'cat'"),
        (
            lambda s: [Mark(s.files("test")[0], "drop"), Mark(s.files("test")[0], "relabel", "dog")],
            "marked twice",
        ),
        (lambda s: [], "no marks"),
        (lambda s: [Mark(f, "drop") for f in s.files("train")], "empty the training set"),
    ],
)
def test_marks_that_cannot_apply_are_refused_and_nothing_is_written(pets, workspace, marks, message):
    with pytest.raises(data.DataError, match=message):
        cleaning.save_cleaned("pets", marks(pets), "new", workspace)
    assert data.list_splits(workspace) == ["pets"]


def test_mark_needs_a_known_action_and_a_class():
    with pytest.raises(data.DataError, match="'relabel' or 'drop'"):
        Mark("a.png", "delete")
    with pytest.raises(data.DataError, match="which class"):
        Mark("a.png", "relabel")


def test_a_split_whose_files_changed_is_not_cleaned(pets, workspace):
    (Path(pets.dataset_root) / pets.files("val")[0]).unlink()
    with pytest.raises(data.DataError, match="files of this split are missing"):
        cleaning.save_cleaned("pets", [Mark(pets.files("test")[0], "drop")], "new", workspace)
    with pytest.raises(data.DataError, match="no saved split named 'nope'"):
        cleaning.save_cleaned("nope", [Mark("x", "drop")], "new", workspace)


def test_default_names_count_up_from_the_original(pets, workspace):
    assert cleaning.default_name("pets", workspace) == "pets-clean-1"
    cleaning.save_cleaned("pets", [Mark(pets.files("test")[0], "drop")], "pets-clean-1", workspace)
    assert cleaning.default_name("pets", workspace) == "pets-clean-2"
    assert cleaning.default_name("pets-clean-1", workspace) == "pets-clean-2"  # not pets-clean-1-clean-1
