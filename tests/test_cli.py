"""python -m core: data scan/split/materialize/list, demo, and bad input of every command, in a real subprocess."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_class_folders, run_cli


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


def _bad_input_cases():
    """(id, args, what stderr must say); {root}, {tmp} and {cfg:...} are filled in by the test."""
    split = ("data", "split", "{root}", "--name")
    return [
        ("split-train-inf", (*split, "a", "--train", "inf"), "--train: must be a finite number"),
        ("split-train-nan", (*split, "a", "--train", "nan"), "--train: must be a finite number"),
        ("split-val-negative", (*split, "a", "--val", "-1"), "--val: must be a finite number"),
        ("split-test-not-a-number", (*split, "a", "--test", "half"), "'half' is not a number"),
        ("split-seed-negative", (*split, "a", "--seed", "-1"), "--seed: must be 0 or more"),
        # The name is checked before the folder is scanned: the folder here does not even exist.
        ("split-bad-name-first", ("data", "split", "{tmp}/nowhere", "--name", "../x"), "is not allowed"),
        ("split-taken-name-first", ("data", "split", "{tmp}/nowhere", "--name", "s"), "already exists"),
        ("split-missing-name", ("data", "split", "{root}"), "the following arguments are required: --name"),
        ("scan-missing-folder", ("data", "scan", "{tmp}/nowhere"), "is not a folder"),
        ("scan-show-negative", ("data", "scan", "{root}", "--show", "-2"), "--show: must be 0 or more"),
        (
            "materialize-unknown-split",
            ("data", "materialize", "nope", "{tmp}/o"),
            "no saved split named 'nope'",
        ),
        (
            "config-null",
            ("train", "--config", "{cfg:null}"),
            "expected a JSON object of training settings, found null",
        ),
        ("config-number", ("train", "--config", "{cfg:42}"), "found a number"),
        ("config-list", ("train", "--config", "{cfg:[1, 2]}"), "found a list"),
        (
            "config-invalid-json",
            ("train", "--config", "{cfg:{split: s}}"),
            "not valid JSON (line 1, column 2",
        ),
        ("config-missing-file", ("train", "--config", "{tmp}/nowhere.json"), "No such file or directory"),
        (
            "config-bad-field",
            ("train", "--config", '{cfg:{"epochs": "ten"}}'),
            "epochs: must be a whole number",
        ),
        ("train-split-typo", ("train", "--split", "typo", "--model", "small"), "no saved split named 'typo'"),
        ("train-epochs-not-int", ("train", "--split", "s", "--epochs", "ten"), "--epochs: invalid int value"),
        ("train-unknown-mode", ("train", "--split", "s", "--mode", "magic"), "--mode: invalid choice"),
        (
            "finetune-unknown-run",
            ("train", "--mode", "finetune", "--from-run", "typo"),
            "no run with id 'typo'",
        ),
        (
            "workers-without-out",
            ("train", "--split", "s", "--workers", "2"),
            "--out DIR is needed with --workers",
        ),
        (
            "features-imagenet-offline",
            ("train", "--split", "s", "--mode", "features", "--model", "vgg16", "--weights", "imagenet"),
            "the ImageNet weights for VGG16 (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5) are not on this "
            "machine and cannot be downloaded (no internet); give a weights file",
        ),
        (
            "predict-unknown-run",
            ("predict", "--run", "typo", "-f", "{root}/x/x_000.png"),
            "no run with id 'typo'",
        ),
        (
            "predict-missing-file",
            ("predict", "--run", "{run}", "-f", "{tmp}/nowhere.png"),
            "nowhere.png is not a file",
        ),
        (
            "predict-missing-folder",
            ("predict", "--run", "{run}", "-d", "{tmp}/nowhere"),
            "nowhere is not a folder",
        ),
        ("predict-empty-folder", ("predict", "--run", "{run}", "-d", "{tmp}/empty"), "no images in"),
        ("runs-show-unknown", ("runs", "show", "typo"), "no run with id 'typo'"),
        ("runs-resume-unknown", ("runs", "resume", "typo"), "no run with id 'typo'"),
        ("unknown-command", ("fly",), "invalid choice: 'fly'"),
        ("doctor-zero-steps", ("doctor", "--steps", "0"), "--steps: must be 1 or more"),
    ]


@pytest.mark.parametrize(
    "args, message", [c[1:] for c in _bad_input_cases()], ids=[c[0] for c in _bad_input_cases()]
)
def test_bad_input_is_one_error_line_exit_2_and_creates_no_run(tmp_path, workspace, args, message):
    import re

    from core import data

    root = make_class_folders(tmp_path / "d", {"x": 4, "y": 4})
    data.save_split(
        data.make_split(data.scan(root), data.SplitSpec("counts", 2, 1, 1), name="s"), workspace=workspace
    )
    (tmp_path / "empty").mkdir()
    model_run = workspace / "runs" / "r-with-model"  # a run that has a model file, for predict's checks
    model_run.mkdir(parents=True)
    (model_run / "config.json").write_text(json.dumps({"split": "s", "image_size": 32}))
    (model_run / "best.keras").write_bytes(b"not read: the inputs are checked first")
    runs_before = sorted(p.name for p in (workspace / "runs").iterdir())

    def fill(arg: str) -> str:
        match = re.fullmatch(r"\{cfg:(.*)\}", arg)
        if match:
            path = tmp_path / f"config-{abs(hash(arg))}.json"
            path.write_text(match.group(1))
            return str(path)
        return arg.format(root=root, tmp=tmp_path, run=model_run.name)

    env = {
        # Offline for certain, wherever the test runs: no cached Keras weights, no way out.
        "KERAS_HOME": str(tmp_path / "keras-home"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "",
        "no_proxy": "",
    }
    result = run_cli(*(fill(a) for a in args), workspace=workspace, env=env)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert sorted(p.name for p in (workspace / "runs").iterdir()) == runs_before  # no run was created


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            ("--mode", "features", "--model", "mobilenet_0.5"),
            {"image_size": 224, "head_pooling": "avg", "optimizer": "adam", "learning_rate": 3e-4},
        ),
        (("--mode", "frozen", "--model", "xception"), {"image_size": 299, "head_pooling": "avg"}),
        (("--mode", "scratch", "--model", "compact"), {"image_size": 32}),
        (
            ("--mode", "scratch", "--model", "resnet", "--warmup-epochs", "5", "--label-smoothing", "0.05"),
            {
                "image_size": 128,
                "optimizer": "adamw",
                "weight_decay": 0.05,
                "warmup_epochs": 5,
                "label_smoothing": 0.05,
            },
        ),  # fmt: skip
        (
            ("--mode", "features", "--recipe", "seed"),
            {"model": "vgg16", "image_size": 150, "head_pooling": "flatten", "learning_rate": 2e-5},
        ),
        (("--mode", "features", "--model", "mobilenet_0.5", "--size", "160"), {"image_size": 160}),
    ],
)
def test_train_defaults_follow_the_network_and_the_recipe(workspace, monkeypatch, capsys, extra, expected):
    from core import data, demo, runs
    from core.cli import main

    root = demo.generate(workspace / "datasets" / "shapes", per_class=8, size=40)
    data.save_split(data.make_split(data.scan(root), data.SplitSpec("counts", 4, 2, 2)), name="s")
    submitted = []
    monkeypatch.setattr(runs, "submit", lambda config, workspace=None: submitted.append(config) or "r1")
    assert main(["train", "--split", "s", "--weights", "none", "--detach", *extra]) == 0
    [config] = submitted
    assert {k: config[k] for k in expected} == expected


def test_lr_find_prints_the_sweep_and_a_suggestion_and_makes_no_run(workspace):
    from core import data, demo

    root = demo.generate(workspace / "datasets" / "shapes", per_class=30, size=40)
    data.save_split(data.make_split(data.scan(root), data.SplitSpec("counts", 20, 5, 5)), name="s")
    out = run_cli(
        "lr-find", "--split", "s", "--model", "compact", "--steps", "30", "--batch-size", "16",
        workspace=workspace,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "learning_rate\tloss\tsmoothed" and len(lines) >= 12
    suggestion = float(lines[-1].split("suggested learning rate: ")[1].split()[0])
    assert 1e-7 <= suggestion <= 1.0
    assert "Traceback" not in out.stderr and "absl" not in out.stderr
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_the_parser_offers_exactly_the_values_core_allows():
    import argparse

    from core import config, doctor
    from core.cli import build_parser
    from core.images import RESIZE_POLICIES

    def choices(*command: str) -> dict:
        parser = build_parser()
        for name in command:
            parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
                name
            ]
        return {a.dest: list(a.choices) for a in parser._actions if a.choices and a.dest != "command"}

    expected = {
        "recipe": list(config.RECIPES),
        "mode": list(config.MODES),
        "resize": list(RESIZE_POLICIES),
        "optimizer": list(config.OPTIMIZERS),
        "schedule": list(config.SCHEDULES),
        "precision": list(config.PRECISIONS),
        "xla": list(config.JIT_CHOICES),
        "head_pooling": list(config.POOLINGS),
    }
    assert choices("train") == expected and choices("lr-find") == expected
    assert choices("doctor") == {
        "precision": [*config.PRECISIONS, *doctor.PRECISION_ALIASES],
        "xla": list(config.JIT_CHOICES),
    }
    from core.modelfile import MODEL_CHOICES

    assert choices("predict") == {"which": list(MODEL_CHOICES)}


def test_clean_saves_a_new_split_version_and_refuses_bad_marks(tmp_path, workspace):
    from core import data
    from core.data import cleaning

    root = make_class_folders(tmp_path / "d", {"x": 5, "y": 5}, size=(16, 16))
    split = data.make_split(data.scan(root), data.SplitSpec("counts", 3, 1, 1), name="s")
    data.save_split(split, workspace=workspace)
    original = data.split_path("s", workspace).read_bytes()
    wrong, odd = split.files("test")  # x_..., y_...
    ok = run_cli(
        "data",
        "clean",
        "s",
        "--relabel",
        f"{wrong}:y",
        "--drop",
        odd,
        "--name",
        "s-fixed",
        workspace=workspace,
    )
    assert ok.returncode == 0, ok.stderr
    assert "saved split 's-fixed' (cleaned from s: 1 relabelled, 1 left out)" in ok.stdout
    assert f"{wrong} (test): x → y" in ok.stdout and f"{odd} (test): left out" in ok.stdout
    new = data.load_split("s-fixed", workspace)
    assert new.subsets["test"] == [(wrong, 1)] and new.table()["train"] == split.table()["train"]
    assert data.split_path("s", workspace).read_bytes() == original
    assert cleaning.read_record("s-fixed", workspace).derived_from == "s"

    for args, message in [
        (("--relabel", f"{wrong}:z", "--name", "n"), "split 's' has no class 'z'"),
        (("--drop", "x/missing.png", "--name", "n"), "'x/missing.png' is not a picture of split 's'"),
        (("--relabel", wrong, "--name", "n"), "--relabel takes FILE:CLASS"),
        (("--drop", odd, "--name", "s-fixed"), "a split named 's-fixed' already exists"),
        (("--name", "n"), "there are no marks to save"),
    ]:
        result = run_cli("data", "clean", "s", *args, workspace=workspace)
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert data.list_splits(workspace) == ["s", "s-fixed"]
