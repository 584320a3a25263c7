"""core.devices: TensorFlow's set-up (GPU memory growth, quiet start-up) and the device, precision
and XLA choices, with the hardware faked where it matters."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core import devices, rundir, runs
from core.config import TrainConfig
from tests.conftest import REPO


@pytest.fixture
def fresh_state(monkeypatch):
    """configure_tensorflow as if not yet called in this process."""
    monkeypatch.setattr(devices, "_state", {"called": False, "gpus": None})
    monkeypatch.delenv(devices.GROWTH_ENV, raising=False)


# ---------------------------------------------------------------------------- GPU memory growth


def test_configure_tensorflow_sets_memory_growth_on_every_gpu_once(fresh_state, monkeypatch):
    import keras  # noqa: F401 (imported before TensorFlow's device list is faked)
    import tensorflow as tf

    fake = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(2)]
    listed, grown = [], []

    def list_devices(kind=None):
        listed.append(kind)
        return fake if kind == "GPU" else []

    monkeypatch.setattr(tf.config, "list_physical_devices", list_devices)
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda d, on: grown.append((d.name, on)))
    assert devices.tensorflow_configured() == {"called": False, "gpus": None}

    names = [d.name for d in fake]
    assert devices.configure_tensorflow() == names
    assert grown == [(n, True) for n in names]
    assert os.environ[devices.GROWTH_ENV] == "true"  # inherited by every process started from here
    assert devices.configure_tensorflow() == names and len(listed) == 1 and len(grown) == 2  # idempotent
    assert devices.tensorflow_configured() == {"called": True, "gpus": names}


def test_configure_tensorflow_on_this_machine(fresh_state):
    """On a CPU-only machine: called, nothing to grow; the GPU list is the machine's."""
    import tensorflow as tf

    configured = devices.configure_tensorflow()
    assert configured == [d.name for d in tf.config.list_physical_devices("GPU")]
    assert devices.tensorflow_configured()["called"] and os.environ[devices.GROWTH_ENV] == "true"


def test_configure_tensorflow_keeps_a_value_the_user_set(fresh_state, monkeypatch):
    monkeypatch.setenv(devices.GROWTH_ENV, "false")
    devices.configure_tensorflow()
    assert os.environ[devices.GROWTH_ENV] == "false"


def test_gpus_configures_tensorflow_first(fresh_state):
    """A deferred configuration (the run worker's) is finished when TensorFlow lists its GPUs."""
    devices.gpus()
    assert devices.tensorflow_configured()["gpus"] is not None


_WORKER = """
import atexit, json, os, runpy, sys

out = sys.argv[2]

def report():
    from core import devices
    with open(out, "w") as f:
        json.dump({"env": os.environ.get(devices.GROWTH_ENV), **devices.tensorflow_configured()}, f)

atexit.register(report)
sys.argv = ["core.worker", sys.argv[1]]
runpy.run_module("core.worker", run_name="__main__")
"""


def test_the_run_worker_process_configures_tensorflow(workspace, tmp_path):
    """python -m core.worker (the run process) sets memory growth up before anything else, and passes
    TF_FORCE_GPU_ALLOW_GROWTH on; a run that fails at once (no such split) still did it."""
    run_id = runs.create_run(TrainConfig(split="no-such-split", model="small").to_dict(), workspace)
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k != devices.GROWTH_ENV}
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, str(rundir.run_dir(run_id, workspace)), str(report)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.exists(), done.stderr[-2000:]
    seen = json.loads(report.read_text())
    assert seen["called"] is True and seen["env"] == "true", seen


# ---------------------------------------------------------------------------- quiet start-up


def test_quiet_native_stderr_hides_fd_2(capfd):
    with devices.quiet_native_stderr():
        os.write(2, b"native noise\n")
        assert os.environ[devices.LOG_LEVEL_ENV] == "3"
    with pytest.raises(RuntimeError), devices.quiet_native_stderr():
        os.write(2, b"more noise\n")
        raise RuntimeError("boom")
    os.write(2, b"after\n")  # fd 2 is back, also after an exception
    with devices.quiet_native_stderr(enabled=False):
        os.write(2, b"shown\n")
    err = capfd.readouterr().err
    assert "noise" not in err and "after" in err and "shown" in err


def test_quiet_native_stderr_puts_the_log_level_back(monkeypatch):
    monkeypatch.setenv(devices.LOG_LEVEL_ENV, "1")
    with devices.quiet_native_stderr():
        pass
    assert os.environ[devices.LOG_LEVEL_ENV] == "1"
    monkeypatch.delenv(devices.LOG_LEVEL_ENV)
    with devices.quiet_native_stderr():
        pass
    assert devices.LOG_LEVEL_ENV not in os.environ  # run workers started later keep TensorFlow's logs


# ---------------------------------------------------------------------------- device, precision and XLA choice


@pytest.mark.parametrize(
    "requested, has_gpu, cpu_bf16, capability, expected",
    [
        ("auto", True, False, (8, 0), "mixed_bfloat16"),  # Ampere and newer
        ("auto", True, True, (9, 0), "mixed_bfloat16"),
        ("auto", True, False, (7, 5), "mixed_float16"),  # Turing, Volta
        ("auto", True, False, None, "mixed_float16"),  # capability unknown: the safe choice
        ("auto", False, True, None, "mixed_bfloat16"),  # AMX / AVX512-BF16 CPU
        ("auto", False, False, None, "float32"),
        ("float32", True, False, (9, 0), "float32"),  # an explicit choice always wins
        ("mixed_float16", False, False, None, "mixed_float16"),
        ("mixed_bfloat16", False, False, None, "mixed_bfloat16"),
    ],
)
def test_choose_precision(requested, has_gpu, cpu_bf16, capability, expected):
    assert devices.choose_precision(requested, has_gpu, cpu_bf16, capability) == expected


@pytest.mark.parametrize(
    "requested, has_gpu, backend, expected",
    [
        ("auto", True, "tensorflow", True),
        ("auto", False, "tensorflow", False),  # XLA on CPU was 3-4x slower
        ("auto", False, "jax", True),  # JAX without jit runs op by op
        ("on", False, "tensorflow", True),
        ("off", True, "tensorflow", False),
        ("off", False, "jax", False),
    ],
)
def test_choose_jit(requested, has_gpu, backend, expected):
    assert devices.choose_jit(requested, has_gpu, backend) is expected


def test_device_plan_on_this_machine():
    """Whatever this machine has: the plan counts its GPUs and follows the rules for them."""
    found = devices.gpus()
    plan = devices.device_plan(TrainConfig(precision="auto", jit_compile="auto"))
    assert plan["gpus"] == len(found) and plan["device"] == (f"{len(found)} GPU(s)" if found else "CPU")
    if not found:
        assert plan["precision"] == ("mixed_bfloat16" if devices.cpu_has_bf16() else "float32")
    assert plan["jit_compile"] is (bool(found) or plan["backend"] == "jax")


@pytest.mark.parametrize(
    "n_gpus, capability, cpu_bf16, device, precision",
    [
        (0, None, False, "CPU", "float32"),
        (0, None, True, "CPU", "mixed_bfloat16"),
        (2, (8, 0), False, "2 GPU(s)", "mixed_bfloat16"),
        (2, (7, 5), True, "2 GPU(s)", "mixed_float16"),  # the GPU decides, not the CPU
    ],
)
def test_device_plan_follows_the_gpus_found(monkeypatch, n_gpus, capability, cpu_bf16, device, precision):
    monkeypatch.setattr(devices, "gpus", lambda: [f"/physical_device:GPU:{i}" for i in range(n_gpus)])
    monkeypatch.setattr(devices, "gpu_compute_capability", lambda: capability)
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: cpu_bf16)
    plan = devices.device_plan(TrainConfig(precision="auto", jit_compile="auto"))
    assert (plan["device"], plan["gpus"], plan["precision"]) == (device, n_gpus, precision)
    assert plan["jit_compile"] is (n_gpus > 0 or plan["backend"] == "jax")
    explicit = devices.device_plan(TrainConfig(precision="float32", jit_compile="off"))
    assert (explicit["precision"], explicit["jit_compile"]) == ("float32", False)


def test_one_device_means_no_distribution():
    import contextlib

    assert devices.replica_devices(0) == [] and devices.replica_devices(1) == []  # one GPU or none
    assert isinstance(devices.distribution_scope([]), contextlib.nullcontext)


@pytest.mark.parametrize("found, expected", [([], None), (["8.9", "7.5"], (8, 9)), ([None], None)])
def test_gpu_compute_capability_on_jax_reads_jax_devices(monkeypatch, found, expected):
    """Multi-worker runs use JAX, where TensorFlow may see no GPU: the capability comes from JAX."""
    import types

    import jax
    import keras

    fake = [types.SimpleNamespace(platform="gpu", compute_capability=cc) for cc in found]
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(jax, "local_devices", lambda: [types.SimpleNamespace(platform="cpu"), *fake])
    assert devices.gpu_compute_capability() == expected
