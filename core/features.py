"""The feature cache of features mode: a pretrained base's outputs for decoded images, computed once
and kept under workspace/features/<key>.npy (key: base, weights file identity, size, precision and
the images' cache entry); and the extractor model (Preprocess, then the frozen base)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from core.config import TrainConfig
from core.fileio import replacing
from core.weights import resolve_weights, weights_file


def _features_key(config: TrainConfig, arrays_key: str, dtype_policy: str) -> str:
    """20 hex digits of the hash of what the features depend on (a weights file by its identity)."""
    weights = str(config.weights)
    file = weights_file(config)
    if file is not None and file.exists():
        st = file.stat()
        weights = f"{file.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    raw = f"{config.model}|{weights}|{config.image_size}|{dtype_policy}|{arrays_key}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def features_path(config: TrainConfig, arrays_key: str, workspace: str | os.PathLike | None) -> Path:
    """Where extract_features caches the features of these arrays for this config."""
    import keras

    from core.workspace import subdir

    key = _features_key(config, arrays_key, keras.config.dtype_policy().name)
    return subdir("features", workspace) / f"{key}.npy"


def extract_features(
    config: TrainConfig, arrays, workspace: str | os.PathLike | None, feature_model=None, progress=None
) -> tuple[np.ndarray, bool]:
    """Base outputs for cached arrays, cached on disk by base, weights, size, precision and files;
    returns (features, was_cached). Random weights (weights "none") are never cached: another
    run's random base would not match its features."""
    from keras import ops

    cacheable = resolve_weights(config) is not None
    path = features_path(config, arrays.key, workspace)
    if cacheable and path.exists():
        try:
            return np.load(path, mmap_mode="r"), True
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # damaged: extract again
    if feature_model is None:
        feature_model = feature_extractor(config)
    n, bs, parts = len(arrays), 64, []
    for i in range(0, n, bs):
        out = feature_model(np.asarray(arrays.images[i : i + bs], dtype=np.float32), training=False)
        parts.append(ops.convert_to_numpy(out).astype(np.float32))
        if progress:
            progress(min(i + bs, n), n)
    feats = np.concatenate(parts) if parts else np.zeros((0, *feature_model.output_shape[1:]), np.float32)
    if cacheable:
        with replacing(path) as tmp:
            np.save(tmp, feats)
    return feats, False


def feature_extractor(config: TrainConfig, base=None):
    """Image (float 0-255) -> base features: the Preprocess layer then the frozen base."""
    import keras

    from core import models

    if base is None:
        base = models.build_base(config.model, config.image_size, resolve_weights(config))
    inputs = keras.Input((config.image_size, config.image_size, 3), name="image")
    x = models.Preprocess(models.base_spec(config.model).preprocess)(inputs)
    return keras.Model(inputs, base(x, training=False), name="feature_extractor")
