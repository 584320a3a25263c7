"""python -m core: data scan/split/materialize/list and demo, in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO, make_class_folders


def run_cli(*args: str, workspace) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONVNET_WORKSPACE": str(workspace)}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_scan_split_materialize_list(tmp_path, workspace, messy_folder):
    scan = run_cli("data", "scan", str(messy_folder), workspace=workspace)
    assert scan.returncode == 0, scan.stderr
    assert "layout: class_folders" in scan.stdout and "left out: 5" in scan.stdout
    assert "cats" in scan.stdout and "tiny.png: too small" in scan.stdout

    split = run_cli(
        "data",
        "split",
        str(messy_folder),
        "--train",
        "3",
        "--val",
        "1",
        "--test",
        "2",
        "--seed",
        "0",
        "--name",
        "s",
        workspace=workspace,
    )
    assert split.returncode == 0, split.stderr
    saved = json.loads((workspace / "splits" / "s.json").read_text())
    assert saved["spec"]["method"] == "counts"
    assert {k: len(v) for k, v in saved["subsets"].items()} == {"train": 6, "val": 2, "test": 4}

    again = run_cli(
        "data",
        "split",
        str(messy_folder),
        "--train",
        "3",
        "--val",
        "1",
        "--test",
        "2",
        "--name",
        "s",
        workspace=workspace,
    )
    assert (
        again.returncode == 2
        and again.stderr.strip() == "error: a split named 's' already exists; choose another name"
    )

    out = tmp_path / "laid-out"
    mat = run_cli("data", "materialize", "s", str(out), workspace=workspace)
    assert mat.returncode == 0, mat.stderr
    assert len(list((out / "train" / "cats").iterdir())) == 3
    assert len(list((out / "validation" / "dogs").iterdir())) == 1

    listing = run_cli("data", "list", workspace=workspace)
    assert listing.stdout.startswith("s: ") and "train 6" in listing.stdout


def test_fraction_split_and_bad_input_exit_codes(tmp_path, workspace):
    root = make_class_folders(tmp_path / "d", {"x": 10, "y": 10})
    ok = run_cli(
        "data",
        "split",
        str(root),
        "--train",
        "0.5",
        "--val",
        "0.3",
        "--test",
        "0.2",
        "--name",
        "f",
        workspace=workspace,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads((workspace / "splits" / "f.json").read_text())["spec"]["method"] == "fractions"
    for args, message in [
        (("data", "scan", str(tmp_path / "missing")), "is not a folder"),
        (
            ("data", "split", str(root), "--train", "8", "--val", "2", "--test", "2", "--name", "big"),
            "class 'x' has 10 usable images but the split asks for 12",
        ),
        (("data", "materialize", "nope", str(tmp_path / "o")), "no saved split named 'nope'"),
        (("data", "split", str(root), "--name", "../x"), "not allowed"),
    ]:
        result = run_cli(*args, workspace=workspace)
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_demo_command_generates_once(workspace):
    first = run_cli("demo", workspace=workspace)
    assert first.returncode == 0, first.stderr
    folder = workspace / "datasets" / "demo"
    assert first.stdout.strip() == str(folder)
    assert (folder / "boxes.json").exists()
    stamp = (folder / "boxes.json").stat().st_mtime_ns
    assert run_cli("demo", workspace=workspace).returncode == 0
    assert (folder / "boxes.json").stat().st_mtime_ns == stamp
