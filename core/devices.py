"""The hardware a run uses, and TensorFlow's set-up on it.

- configure_tensorflow(): GPU memory growth in every process that imports TensorFlow (the
  dashboard server, a run's worker, the CLI), so the dashboard's evaluations and explanations and a
  training run can share one GPU instead of the first process taking all of its memory.
- quiet_native_stderr(): keeps TensorFlow's C++ start-up lines off a terminal (the CLI without
  --verbose): they are written before TensorFlow's logging starts, so no log level stops them.
- Device choices: cpu_has_bf16, gpus, choose_precision, choose_jit,
  device_plan, replica_devices, distribution_scope.

``python -m core doctor`` (core.doctor) reports on all of these.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator
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


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def gpu_compute_capability() -> tuple[int, int] | None:
    """The first GPU's (major, minor) as the Keras backend sees it; None without a GPU."""
    try:
        import keras

        if keras.backend.backend() == "jax":
            import jax

            found = [d for d in jax.local_devices() if d.platform == "gpu"]
            cc = getattr(found[0], "compute_capability", None) if found else None
            return tuple(int(p) for p in str(cc).split(".")[:2]) if cc else None
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
        config.precision, bool(found), cpu_has_bf16(), gpu_compute_capability() if found else None
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
