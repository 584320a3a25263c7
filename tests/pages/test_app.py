"""AppTest for dashboard/app.py: the address policy, typed paths under data roots, and a read-only
or full workspace giving one message per action instead of a traceback."""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

import pytest
from streamlit import config

from core import access, data, demo
from tests.conftest import make_class_folders, zipped_class_folders
from tests.pages.conftest import add_zip, open_page


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [e.value for e in at.error] + [s.value for s in at.success] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def served_on(monkeypatch):
    """Pretend the server was started on another address (restored afterwards)."""
    before = config.get_option("server.address")

    def serve(address: str | None) -> None:
        config.set_option("server.address", address)

    yield serve
    config.set_option("server.address", before)


@pytest.mark.parametrize("address", [None, "0.0.0.0", "192.168.1.20"])
def test_non_loopback_server_refuses_to_serve(workspace, served_on, monkeypatch, address):
    monkeypatch.delenv(access.ALLOW_REMOTE_VAR, raising=False)
    served_on(address)
    at = open_page("home.py")
    assert not at.exception, at.exception
    assert any("remote use is off" in e.value for e in at.error)
    assert not at.title  # no page ran


def test_remote_use_allowed_serves_but_typed_paths_stay_under_data_roots(
    workspace, served_on, monkeypatch, tmp_path
):
    allowed = make_class_folders(tmp_path / "roots" / "pets", {"cats": 6, "dogs": 6})
    monkeypatch.setenv(access.ALLOW_REMOTE_VAR, "1")
    served_on("0.0.0.0")
    monkeypatch.delenv(access.DATA_ROOTS_VAR, raising=False)
    at = open_page("data.py")
    assert not at.exception, at.exception
    at.radio(key="source").set_value("Folder on this computer").run()
    at.text_input(key="folder_path").set_value("/").run()
    assert any(access.DATA_ROOTS_VAR in e.value for e in at.error)  # no roots: no typed paths at all
    assert not at.metric  # nothing was scanned

    monkeypatch.setenv(access.DATA_ROOTS_VAR, str(tmp_path / "roots"))
    at.text_input(key="folder_path").set_value("/etc").run()
    assert not at.exception, at.exception
    assert any("outside the folders this server may read" in e.value for e in at.error)
    assert not at.metric
    at.text_input(key="folder_path").set_value(str(allowed)).run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Images"] == "12"


def test_evaluate_and_train_path_boxes_follow_the_data_roots(trained_run, served_on, monkeypatch, tmp_path):
    monkeypatch.setenv(access.ALLOW_REMOTE_VAR, "1")
    monkeypatch.setenv(access.DATA_ROOTS_VAR, str(tmp_path / "roots"))
    served_on("0.0.0.0")
    at = open_page("evaluate.py")
    at.radio(key="predict_source").set_value("A folder on this computer").run()
    at.text_input(key="predict_folder").set_value("/usr").run()
    assert not at.exception, at.exception
    assert any("outside the folders this server may read" in e.value for e in at.error)

    at = open_page("train.py")
    at.radio(key="train_mode").set_value("features").run()
    at.radio(key="train_weights_source").set_value("file").run()
    at.text_input(key="train_weights_path").set_value("/etc/passwd").run()
    assert not at.exception, at.exception
    assert any("outside the folders this server may read" in e.value for e in at.error)
    assert "train_launch" not in [b.key for b in at.button]  # never falls back to random weights


@pytest.fixture
def read_only(monkeypatch):
    """Make every write under a folder fail as on a read-only disk (tests run as root, where
    chmod does not stop writes)."""

    def arm(root: Path, err: int = errno.EROFS) -> None:
        root = str(root.resolve())

        def guard(path) -> None:
            p = os.path.abspath(os.fsdecode(path))
            if p == root or p.startswith(root + os.sep):
                raise OSError(err, os.strerror(err), p)

        real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
        real_replace, real_rename = os.replace, os.rename

        def open_(file, mode="r", *a, **k):
            if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+"):
                guard(file)
            return real_open(file, mode, *a, **k)

        def os_open(path, flags, *a, **k):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                guard(path)
            return real_os_open(path, flags, *a, **k)

        def mkdir(path, *a, **k):
            guard(path)
            return real_mkdir(path, *a, **k)

        def replace(src, dst, *a, **k):
            guard(dst)
            return real_replace(src, dst, *a, **k)

        def rename(src, dst, *a, **k):
            guard(dst)
            return real_rename(src, dst, *a, **k)

        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)
        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "rename", rename)

    return arm


@pytest.mark.parametrize("err, words", [(errno.EROFS, "read-only"), (errno.ENOSPC, "disk is full")])
def test_data_page_writes_on_a_read_only_or_full_workspace_are_messages(
    workspace, read_only, tmp_path, err, words
):
    demo.ensure_demo(workspace)  # made while the disk could still be written
    at = open_page("data.py")
    assert not at.exception, at.exception
    read_only(workspace, err)
    before = sorted(p.relative_to(workspace) for p in workspace.rglob("*"))

    at.button(key="save_split").click().run()
    assert not at.exception, at.exception
    assert any("Could not save the split" in e.value and words in e.value for e in at.error)

    at.selectbox(key="prep_size").set_value(128)
    at.button(key="prep_go").click().run()
    assert not at.exception, at.exception
    assert any("Could not store the decoded images" in e.value for e in at.error)

    add_zip(at, "zoo.zip", zipped_class_folders(tmp_path / "zoo", {"ants": 3, "bees": 3}))
    assert not at.exception, at.exception
    assert any("Could not add the dataset" in e.value for e in at.error)
    assert sorted(p.relative_to(workspace) for p in workspace.rglob("*")) == before  # nothing changed


def test_demo_on_a_read_only_workspace_is_a_message(workspace, read_only):
    read_only(workspace)
    at = open_page("data.py")
    assert not at.exception, at.exception
    assert any("Could not make the demo dataset" in e.value and "read-only" in e.value for e in at.error)


def test_augment_save_and_train_start_on_a_read_only_workspace_are_messages(workspace, read_only):
    root = demo.generate(workspace / "datasets" / "shapes", per_class=12, size=40)
    data.save_split(data.make_split(data.scan(root), data.SplitSpec("counts", 6, 3, 3)), name="shapes")
    demo.ensure_demo(workspace)
    at = open_page("augment.py")
    train = open_page("train.py")
    read_only(workspace)

    at.text_input(key="aug_A_save_name").set_value("mine").run()
    at.button(key="aug_A_save").click().run()
    assert not at.exception, at.exception
    assert any("Could not save the settings" in e.value for e in at.error)

    train.button(key="train_launch").click().run()
    assert not train.exception, train.exception
    assert any("Could not start the run" in e.value for e in train.error)
    assert not list((workspace / "runs").iterdir())


def test_error_details_are_hidden_unless_the_operator_asked_for_them():
    from dashboard import ui

    before = (
        config.get_option("client.showErrorDetails"),
        config.get_where_defined("client.showErrorDetails"),
    )
    try:
        config.set_option("client.showErrorDetails", "full", where_defined="<default>")  # Streamlit's own
        ui.apply_safe_client_settings()
        assert config.get_option("client.showErrorDetails") == "none"
        config.set_option("client.showErrorDetails", "full", where_defined="command-line")
        ui.apply_safe_client_settings()
        assert config.get_option("client.showErrorDetails") == "full"
    finally:
        config.set_option("client.showErrorDetails", before[0], where_defined=before[1])


def test_the_server_asks_for_gpu_memory_growth_before_tensorflow_starts(workspace, monkeypatch):
    from core import devices

    monkeypatch.setitem(devices._state, "called", False)
    monkeypatch.delenv(devices.GROWTH_ENV, raising=False)
    at = open_page("home.py")
    assert not at.exception, at.exception
    assert devices.tensorflow_configured()
    assert os.environ[devices.GROWTH_ENV] == "true"
