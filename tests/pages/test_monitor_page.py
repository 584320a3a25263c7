"""AppTest for the Monitor page, fed by a run directory that the real metrics writer fills."""

from __future__ import annotations

import json
import os
import time

import pytest

from core import processes, rundir, runs
from core.rundir import RunControl
from tests.pages.conftest import open_page, plotly_values


def _traces(at, key: str) -> list[dict]:
    chart = next(
        c
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec).get("layout", {}).get("title", {}).get("text", "").lower().startswith(key)
    )
    return json.loads(chart.proto.spec)["data"]


def _points(at, key: str, name: str) -> list[float]:
    return list(plotly_values(next(t["y"] for t in _traces(at, key) if t.get("name") == name)))


@pytest.fixture
def live_run(workspace):
    """A run that claims to be running in this process, with a writer to add epochs."""
    run_id = runs.create_run(
        {"mode": "scratch", "model": "small", "epochs": 10, "split": "s", "augment_name": "none"}
    )
    control = RunControl(rundir.run_dir(run_id))
    control.update(
        state="running", pid=os.getpid(), started=time.time() - 30, epochs=10, batches=4, classes=["a", "b"]
    )

    def epoch(e: int, loss: float, val_loss: float, acc: float, val_acc: float) -> None:
        for b in range(1, 5):
            control.log(
                {
                    "kind": "batch",
                    "epoch": e,
                    "batch": b,
                    "step": (e - 1) * 4 + b,
                    "loss": loss + 0.01 * b,
                    "accuracy": acc,
                    "images_per_s": 100.0,
                }
            )
        control.log(
            {
                "kind": "epoch",
                "epoch": e,
                "step": e * 4,
                "complete": True,
                "seconds": 3.0,
                "loss": loss,
                "accuracy": acc,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "images_per_s": 100.0,
            }
        )
        control.update(epoch=e + 1, batch=0)

    return run_id, control, epoch


def test_curves_grow_as_the_run_writes(live_run):
    run_id, _, epoch = live_run
    epoch(1, 0.9, 0.8, 0.5, 0.55)
    at = open_page("monitor.py")
    assert not at.exception, at.exception
    assert len(_points(at, "loss", "training")) == 1
    epoch(2, 0.7, 0.6, 0.6, 0.65)
    epoch(3, 0.5, 0.5, 0.7, 0.72)
    at.run()
    assert len(_points(at, "loss", "training")) == 3
    assert len(_points(at, "accuracy", "validation")) == 3
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["State"] == "running" and metrics["Epoch"].startswith("4 / 10")
    assert "best epoch 3" in json.dumps(json.loads(at.get("plotly_chart")[0].proto.spec)["layout"])


def test_smoothing_is_the_debiased_average(live_run):
    _, _, epoch = live_run
    for e, loss in enumerate([1.0, 0.0, 1.0], start=1):
        epoch(e, loss, loss, 0.5, 0.5)
    at = open_page("monitor.py", monitor_smoothing=0.5)
    smoothed = _points(at, "loss", "training")
    # By hand: last = 0.5*0 + 0.5*1 = 0.5 -> /0.5 = 1.0; last = 0.25 -> /0.75 = 1/3;
    # last = 0.125 + 0.5 = 0.625 -> /0.875 = 0.714...
    assert smoothed == pytest.approx([1.0, 1 / 3, 0.625 / 0.875])
    raw = list(plotly_values(next(t["y"] for t in _traces(at, "loss") if t.get("name") == "training (raw)")))
    assert raw == [1.0, 0.0, 1.0]


def test_per_batch_points_and_overfitting_hint(live_run):
    _, _, epoch = live_run
    for e, (loss, val) in enumerate([(0.9, 0.6), (0.7, 0.5), (0.5, 0.55), (0.4, 0.6), (0.3, 0.7)], start=1):
        epoch(e, loss, val, 0.8, 0.7)
    at = open_page("monitor.py")
    assert any("memorise" in w.value for w in at.warning)
    at.radio(key="monitor_x").set_value("per batch").run()
    assert len(_points(at, "loss", "training")) == 20


def test_failed_run_shows_message_and_log_not_traceback(workspace):
    run_id = runs.create_run({"mode": "scratch", "model": "small", "epochs": 2, "split": "s"})
    path = rundir.run_dir(run_id)
    RunControl(path).update(state="failed", error="ValueError: the split 's' is gone", pid=None)
    (path / "log.txt").write_text(
        "Traceback (most recent call last):\n  ...\nValueError: the split 's' is gone\n"
    )
    at = open_page("monitor.py")
    assert not at.exception
    assert any("the split 's' is gone" in e.value for e in at.error)
    assert all("Traceback" not in e.value for e in at.error)
    assert any(x.label == "Full log" for x in at.expander)
    assert at.button(key="monitor_resume")  # failed runs can be resumed


def test_table_rename_notes_compare_and_delete(live_run, workspace):
    run_id, control, epoch = live_run
    epoch(1, 0.9, 0.8, 0.5, 0.55)
    other = runs.create_run(
        {"mode": "features", "model": "vgg16", "epochs": 3, "split": "s", "augment_name": "none"}
    )
    other_control = RunControl(rundir.run_dir(other))
    other_control.update(state="done", pid=None, started=time.time() - 60, ended=time.time())
    other_control.log(
        {
            "kind": "epoch",
            "epoch": 1,
            "complete": True,
            "loss": 0.3,
            "val_loss": 0.2,
            "accuracy": 0.9,
            "val_accuracy": 0.93,
        }
    )
    at = open_page("monitor.py")
    table = next(d.value for d in at.dataframe if "state" in d.value.columns)
    assert set(table["id"]) == {run_id, other}
    assert table.set_index("id").loc[other, "best val acc"] == pytest.approx(0.93)
    # Selecting rows in AppTest: set the dataframe selection state, as a click would.
    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    assert any(
        "runs compared" in json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")
    )
    diff = next(d.value for d in at.dataframe if "mode" in d.value.index)
    assert list(diff.loc["mode"]) in (["scratch", "features"], ["features", "scratch"])
    runs.set_meta(other, name="vgg features", notes="first try")
    at.run()
    assert "vgg features" in list(next(d.value for d in at.dataframe if "state" in d.value.columns)["name"])
    with pytest.raises(rundir.RunError, match="running"):
        runs.delete(run_id)
    runs.delete(other)
    assert [r["id"] for r in runs.list_runs()] == [run_id]


def test_a_late_heartbeat_of_a_live_run_is_news_not_an_interruption(live_run):
    run_id, _, _ = live_run
    path = rundir.run_dir(run_id)
    raw = json.loads((path / "status.json").read_text())
    raw.update(heartbeat=time.time() - 125, pid_start=processes.process_start(os.getpid()))
    (path / "status.json").write_text(json.dumps(raw))
    at = open_page("monitor.py")
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["State"] == "running"
    assert any("No news from this run for 2 min" in w.value for w in at.warning)
    assert not any("interrupted" in e.value for e in at.error)
