"""core.tensorboard: every metrics row of a run also lands in TensorBoard event files (read back with
TensorFlow's summary iterator), a resumed run appends without duplicates, and failing writes never
stop training."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from core import rundir, runs, tensorboard, worker
from core.config import TrainConfig
from core.train import finalize
from tests.conftest import make_demo_split


def events(folder: Path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in every event file under `folder`, file by file."""
    import tensorflow as tf

    out = []
    for file in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(file)):
            for v in event.summary.value:
                out.append((v.tag, int(event.step), float(tf.make_ndarray(v.tensor))))
    return out


def by_tag_step(found: list[tuple[str, int, float]]) -> dict[tuple[str, int], float]:
    counts = Counter((tag, step) for tag, step, _ in found)
    assert not [k for k, n in counts.items() if n > 1], "a step written twice"
    return {(tag, step): value for tag, step, value in found}


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("tb") / "workspace"
    make_demo_split(ws, per_class=20, size=32)
    return ws


def tiny_config(ws: Path, **kw) -> dict:
    values = dict(
        split="demo", mode="scratch", model="small", image_size=32, epochs=3, batch_size=16,
        optimizer="adam", learning_rate=1e-3, augment_name="none", log_every=1, precision="float32",
    )  # fmt: skip
    return finalize(TrainConfig(**{**values, **kw}), ws).to_dict()


@pytest.fixture(scope="module")
def resumed_run(demo_ws) -> str:
    """3 epochs of 3 batches: stopped after batch 2 of epoch 2, then resumed to the end."""
    ws = demo_ws
    run_id = runs.create_run(tiny_config(ws), ws)
    path = rundir.run_dir(run_id, ws)
    with pytest.MonkeyPatch.context() as mp:

        def stop_in_epoch_2(control) -> bool:
            rows = runs.metrics(run_id, ws)
            return any(r["kind"] == "batch" and r["epoch"] == 2 and r["batch"] >= 2 for r in rows)

        mp.setattr(rundir.RunControl, "should_stop", stop_in_epoch_2)
        worker.worker_main(path, resume=False)
    assert runs.status(run_id, ws)["state"] == "stopped"
    worker.worker_main(path, resume=True)
    assert runs.status(run_id, ws)["state"] == "done"
    return run_id


def test_scalars_use_keras_tensorboard_names_and_steps():
    step, values = tensorboard.scalars(
        {"kind": "epoch", "epoch": 3, "step": 30, "complete": True, "seconds": 2.0, "images_per_s": 50.0,
         "lr": 1e-3, "loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7, "time": 1e9}
    )  # fmt: skip
    assert step == 2  # Keras counts epochs from 0
    assert values == {
        "train": {
            "epoch_seconds": 2.0,
            "epoch_images_per_second": 50.0,
            "epoch_learning_rate": 1e-3,
            "epoch_loss": 0.5,
            "epoch_accuracy": 0.75,
        },
        "validation": {"epoch_loss": 0.6, "epoch_accuracy": 0.7},
    }
    step, values = tensorboard.scalars(
        {"kind": "batch", "epoch": 2, "batch": 4, "step": 14, "images": 16, "lr": None, "loss": 0.4}
    )
    assert (step, values) == (14, {"train": {"batch_loss": 0.4}})  # an unreadable rate is left out


def test_every_metrics_row_is_in_the_event_files_once_across_a_resume(resumed_run, demo_ws):
    path = rundir.run_dir(resumed_run, demo_ws)
    rows = runs.metrics(resumed_run, demo_ws)
    assert any(r["kind"] == "epoch" and r["complete"] is False for r in rows)  # the stop cut epoch 2
    train_dir, val_dir = path / "tensorboard" / "train", path / "tensorboard" / "validation"
    assert len(list(train_dir.glob("events.out.tfevents.*"))) == 2  # the resume started a new file
    train, val = by_tag_step(events(train_dir)), by_tag_step(events(val_dir))

    batches = {r["step"]: r for r in rows if r["kind"] == "batch"}  # the retrained epoch's rows win
    assert sorted(batches) == list(range(1, 10)) == sorted(s for t, s in train if t == "batch_loss")
    for step, row in batches.items():
        assert train["batch_loss", step] == pytest.approx(row["loss"], rel=1e-6)
        assert train["batch_accuracy", step] == pytest.approx(row["accuracy"], rel=1e-6)
        assert train["batch_learning_rate", step] == pytest.approx(row["lr"], rel=1e-6)
    epochs = [r for r in rows if r["kind"] == "epoch" and r["complete"]]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert sorted(s for t, s in train if t == "epoch_loss") == [0, 1, 2]
    for row in epochs:
        step = row["epoch"] - 1
        assert train["epoch_loss", step] == pytest.approx(row["loss"], rel=1e-6)
        assert train["epoch_accuracy", step] == pytest.approx(row["accuracy"], rel=1e-6)
        assert train["epoch_learning_rate", step] == pytest.approx(row["lr"], rel=1e-6)
        assert val["epoch_loss", step] == pytest.approx(row["val_loss"], rel=1e-6)
        assert val["epoch_accuracy", step] == pytest.approx(row["val_accuracy"], rel=1e-6)
    assert not [t for t, _ in val if t.startswith("epoch_val_")]


def test_a_run_whose_event_files_cannot_be_written_trains_on_and_says_so_once(demo_ws, capsys):
    run_id = runs.create_run(tiny_config(demo_ws, epochs=2), demo_ws)
    path = rundir.run_dir(run_id, demo_ws)
    (path / "tensorboard").write_text("a file where the folder should be")  # every write fails
    worker.worker_main(path, resume=False)
    assert runs.status(run_id, demo_ws)["state"] == "done"
    assert [r["epoch"] for r in runs.metrics(run_id, demo_ws) if r["kind"] == "epoch"] == [1, 2]
    assert capsys.readouterr().out.count("TensorBoard event files could not be written") == 1


def test_a_full_disk_is_reported_once_and_then_rows_are_dropped(tmp_path, monkeypatch):
    import tensorflow as tf

    said: list[str] = []
    log = tensorboard.EventLog(tmp_path / "tensorboard", say=said.append)
    epoch = {"kind": "epoch", "epoch": 1, "step": 3, "complete": True, "loss": 0.5}
    log.add(epoch)
    assert by_tag_step(events(tmp_path / "tensorboard" / "train")) == {("epoch_loss", 0): 0.5}

    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    monkeypatch.setattr(tf.summary, "scalar", full)
    for epoch_number in (2, 3):
        log.add({"kind": "batch", "epoch": epoch_number, "step": 4, "loss": 0.4})
        log.add({**epoch, "epoch": epoch_number})
    log.close()
    assert len(said) == 1 and "No space left on device" in said[0] and "training goes on" in said[0]


def test_a_deleted_run_folder_is_not_created_again(tmp_path):
    said: list[str] = []
    log = tensorboard.EventLog(tmp_path / "gone" / "tensorboard", say=said.append)
    log.add({"kind": "epoch", "epoch": 1, "step": 3, "loss": 0.5})
    assert not (tmp_path / "gone").exists() and len(said) == 1


def test_writing_costs_little(tmp_path):
    import time

    log = tensorboard.EventLog(tmp_path / "tensorboard")
    row = {"kind": "batch", "epoch": 1, "step": 1, "images": 32, "images_per_s": 200.0, "lr": 1e-3}
    log.add({"kind": "epoch", "epoch": 0, "step": 0, "loss": 1.0})  # opens the files, imports TensorFlow
    start = time.perf_counter()
    for step in range(1, 201):
        log.add({**row, "step": step, "loss": 1 / step, "accuracy": 0.5})
    log.add({"kind": "epoch", "epoch": 1, "step": 200, "loss": 0.1, "val_loss": 0.2})
    seconds = time.perf_counter() - start
    log.close()
    print(f"201 rows in {seconds * 1000:.0f} ms")
    assert seconds < 5.0  # about 2.5 ms a row here, once per epoch, against seconds of training
    assert len(events(tmp_path / "tensorboard" / "train")) == 1 + 200 * 4 + 1  # 4 scalars a batch row
