"""The hardware a run uses, and TensorFlow's set-up on it.

- configure_tensorflow(): GPU memory growth in every process that imports TensorFlow (the
  dashboard server, a run's worker, the CLI), so the dashboard's evaluations and explanations and a
  training run can share one GPU instead of the first process taking all of its memory.
- quiet_native_stderr(): keeps TensorFlow's C++ start-up lines off a terminal (the CLI without
  --verbose): they are written before TensorFlow's logging starts, so no log level stops them.
- Device choices (core.train re-exports them): cpu_has_bf16, gpus, choose_precision, choose_jit,
  device_plan, replica_devices, distribution_scope.
- doctor(): ``python -m core doctor``: backend, versions, devices, the precision and XLA choices
  and why, a few timed training steps of a tiny net on each device, and what looks wrong.
"""

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.config import TrainConfig

GROWTH_ENV = "TF_FORCE_GPU_ALLOW_GROWTH"  # TensorFlow reads it when it creates its GPU devices
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"

# What configure_tensorflow did in this process: called at all, and the GPUs given memory growth
# (None until TensorFlow has been asked for its GPUs).
_state: dict[str, Any] = {"called": False, "gpus": None}


# ---------------------------------------------------------------------------- TensorFlow set-up


def configure_tensorflow(defer: bool = False, quiet: bool = False) -> list[str] | None:
    """Let this process share its GPUs: memory growth on every physical GPU (TensorFlow then takes
    GPU memory as it needs it, not all of it at start), set before any op runs.

    Call it first thing in every process that imports TensorFlow. Idempotent. Sets
    TF_FORCE_GPU_ALLOW_GROWTH=true in os.environ (unless already set), which TensorFlow also honours
    and which processes started from this one inherit. On other Keras backends it does nothing more.

    defer: only set the environment variable now and leave importing TensorFlow for later (the run
    worker waits in the queue without TensorFlow); gpus() applies memory growth when TensorFlow is
    first asked for its devices. quiet: import TensorFlow under quiet_native_stderr().
    Returns the names of the GPUs given memory growth ([] when none, or another backend), or None
    when deferred.
    """
    os.environ.setdefault(GROWTH_ENV, "true")
    _state["called"] = True
    if _state["gpus"] is not None:
        return list(_state["gpus"])
    if defer and "tensorflow" not in sys.modules:
        return None
    with quiet_native_stderr(quiet):
        import keras

        if keras.backend.backend() != "tensorflow":
            _state["gpus"] = []
            return []
        import tensorflow as tf

        found = tf.config.list_physical_devices("GPU")
        for gpu in found:
            # RuntimeError: the runtime already started (an op ran first); the variable may still
            # have done it, since TensorFlow reads it when it creates the devices.
            with contextlib.suppress(RuntimeError):
                tf.config.experimental.set_memory_growth(gpu, True)
    _state["gpus"] = [gpu.name for gpu in found]
    return list(_state["gpus"])


def tensorflow_configured() -> dict[str, Any]:
    """What configure_tensorflow did in this process: {"called": bool, "gpus": list | None}."""
    return {"called": _state["called"], "gpus": None if _state["gpus"] is None else list(_state["gpus"])}


@contextlib.contextmanager
def quiet_native_stderr(enabled: bool = True) -> Iterator[None]:
    """Send what is written to file descriptor 2 (native code included) to a temporary file while
    the block runs, with TF_CPP_MIN_LOG_LEVEL=3 for TensorFlow's later C++ messages (it reads the
    level once, so the previous value is put back for child processes, e.g. run workers, whose
    log.txt keeps TensorFlow's messages). What was hidden stays hidden, even if the block raises:
    run without it (the CLI's --verbose) to see it."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to hide
        yield
        return
    old_level = os.environ.get(LOG_LEVEL_ENV)
    os.environ[LOG_LEVEL_ENV] = "3"
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if old_level is None:
            os.environ.pop(LOG_LEVEL_ENV, None)
        else:
            os.environ[LOG_LEVEL_ENV] = old_level


# ---------------------------------------------------------------------------- device choices


def cpu_has_bf16() -> bool:
    """True when this CPU has native bfloat16 math (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def gpus() -> list[str]:
    """The GPUs the Keras backend sees (on TensorFlow, given memory growth first)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        configure_tensorflow()
        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if keras.backend.backend() == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    return []


def _gpu_compute_capability() -> tuple[int, int] | None:
    try:
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        return tuple(details.get("compute_capability") or ()) or None
    except Exception:
        return None


def choose_precision(
    requested: str, has_gpu: bool, cpu_bf16: bool, capability: tuple[int, int] | None
) -> str:
    """auto: bfloat16 where the hardware has it (recent GPUs, AMX/AVX512-BF16 CPUs), float16 on older GPUs."""
    if requested != "auto":
        return requested
    if has_gpu:
        return "mixed_bfloat16" if capability and capability >= (8, 0) else "mixed_float16"
    return "mixed_bfloat16" if cpu_bf16 else "float32"


def precision_reason(
    requested: str, has_gpu: bool, cpu_bf16: bool, capability: tuple[int, int] | None
) -> str:
    """Why choose_precision picks what it picks, in words."""
    if requested != "auto":
        return "asked for"
    if has_gpu:
        if capability and capability >= (8, 0):
            return f"the GPU (compute capability {capability[0]}.{capability[1]}) has bfloat16 units"
        known = f"{capability[0]}.{capability[1]}" if capability else "unknown"
        return f"the GPU predates bfloat16 (compute capability {known}, below 8.0): float16 with loss scaling"
    if cpu_bf16:
        return "no GPU; the CPU has bfloat16 instructions (AVX512-BF16 or AMX)"
    return "no GPU, and the CPU has no AVX512-BF16 or AMX (bfloat16 would be emulated, several times slower)"


def choose_jit(requested: str, has_gpu: bool, backend: str = "tensorflow") -> bool:
    """auto: XLA on GPUs only with TensorFlow (on CPUs it made training 3-4x slower here);
    always with JAX, whose only alternative is running op by op."""
    if requested in ("on", "off"):
        return requested == "on"
    return has_gpu or backend == "jax"


def jit_reason(requested: str, has_gpu: bool, backend: str = "tensorflow") -> str:
    """Why choose_jit picks what it picks, in words."""
    if requested in ("on", "off"):
        return "asked for"
    if backend == "jax":
        return "JAX compiles every step (without it, it runs op by op)"
    if has_gpu:
        return "a GPU: XLA fuses operations there"
    return "TensorFlow on a CPU: XLA made training 3-4x slower here"


def device_plan(config: TrainConfig) -> dict[str, Any]:
    """What this machine will use for the config: backend, device, precision, XLA, replicas."""
    import keras

    found = gpus()
    precision = choose_precision(
        config.precision, bool(found), cpu_has_bf16(), _gpu_compute_capability() if found else None
    )
    return {
        "backend": keras.backend.backend(),
        "device": f"{len(found)} GPU(s)" if found else "CPU",
        "gpus": len(found),
        "precision": precision,
        "jit_compile": choose_jit(config.jit_compile, bool(found), keras.backend.backend()),
    }


def replica_devices(n_gpus: int) -> list[str]:
    """The devices data parallelism spreads a run over: every GPU when there are two or more, else none.

    n_gpus: the physical GPU count (device_plan's); logical devices are listed only when it is >= 2,
    since listing them starts the TF runtime.
    """
    import keras

    if n_gpus < 2:
        return []
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices("GPU")]
    if keras.backend.backend() == "jax":
        return keras.distribution.list_devices("gpu")
    return []


def distribution_scope(devices: list[str]):
    """Data parallelism over two or more devices: MirroredStrategy (TensorFlow) or DataParallel (JAX)."""
    import keras

    if len(devices) < 2:
        return contextlib.nullcontext()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy(devices=devices).scope()
    if keras.backend.backend() == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------- doctor

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


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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

    bf16 = cpu_has_bf16()
    out(
        f"cpu         {cpu_name()} ({os.cpu_count()} cores); bfloat16 instructions: "
        + ("yes (avx512_bf16 or amx_bf16)" if bf16 else "no")
    )
    found = gpus()
    capability = _gpu_compute_capability() if found and backend == "tensorflow" else None
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

    chosen = choose_precision(precision, bool(found), bf16, capability)
    out(f"precision   {precision} -> {chosen}: {precision_reason(precision, bool(found), bf16, capability)}")
    jit = choose_jit(xla, bool(found), backend)
    out(f"xla         {xla} -> {'on' if jit else 'off'}: {jit_reason(xla, bool(found), backend)}")
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

    devices = ["CPU:0"] + [f"GPU:{i}" for i in range(len(found))]
    out(
        f"speed       a tiny convnet, {DOCTOR_SIZE} px, batch {DOCTOR_BATCH}, "
        f"{steps} timed steps after {DOCTOR_WARMUP}:"
    )
    for device in devices:
        on_gpu = device.startswith("GPU")
        p = choose_precision(precision, on_gpu, bf16, capability if on_gpu else None)
        j = choose_jit(xla, on_gpu, backend)
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
