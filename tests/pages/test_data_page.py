"""AppTest for the Data page: demo counts, split editor, save, bad folders, zip upload, copies."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import data
from tests.conftest import REPO, zipped_class_folders
from tests.pages.conftest import add_zip

PAGE = str(REPO / "pages" / "data.py")


@pytest.fixture
def app(workspace) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _split_table(at: AppTest):
    tables = [d.value for d in at.dataframe if "total" in d.value.columns]
    assert len(tables) == 1
    return tables[0]


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [s.value for s in at.success] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


def test_demo_shows_counts_samples_and_split_table(app):
    from core.demo import DEMO_CLASSES

    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Classes"] == str(len(DEMO_CLASSES))
    table = _split_table(app)
    assert list(table.columns) == [*sorted(DEMO_CLASSES), "total"]
    total_images = int(metrics["Images"].replace(",", ""))
    assert table.loc["total", "total"] == total_images  # 0.6 + 0.2 + 0.2 uses every image
    assert len(app.get("image")) == len(DEMO_CLASSES)  # one row of samples per class
    assert len(app.get("plotly_chart")) == 1


def test_edit_counts_and_save_split(app, workspace):
    app.radio(key="split_method").set_value("counts").run()
    app.number_input(key="train_count").set_value(50)
    app.number_input(key="val_count").set_value(20)
    app.number_input(key="test_count").set_value(10).run()
    table = _split_table(app)
    assert list(table.loc["train"])[:-1] == [50] * (len(table.columns) - 1)
    assert list(table.loc["test"])[:-1] == [10] * (len(table.columns) - 1)
    app.text_input(key="split_name").set_value("mine")
    app.button(key="save_split").click().run()
    assert not app.exception
    assert "Saved split 'mine'" in _texts(app)
    saved = data.load_split("mine")
    assert {s: len(v) for s, v in saved.subsets.items()} == {
        "train": 50 * len(saved.classes),
        "val": 20 * len(saved.classes),
        "test": 10 * len(saved.classes),
    }
    # Saving again under the same name keeps the first one and says so.
    app.button(key="save_split").click().run()
    assert "already exists" in _texts(app)


def test_asking_too_much_is_a_message_not_a_traceback(app):
    app.radio(key="split_method").set_value("counts").run()
    app.number_input(key="train_count").set_value(app.number_input(key="train_count").max).run()
    app.number_input(key="val_count").set_value(app.number_input(key="val_count").max).run()
    assert not app.exception
    assert "usable images but the split asks for" in _texts(app)


def test_folder_with_problems_and_missing_folder(app, messy_folder, tmp_path):
    app.radio(key="source").set_value("Folder on this computer").run()
    app.text_input(key="folder_path").set_value(str(tmp_path / "nope")).run()
    assert not app.exception and "is not a folder" in _texts(app)
    app.text_input(key="folder_path").set_value(str(messy_folder)).run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Left out"] == "5" and metrics["Classes"] == "2"
    assert any("files left out" in e.label for e in app.expander)


def test_zip_upload_adds_a_dataset(app, tmp_path, workspace):
    add_zip(app, "zoo.zip", zipped_class_folders(tmp_path / "zoo", {"ants": 5, "bees": 5}))
    assert not app.exception, app.exception
    assert "Added 'zoo'" in _texts(app)
    assert sorted(p.name for p in (workspace / "datasets" / "zoo").iterdir()) == ["ants", "bees"]
    assert {m.label: m.value for m in app.metric}["Images"] == "10"


def test_bad_zip_is_a_clear_message(app, workspace):
    app.radio(key="source").set_value("Upload a zip").run()
    app.file_uploader(key="zip_upload").upload("bad.zip", b"this is not a zip", "application/zip").run()
    app.button(key="zip_add").click().run()
    assert not app.exception
    assert "not a valid zip" in _texts(app)


def test_download_dogs_vs_cats_from_a_local_mirror(app, workspace, tmp_path, monkeypatch):
    from core import download
    from tests.conftest import RangeServer, pet_zip

    server = RangeServer(pet_zip(tmp_path))
    monkeypatch.setenv(download.SOURCES["dogs-vs-cats"].url_env, server.url)
    try:
        app.radio(key="source").set_value("Download Dogs vs. Cats").run()
        assert not app.metric  # nothing is fetched before the click
        app.button(key="download_go").click().run()
    finally:
        server.close()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Images"] == "12" and metrics["Classes"] == "2" and metrics["Left out"] == "2"
    app.radio(key="source").set_value("Saved dataset").run()
    assert not app.exception, app.exception
    assert {m.label: m.value for m in app.metric}["Classes"] == "2"  # Cat and Dog, not PetImages


def test_download_offline_is_a_message(app, monkeypatch):
    from core import download

    monkeypatch.setenv(download.SOURCES["dogs-vs-cats"].url_env, "http://127.0.0.1:9/pets.zip")
    app.radio(key="source").set_value("Download Dogs vs. Cats").run()
    app.button(key="download_go").click().run()
    assert not app.exception, app.exception
    assert any("needs internet" in e.value for e in app.error)


def test_copies_report_shows_leaks_side_by_side_and_saving_leaves_later_copies_out(app, tmp_path, workspace):
    from tests.test_dupes import folder_with_copies

    root = folder_with_copies(tmp_path / "pets")
    app.radio(key="source").set_value("Folder on this computer").run()
    app.text_input(key="folder_path").set_value(str(root)).run()
    app.radio(key="split_method").set_value("given").run()
    samples = len(app.get("image"))
    assert samples == 2  # the sample rows of the two classes: nothing is checked before the click
    app.button(key="dupes_go").click().run()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Pictures checked"] == "23"
    assert metrics["Copies of training pictures"] == "3"
    assert metrics["Copies with two classes"] == "1"
    texts = _texts(app)
    assert "3 validation or test pictures are copies of pictures used earlier" in texts
    assert "**Validation** `val/cat/resized.jpg` and **training** `train/cat/original.jpg`" in texts
    assert "one of the two is probably filed in the wrong class" in texts
    # Each leak is a pair of pictures with captions, then the groups inside training and test.
    shown = app.get("image")[samples:]
    pairs = [img.proto for img in shown]
    assert len(pairs) == 3 + 2
    assert all(len(p.imgs) >= 2 for p in pairs)
    captions = [i.caption for p in pairs for i in p.imgs]
    assert (
        "validation · cat · val/cat/resized.jpg" in captions
        and "training · cat · train/cat/original.jpg" in captions
    )
    table = next(d.value for d in app.dataframe if "copy of" in d.value.columns)
    assert len(table) == 3 + 2  # 3 leaks, 1 copy inside training, 1 inside test

    app.checkbox(key="dupes_drop").check().run()
    assert not app.exception, app.exception
    split_counts = _split_table(app)
    assert split_counts.loc["validation", "total"] == 6  # the table above shows the split as made
    app.text_input(key="split_name").set_value("clean")
    app.button(key="save_split").click().run()
    saved = data.load_split("clean")
    assert len(saved.files("train")) == 10 and len(saved.files("val")) == 4 and len(saved.files("test")) == 5
    assert "val/cat/resized.jpg" not in saved.files("val") and "test/dog/twin_a.jpg" in saved.files("test")


def test_a_cleaned_split_shows_what_it_changed(workspace, class_folders):
    from core.data import cleaning

    split = data.make_split(data.scan(class_folders), data.SplitSpec("counts", 6, 2, 2), name="orig")
    data.save_split(split, workspace=workspace)
    relabelled, dropped = split.files("test")[0], split.files("val")[0]
    marks = [cleaning.Mark(relabelled, "relabel", "b"), cleaning.Mark(dropped, "drop")]
    cleaning.save_cleaned("orig", marks, "orig-clean-1", workspace)
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["source"] = "Folder on this computer"  # no demo needed
    at.session_state["folder_path"] = str(class_folders)
    at.run()
    assert not at.exception, at.exception
    assert any(e.label == "Cleaned split versions (1)" for e in at.expander)
    picker = at.selectbox(key="data_cleaned")
    assert picker.options == ["orig-clean-1 (cleaned from orig: 1 relabelled, 1 left out)"]
    changes = next(d.value for d in at.dataframe if "change" in d.value.columns)
    assert changes.to_dict("records") == [
        {"picture": relabelled, "set": "test", "labelled": "a", "change": "relabel as b"},
        {"picture": dropped, "set": "validation", "labelled": "a", "change": "leave out"},
    ]
    assert "Made from split 'orig'" in _texts(at)


def mark_keys(app) -> list[str]:
    return [str(s.key) for s in app.selectbox if str(s.key).startswith("dupes_mark_")]


def test_copies_of_a_saved_split_can_be_marked_for_a_cleaned_version(app, tmp_path, workspace):
    from core import marks as pending_marks
    from tests.test_dupes import folder_with_copies

    root = folder_with_copies(tmp_path / "pets")
    app.radio(key="source").set_value("Folder on this computer").run()
    app.text_input(key="folder_path").set_value(str(root)).run()
    app.radio(key="split_method").set_value("given").run()
    app.button(key="dupes_go").click().run()
    assert "Save the split to mark copies" in _texts(app)  # not saved yet: nothing to mark in
    assert not mark_keys(app)

    app.text_input(key="split_name").set_value("pets")
    app.button(key="save_split").click().run()
    assert not app.exception, app.exception
    assert "Save the split to mark copies" not in _texts(app)
    assert len(mark_keys(app)) >= 2 * 3  # both pictures of every leak shown
    app.selectbox(key=next(k for k in mark_keys(app) if k.endswith("_val/cat/resized.jpg"))).set_value(
        "Leave out"
    ).run()
    assert not app.exception, app.exception
    assert pending_marks.pending("pets")["val/cat/resized.jpg"].action == "drop"
    assert any(b.key == "marks_save" for b in app.button)  # saving them is Evaluate's panel, tested there
