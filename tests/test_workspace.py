"""core.workspace: folders, the one rule for saved names, and leftovers of killed processes cleared when a workspace is opened."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core import workspace
from core.errors import DataError
from core.fileio import atomic_write_text
from core.workspace import check_name


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_dead_processes_go_and_live_ones_stay(tmp_path):
    root = tmp_path / "ws"
    for name in workspace.SUBDIRS:
        (root / name).mkdir(parents=True)
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = root / "runs" / "20261203-run"
        run.mkdir()
        (run / "config.json").write_text("{}")
        leftovers = [
            run / f".tmp-{dead}-best.keras",  # model save killed mid-write
            root / "features" / f".tmp-{dead}-abc.npy",
            root / "cache" / f".tmp-{dead}-key-x1y2",  # half-built cache entry (a folder)
            root / "datasets" / f".tmp-{dead}-pets-q9",  # half-extracted zip
            root / "runs" / ".deleted-20261202-old",  # delete killed between rename and removal
        ]
        kept = [
            run / f".tmp-{live.pid}-last.keras",  # a live writer's
            root / "cache" / f".tmp-{os.getpid()}-mine",  # this process's own
            run / "best.keras",
            root / "datasets" / "pets",
            root / "datasets" / ".tmp-notapid-x",
        ]
        for path in leftovers + kept:
            if path.suffix in (".keras", ".npy"):
                path.write_bytes(b"x")
            else:
                (path / "sub").mkdir(parents=True)
                (path / "sub" / "f.jpg").write_bytes(b"x")
        removed = workspace.clean_leftovers(root)
        assert sorted(removed) == sorted(leftovers)
        assert not any(p.exists() for p in leftovers)
        assert all(p.exists() for p in kept)
    finally:
        live.kill()
        live.wait()


def test_opening_a_workspace_clears_it_once(tmp_path):
    root = tmp_path / "ws2"
    (root / "features").mkdir(parents=True)
    stale = root / "features" / f".tmp-{_dead_pid()}-f.npy"
    stale.write_bytes(b"x")
    assert workspace.workspace_dir(root) == root.resolve()
    assert not stale.exists()


def test_atomic_writes_use_names_the_cleaner_recognises(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write_text(tmp_path / "a.json", "{}")
    assert seen and seen[0].startswith(f".tmp-{os.getpid()}-a.json")


def test_pid_alive():
    assert workspace.pid_alive(os.getpid())
    assert not workspace.pid_alive(_dead_pid())
    assert not workspace.pid_alive(None)


@pytest.mark.parametrize("name", ["", "a/b", "../x", ".hidden", "_under", "-dash", "x" * 65, "é"])
def test_check_name_refuses_what_cannot_be_a_file_name(name):
    with pytest.raises(DataError, match="split name .* is not allowed"):
        check_name(name, "split name")


def test_check_name_trims_spaces():
    assert check_name("  my split v1.2 ", "split name") == "my split v1.2"
    assert check_name("x" * 64) == "x" * 64
