"""Predictions for pictures: the top class and probabilities of each file or upload (unreadable
ones get an error, not an exception); the batched probabilities are core.models.probabilities."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import modelfile
from core.images import ImageError, is_image_name, load_resized


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
    from core.models import probabilities

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
