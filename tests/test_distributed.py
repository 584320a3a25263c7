"""core.distributed: launching local JAX workers (two of them training in lockstep, directly and
through the CLI) and waiting in the run queue."""

from __future__ import annotations

import importlib.util
import json
import time

import numpy as np
import pytest

from core import distributed
from core.config import TrainConfig


def _weights(path) -> dict[str, np.ndarray]:
    """Every array in a .weights.h5 file by its path (layers/... and optimizer/...)."""
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
    return out


def _epochs(path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if r["kind"] == "epoch"]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_local_workers_end_with_identical_weights(tmp_path, workspace):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install -r requirements-test.txt)")
    from core import demo
    from core.data import SplitSpec, make_split, save_split, scan
    from core.train import finalize

    root = demo.generate(tmp_path / "shapes", per_class=16, size=32)
    split = make_split(scan(root), SplitSpec(method="counts", train=10, val=3, test=3), name="tiny")
    save_split(split, workspace=workspace)
    config = finalize(
        TrainConfig(
            split="tiny",
            mode="scratch",
            model="small",
            image_size=32,
            epochs=2,
            batch_size=8,
            augment_name="none",
            optimizer="adam",
            learning_rate=1e-3,
            precision="float32",
        ),
        workspace,
    )
    out = tmp_path / "out"
    start = time.monotonic()
    procs = distributed.launch_local(
        config, num_workers=2, out_dir=out, workspace=workspace, save_initial=True
    )
    codes = distributed.wait_all(procs, timeout=240)
    logs = {i: (out / f"worker-{i}.log").read_text(errors="replace")[-3000:] for i in range(2)}
    assert codes == [0, 0], f"exit codes {codes} after {time.monotonic() - start:.0f} s\n{logs}"

    w0, w1 = _weights(out / "worker-0.weights.h5"), _weights(out / "worker-1.weights.h5")
    initial = _weights(out / "initial.weights.h5")
    layers = sorted(k for k in initial if k.startswith("layers/"))
    assert layers and set(w0) == set(w1) and set(layers) <= set(w0)
    assert any(k.startswith("optimizer/") for k in w0)  # Adam's moments agree too
    diverged = [k for k in w0 if not np.array_equal(w0[k], w1[k])]
    assert not diverged, f"workers' weights diverged: {diverged}"
    assert any(not np.allclose(w0[k], initial[k]) for k in layers), "weights did not change: no training"
    assert (out / "model.keras").exists()

    e0, e1 = _epochs(out / "worker-0.jsonl"), _epochs(out / "worker-1.jsonl")
    assert [r["epoch"] for r in e0] == [r["epoch"] for r in e1] == [1, 2]
    for a, b in zip(e0, e1):
        assert np.isfinite(a["loss"]) and a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6)
    start_rows = [json.loads((out / f"worker-{i}.jsonl").read_text().splitlines()[0]) for i in range(2)]
    assert [r["global_batch"] for r in start_rows] == [8, 8]
    assert [r["shard_images"] for r in start_rows] == [20, 20]  # 40 training images over 2 workers

    # worker 0 alone writes TensorBoard event files, with its epoch rows (core.tensorboard)
    from tests.test_tensorboard import by_tag_step, events

    train, val = (
        by_tag_step(events(out / "tensorboard" / "train")),
        by_tag_step(events(out / "tensorboard" / "validation")),
    )
    for row in e0:
        assert train["epoch_loss", row["epoch"] - 1] == pytest.approx(row["loss"], rel=1e-6)
        assert val["epoch_loss", row["epoch"] - 1] == pytest.approx(row["val_loss"], rel=1e-6)
    assert sorted({step for _, step in train}) == [0, 1]


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_cli_train_with_two_workers(tmp_path, workspace):
    """The documented path: python -m core train --workers 2 --out DIR (all workers on this machine)."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install -r requirements-test.txt)")
    import os
    import subprocess
    import sys

    from core import demo
    from core.data import SplitSpec, make_split, save_split, scan
    from tests.conftest import REPO

    root = demo.generate(tmp_path / "shapes", per_class=12, size=32)
    save_split(
        make_split(scan(root), SplitSpec(method="counts", train=8, val=2, test=2), name="cli"),
        workspace=workspace,
    )
    out = tmp_path / "out"
    args = [
        "train",
        "--split",
        "cli",
        "--mode",
        "scratch",
        "--model",
        "small",
        "--size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--augment",
        "none",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--precision",
        "float32",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=360,
        env={**os.environ, "CONVNET_WORKSPACE": str(workspace)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    w0, w1 = _weights(out / "worker-0.weights.h5"), _weights(out / "worker-1.weights.h5")
    assert w0 and all(np.array_equal(w0[k], w1[k]) for k in w0)
    assert (out / "model.keras").exists()
    missing_out = subprocess.run(
        [sys.executable, "-m", "core", *args[:-2]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CONVNET_WORKSPACE": str(workspace)},
    )
    assert missing_out.returncode == 2 and "--out DIR is needed" in missing_out.stderr


def test_a_multi_worker_launch_waits_for_the_device_lock(tmp_path, workspace, monkeypatch):
    """`python -m core train --workers N` (distributed.run) queues like a run: while another run
    holds the device it starts no worker, and it holds the lock until its workers end."""
    import fcntl
    import threading

    from core import devicequeue, rundir

    started: list[float] = []
    held_while_training: list[bool] = []

    def launch_local(config, num_workers, out_dir, workspace=None, **kw):
        started.append(time.time())
        probe = open(rundir.runs_dir(workspace) / devicequeue.LOCK_NAME, "a+")
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held_while_training.append(False)
        except BlockingIOError:
            held_while_training.append(True)
        finally:
            probe.close()
        return []

    monkeypatch.setattr(distributed, "launch_local", launch_local)
    config = TrainConfig(split="s", model="small", image_size=32, batch_size=8)
    codes: list[int] = []
    lock = open(rundir.runs_dir(workspace) / devicequeue.LOCK_NAME, "a+")
    fcntl.flock(lock, fcntl.LOCK_EX)  # a run is training
    try:
        thread = threading.Thread(
            target=lambda: codes.append(distributed.run(config, 2, tmp_path / "out", workspace=workspace))
        )
        thread.start()
        time.sleep(1.5)
        assert not started, "workers started while another run held the device"
        assert list((rundir.runs_dir(workspace) / devicequeue.QUEUE_NAME).glob("*-distributed-*.json"))
        released = time.time()
    finally:
        lock.close()
    thread.join(10)
    assert codes == [0] and started and started[0] >= released
    assert held_while_training == [True]
    assert not list((rundir.runs_dir(workspace) / devicequeue.QUEUE_NAME).glob("*.json"))
