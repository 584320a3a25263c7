"""Which weights a config's pretrained base starts from (ImageNet, a local file, or none), and
whether ImageNet weights can be had: in Keras's download cache, or downloadable now."""

from __future__ import annotations

import os
from pathlib import Path

from core.config import ConfigError, TrainConfig


def resolve_weights(config: TrainConfig) -> str | None:
    """keras.applications' `weights`: "imagenet", a file path, or None for random weights."""
    return None if config.weights in ("none", "", None) else config.weights


def weights_file(config: TrainConfig) -> Path | None:
    """The local weights file the config names, if it names one."""
    weights = resolve_weights(config)
    return None if weights in (None, "imagenet") else Path(weights).expanduser()


IMAGENET_HOST = "https://storage.googleapis.com/"  # where Keras downloads ImageNet weights from
REACH_TIMEOUT_S = 3.0


def keras_cached_weights(file_name: str) -> Path | None:
    """Keras's downloaded copy of a weights file, if this machine has it: $KERAS_HOME/models
    (default ~/.keras/models), or /tmp/.keras/models where Keras goes when home is not writable."""
    home = Path(os.environ["KERAS_HOME"]) if "KERAS_HOME" in os.environ else Path.home() / ".keras"
    for folder in (home, Path("/tmp/.keras")):
        path = folder.expanduser() / "models" / file_name
        if path.is_file():
            return path
    return None


def can_download(url: str = IMAGENET_HOST, timeout: float = REACH_TIMEOUT_S) -> bool:
    """True when url answers within about timeout seconds (through the proxies urllib honours, as
    Keras's own download does); False offline."""
    import threading
    import urllib.error
    import urllib.request

    answered: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            answered.append(True)
        except urllib.error.HTTPError:  # the host answered, if not with 200
            answered.append(True)
        except Exception:
            answered.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # a name lookup can outlast the timeout
    thread.start()
    thread.join(timeout + 1)
    return bool(answered and answered[0])


def check_imagenet_weights(config: TrainConfig) -> None:
    """ConfigError when a config needs ImageNet weights that are not in Keras's download cache
    and cannot be downloaded."""
    from core import models

    spec = models.base_spec(config.model)
    file_name = spec.keras_weights_file(config.image_size)
    if keras_cached_weights(file_name) is None and not can_download():
        raise ConfigError(
            f"weights: the ImageNet weights for {spec.title} ({file_name}) are not on this machine and "
            "cannot be downloaded (no internet); give a weights file (--weights /path/file.h5) or train "
            "without (--weights none)"
        )
