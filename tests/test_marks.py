"""core.marks: pending marks per split on disk, until saved as a cleaned version."""

from __future__ import annotations

import pytest

from core import data, marks
from core.data import cleaning
from core.data.cleaning import Mark
from tests.conftest import make_class_folders


@pytest.fixture
def split(tmp_path, workspace) -> data.Split:
    root = make_class_folders(tmp_path / "d", {"a": 6, "b": 6}, size=(16, 16))
    s = data.make_split(data.scan(root), data.SplitSpec("counts", 4, 1, 1), name="s")
    data.save_split(s, workspace=workspace)
    return s


def test_marks_are_kept_on_disk_changed_and_forgotten(split, workspace):
    first, second = split.files("test")
    marks.set_mark(split, Mark(first, "relabel", "b"), workspace)
    marks.set_mark(split, Mark(f"{split.dataset_root}/{second}", "drop"), workspace)
    assert marks.marks_path("s", workspace).is_file()
    assert marks.pending("s", workspace) == {first: Mark(first, "relabel", "b"), second: Mark(second, "drop")}
    marks.set_mark(split, Mark(first, "drop"), workspace)  # a new mark replaces the old one
    assert marks.pending("s", workspace)[first] == Mark(first, "drop")
    assert [c["file"] for c in marks.changes("s", workspace)] == [first, second]
    marks.keep("s", first, workspace)
    assert list(marks.pending("s", workspace)) == [second]
    marks.clear("s", workspace)
    assert marks.pending("s", workspace) == {}
    assert data.list_splits(workspace) == ["s"]  # the marks file is not a split


def test_marks_that_cannot_apply_are_refused_at_once(split, workspace):
    with pytest.raises(data.DataError, match="not a picture of split 's'"):
        marks.set_mark(split, Mark("a/elsewhere.png", "drop"), workspace)
    with pytest.raises(data.DataError, match="no class 'c'"):
        marks.set_mark(split, Mark(split.files("test")[0], "relabel", "c"), workspace)
    assert marks.pending("s", workspace) == {}


def test_save_makes_the_version_and_forgets_the_saved_marks(split, workspace):
    first, second = split.files("test")
    marks.set_mark(split, Mark(first, "relabel", "b"), workspace)
    marks.set_mark(split, Mark(second, "drop"), workspace)
    path = marks.save("s", "s-clean-1", workspace)
    assert path.stem == "s-clean-1" and marks.pending("s", workspace) == {}
    assert cleaning.read_record("s-clean-1", workspace).summary() == "1 relabelled, 1 left out"
    marks.set_mark(split, Mark(first, "drop"), workspace)
    with pytest.raises(data.DataError, match="already exists"):
        marks.save("s", "s-clean-1", workspace)
    assert list(marks.pending("s", workspace)) == [first]  # a refused save loses no mark


def test_a_damaged_marks_file_reads_as_no_marks(split, workspace):
    marks.marks_path("s", workspace).write_text("{not json")
    assert marks.pending("s", workspace) == {}
    marks.set_mark(split, Mark(split.files("test")[0], "drop"), workspace)
    assert len(marks.pending("s", workspace)) == 1
