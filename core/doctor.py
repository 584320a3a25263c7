"""``python -m core doctor``: backend, versions, devices, the precision and XLA choices and why,
a few timed training steps of a tiny net on each device, and what looks wrong."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import devices

DOCTOR_STEPS = 10  # timed training steps per device (after DOCTOR_WARMUP untimed ones)
DOCTOR_WARMUP = 2
DOCTOR_BATCH = 32
DOCTOR_SIZE = 32
PRECISION_ALIASES = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@dataclass
class Speed:
    """A few timed training steps of the doctor's tiny net on one device."""

    device: str
    precision: str
    jit: bool
    images_per_s: float = 0.0
    loss: float = float("nan")
    error: str | None = None


def cuda_evidence() -> list[str]:
    """Signs that this machine is meant to run on an NVIDIA GPU: a driver, CUDA wheels or libraries."""
    found = []
    if Path("/dev/nvidiactl").exists():
        found.append("an NVIDIA driver is loaded (/dev/nvidiactl)")
    if shutil.which("nvidia-smi"):
        found.append("nvidia-smi is installed")
    for module in ("nvidia.cuda_runtime", "nvidia.cudnn", "jax_cuda12_plugin"):
        try:
            if importlib.util.find_spec(module) is not None:
                found.append(f"the {module.split('.')[-1]} package is installed")
        except (ImportError, ValueError):
            pass
    if "tensorflow" in sys.modules:
        found += _tensorflow_cudart()
    return found


def _tensorflow_cudart() -> list[str]:
    """The CUDA runtime a TensorFlow built with CUDA needs (libcudart.so.<its major version>) loads.
    Another major version (a CUDA toolkit for something else) is no sign: TensorFlow cannot use it."""
    import ctypes

    try:
        info = sys.modules["tensorflow"].sysconfig.get_build_info()
    except Exception:
        return []
    if not info.get("is_cuda_build") or not info.get("cuda_version"):
        return []
    name = f"libcudart.so.{str(info['cuda_version']).split('.')[0]}"
    try:
        ctypes.CDLL(name)
    except OSError:
        return []
    return [f"TensorFlow is built with CUDA {info['cuda_version']} and {name} loads"]


def _versions(backend: str) -> str:
    names = ["keras", "tensorflow", "jax", "numpy"]
    parts = [f"python {platform.python_version()}"]
    for name in names:
        try:
            parts.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            if name == backend:
                parts.append(f"{name} not installed")
    return ", ".join(parts)


def _device_scope(backend: str, device: str):
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.device(device)
    if backend == "jax":
        import jax

        kind, index = device.split(":")
        return jax.default_device(jax.devices(kind.lower())[int(index)])
    return contextlib.nullcontext()


def train_tiny(backend: str, device: str, precision: str, jit: bool, steps: int) -> Speed:
    """Train a tiny convnet for a few steps on one device; images/s over the timed steps."""
    import keras
    import numpy as np

    speed = Speed(device, precision, jit)
    previous = keras.config.dtype_policy().name
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (DOCTOR_BATCH, DOCTOR_SIZE, DOCTOR_SIZE, 3)).astype("float32")
    y = rng.integers(0, 2, DOCTOR_BATCH)
    try:
        keras.mixed_precision.set_dtype_policy(precision)
        with _device_scope(backend, device):
            keras.utils.set_random_seed(0)
            model = keras.Sequential(
                [
                    keras.Input((DOCTOR_SIZE, DOCTOR_SIZE, 3)),
                    keras.layers.Rescaling(1 / 255),
                    keras.layers.Conv2D(16, 3, activation="relu"),
                    keras.layers.MaxPooling2D(),
                    keras.layers.Conv2D(32, 3, activation="relu"),
                    keras.layers.GlobalAveragePooling2D(),
                    keras.layers.Dense(2, activation="softmax", dtype="float32"),
                ]
            )
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss="sparse_categorical_crossentropy",
                jit_compile=jit,
            )
            losses = []
            for _ in range(DOCTOR_WARMUP):
                losses.append(float(np.asarray(model.train_on_batch(x, y))))
            start = time.perf_counter()
            for _ in range(steps):
                losses.append(float(np.asarray(model.train_on_batch(x, y))))
            elapsed = time.perf_counter() - start
        speed.images_per_s = steps * DOCTOR_BATCH / max(elapsed, 1e-9)
        speed.loss = next((v for v in losses if not math.isfinite(v)), losses[-1])
    except Exception as e:  # a device that cannot train is what the doctor is for
        lines = str(e).strip().splitlines()
        speed.error = f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
    return speed


def doctor(
    precision: str = "auto",
    xla: str = "auto",
    steps: int = DOCTOR_STEPS,
    out: Callable[[str], None] = print,
) -> list[str]:
    """Print what this machine offers and how a run would use it; returns the problems found
    (one line each; none when all is well)."""
    precision = PRECISION_ALIASES.get(precision, precision)
    problems: list[str] = []
    backend = os.environ.get("KERAS_BACKEND", "")
    try:
        import keras

        backend = keras.backend.backend()
    except Exception as e:  # e.g. KERAS_BACKEND=jax without jax installed
        out(f"versions    {_versions(backend)}")
        return [f"Keras cannot start its {backend or 'default'} backend: {str(e).strip().splitlines()[0]}"]
    out(f"backend     {backend}")
    out(f"versions    {_versions(backend)}")

    bf16 = devices.cpu_has_bf16()
    out(
        f"cpu         {devices.cpu_name()} ({os.cpu_count()} cores); bfloat16 instructions: "
        + ("yes (avx512_bf16 or amx_bf16)" if bf16 else "no")
    )
    found = devices.gpus()
    capability = devices.gpu_compute_capability() if found and backend == "tensorflow" else None
    if found:
        cap = f", compute capability {capability[0]}.{capability[1]}" if capability else ""
        out(f"gpus        {len(found)}: {', '.join(found)}{cap}")
    else:
        out("gpus        none")
    evidence = cuda_evidence()
    out(f"cuda        {'; '.join(evidence) if evidence else 'no NVIDIA driver or CUDA libraries found'}")
    if evidence and not found:
        problems.append(
            f"no GPU is visible to {backend} although CUDA is installed ({'; '.join(evidence)}): "
            "check that nvidia-smi lists the GPU and that the CUDA libraries match the driver "
            "(README, GPU)"
        )

    chosen = devices.choose_precision(precision, bool(found), bf16, capability)
    reason = devices.precision_reason(precision, bool(found), bf16, capability)
    out(f"precision   {precision} -> {chosen}: {reason}")
    jit = devices.choose_jit(xla, bool(found), backend)
    out(f"xla         {xla} -> {'on' if jit else 'off'}: {devices.jit_reason(xla, bool(found), backend)}")
    if chosen == "mixed_bfloat16":
        hardware = (capability is not None and capability >= (8, 0)) if found else bf16
        if not hardware:
            where = (
                "this GPU (compute capability below 8.0 or unknown)"
                if found
                else "this CPU (no AVX512-BF16 or AMX)"
            )
            problems.append(
                f"bfloat16 was asked for, but {where} has no bfloat16 hardware: it would be emulated, "
                "several times slower; use --precision auto"
            )

    targets = ["CPU:0"] + [f"GPU:{i}" for i in range(len(found))]
    out(
        f"speed       a tiny convnet, {DOCTOR_SIZE} px, batch {DOCTOR_BATCH}, "
        f"{steps} timed steps after {DOCTOR_WARMUP}:"
    )
    for device in targets:
        on_gpu = device.startswith("GPU")
        p = devices.choose_precision(precision, on_gpu, bf16, capability if on_gpu else None)
        j = devices.choose_jit(xla, on_gpu, backend)
        speed = train_tiny(backend, device, p, j, steps)
        head = f"  {device:<9} {p}, XLA {'on' if j else 'off'}:"
        if speed.error:
            out(f"{head} failed: {speed.error}")
            problems.append(f"training on {device} failed: {speed.error}")
        elif not math.isfinite(speed.loss):
            out(f"{head} {speed.images_per_s:.0f} images/s, loss {speed.loss}")
            problems.append(f"training on {device} ({p}) gave a loss of {speed.loss} (NaN or infinite)")
        else:
            out(f"{head} {speed.images_per_s:.0f} images/s (loss {speed.loss:.3f})")
    out("all well" if not problems else f"{len(problems)} problem(s) found")
    return problems
