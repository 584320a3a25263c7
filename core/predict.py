"""Predictions for pictures: class probabilities for a batch of images, and the top class of each
file or upload (unreadable ones get an error, not an exception)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import modelfile
from core.images import ImageError, is_image_name, load_resized


def probabilities(
    model, images: np.ndarray, batch_size: int = 32, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, C) class probabilities; a sigmoid output p becomes [1 - p, p].

    progress(done, total) is called after each batch.
    """
    out = []
    for i in range(0, len(images), batch_size):
        p = np.asarray(
            model(np.asarray(images[i : i + batch_size], dtype=np.float32), training=False), dtype=np.float64
        )
        out.append(np.concatenate([1 - p, p], axis=1) if p.shape[1] == 1 else p)
        if progress:
            progress(min(i + batch_size, len(images)), len(images))
    return np.concatenate(out) if out else np.zeros((0, 0))


@dataclass
class Prediction:
    """One file's outcome: the top class and all probabilities, or why it could not be read."""

    path: str
    label: str | None
    probability: float | None
    probabilities: dict[str, float]
    error: str | None = None


def predict_sources(run: modelfile.LoadedModel, sources: list[tuple[str, object]]) -> list[Prediction]:
    """Predict (name, path-or-bytes) pairs; unreadable ones get an error, not an exception."""
    size = (run.input_size, run.input_size)
    images, names, results = [], [], {}
    for name, src in sources:
        try:
            images.append(load_resized(src, size, run.resize_policy))
            names.append(name)
        except (ImageError, OSError) as e:
            results[name] = Prediction(name, None, None, {}, error=str(e))
    if images:
        probs = probabilities(run.model, np.stack(images))
        for name, p in zip(names, probs):
            k = int(np.argmax(p))
            results[name] = Prediction(
                name, run.classes[k], float(p[k]), dict(zip(run.classes, map(float, p)))
            )
    return [results[name] for name, _ in sources]


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under a folder (recursive, hidden files skipped), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and is_image_name(p.name)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def predict_paths(run: modelfile.LoadedModel, paths: list[str | os.PathLike]) -> list[Prediction]:
    return predict_sources(run, [(str(p), p) for p in paths])
