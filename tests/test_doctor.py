"""core.doctor (python -m core doctor): in this process with the hardware faked, and once for real
in a subprocess."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import pytest

from core import devices, doctor
from core.cli import main
from tests.conftest import REPO

# What TensorFlow prints at start-up on a machine without a GPU (and a few more of its notes).
NOISE = (
    "Could not find cuda drivers",
    "failed call to cuInit",
    "cudart_stub",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "rebuild TensorFlow with the appropriate compiler flags",
    "oneDNN custom operations",
    "TF_ENABLE_ONEDNN_OPTS",
    "All log messages before absl::InitializeLog()",
    "Unable to register cu",
)


def test_train_tiny_trains_and_puts_the_dtype_policy_back():
    import keras

    before = keras.config.dtype_policy().name
    speed = doctor.train_tiny(keras.backend.backend(), "CPU:0", "float32", False, steps=2)
    assert speed.error is None and speed.images_per_s > 0 and math.isfinite(speed.loss)
    assert keras.config.dtype_policy().name == before


@pytest.fixture
def fake_machine(monkeypatch):
    """A CPU-only machine without CUDA, bfloat16 instructions or problems; tests change one thing."""
    monkeypatch.setattr(devices, "gpus", lambda: [])
    monkeypatch.setattr(doctor, "cuda_evidence", lambda: [])
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(
        doctor,
        "train_tiny",
        lambda backend, device, precision, jit, steps: doctor.Speed(device, precision, jit, 1234.0, 0.69),
    )
    return monkeypatch


def run_main_doctor(capsys, *args: str) -> tuple[int, str, list[str]]:
    code = main(["doctor", *args])
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


def test_doctor_reports_a_healthy_machine(fake_machine, capsys):
    code, out, err = run_main_doctor(capsys)
    assert code == 0 and err == []
    assert "gpus        none" in out and "CPU:0" in out and "1234 images/s" in out
    assert "precision   auto -> float32: no GPU, and the CPU has no AVX512-BF16" in out
    assert "xla         auto -> off" in out or "xla         auto -> on: JAX" in out


@pytest.mark.parametrize(
    "change, args, reason",
    [
        ("cuda", (), "no GPU is visible to"),
        ("bf16", ("--precision", "bfloat16"), "bfloat16 was asked for, but this CPU"),
        ("bf16", ("--precision", "mixed_bfloat16"), "has no bfloat16 hardware"),
        ("nan", (), "gave a loss of nan (NaN or infinite)"),
        ("fails", (), "training on CPU:0 failed: ResourceExhaustedError: out of memory"),
    ],
)
def test_doctor_exits_1_with_one_line_when_something_is_wrong(fake_machine, capsys, change, args, reason):
    if change == "cuda":
        fake_machine.setattr(doctor, "cuda_evidence", lambda: ["nvidia-smi is installed"])
    elif change in ("nan", "fails"):
        loss, error = (
            (float("nan"), None) if change == "nan" else (0.7, "ResourceExhaustedError: out of memory")
        )
        fake_machine.setattr(
            doctor,
            "train_tiny",
            lambda backend, device, precision, jit, steps: doctor.Speed(
                device, precision, jit, 99.0, loss, error
            ),
        )
    code, out, err = run_main_doctor(capsys, *args)
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: ") and reason in err[0], err
    assert "1 problem(s) found" in out


def test_doctor_with_a_bfloat16_cpu_or_gpu_is_well(fake_machine, capsys):
    fake_machine.setattr(devices, "cpu_has_bf16", lambda: True)
    code, out, _ = run_main_doctor(capsys, "--precision", "bfloat16")
    assert code == 0 and "mixed_bfloat16" in out
    fake_machine.setattr(devices, "cpu_has_bf16", lambda: False)
    fake_machine.setattr(devices, "gpus", lambda: ["/physical_device:GPU:0"])
    fake_machine.setattr(devices, "gpu_compute_capability", lambda: (8, 6))
    code, out, _ = run_main_doctor(capsys)
    assert code == 0, out
    assert "gpus        1: /physical_device:GPU:0, compute capability 8.6" in out
    assert "precision   auto -> mixed_bfloat16: the GPU (compute capability 8.6) has bfloat16 units" in out
    assert re.search(r"GPU:0 +mixed_bfloat16, XLA on: 1234 images/s", out)


def run_doctor(*args: str, **env_vars: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (devices.LOG_LEVEL_ENV, "TF_ENABLE_ONEDNN_OPTS")}
    env.update(env_vars)
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def test_doctor_on_this_machine_trains_and_keeps_the_terminal_clean():
    """The real thing: devices, a positive images/s, exit 0 (1 only for CUDA without a visible GPU,
    which the doctor is right to report), and none of TensorFlow's start-up lines without --verbose."""
    done = run_doctor("doctor", "--steps", "3")
    speeds = [float(s) for s in re.findall(r"^  CPU:0 .*?: (\d+) images/s", done.stdout, re.M)]
    assert speeds and speeds[0] > 0, (done.stdout, done.stderr)
    assert "backend     " in done.stdout and "gpus        " in done.stdout
    err = done.stderr.splitlines()
    if doctor.cuda_evidence() and not devices.gpus():
        assert done.returncode == 1 and len(err) == 1 and "no GPU is visible" in err[0], done.stderr
    else:
        assert done.returncode == 0 and err == [], done.stderr
    for noise in NOISE:
        assert noise not in done.stdout + done.stderr, noise

    verbose = run_doctor("--verbose", "doctor", "--steps", "1")  # TensorFlow's lines may show here
    assert verbose.returncode == done.returncode and "CPU:0" in verbose.stdout, verbose.stderr[-2000:]


def test_doctor_with_a_backend_that_cannot_start_exits_1_with_one_line():
    done = run_doctor("doctor", KERAS_BACKEND="no_such_backend")
    assert done.returncode == 1 and done.stdout == "", done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith("error: Keras cannot start its no_such_backend backend: "), line
