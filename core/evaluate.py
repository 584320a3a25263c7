"""Use a run's model: load it, and predict classes for images, files and folders."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.fileio import read_json
from core.images import ImageError, is_image_name, load_resized


@dataclass
class RunModel:
    """A loaded model with what it needs to read images: classes, input size, resize policy."""

    model: object
    classes: list[str]
    image_size: int
    resize_policy: str
    run_id: str
    which: str


def load_run_model(run_id: str, which: str = "best", workspace: str | os.PathLike | None = None) -> RunModel:
    """best.keras (or last.keras) of a run, loaded in Keras safe mode (no Lambda code runs)."""
    from core.runs import RunError, read_status, run_dir
    from core.train import load_model

    path = run_dir(run_id, workspace)
    file = path / f"{which}.keras"
    if which not in ("best", "last") or not file.exists():
        other = path / ("last.keras" if which == "best" else "best.keras")
        if not other.exists():
            raise RunError(f"run '{run_id}' has no saved model yet")
        file, which = other, other.stem
    config = read_json(path / "config.json")
    classes = read_status(path).get("classes")
    if not classes:
        from core.data import load_split

        classes = load_split(config["split"], workspace).classes
    return RunModel(
        load_model(file),
        list(classes),
        int(config["image_size"]),
        config.get("resize_policy", "stretch"),
        run_id,
        which,
    )


def probabilities(model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, C) class probabilities; a sigmoid output p becomes [1 - p, p]."""
    out = []
    for i in range(0, len(images), batch_size):
        p = np.asarray(
            model(np.asarray(images[i : i + batch_size], dtype=np.float32), training=False), dtype=np.float64
        )
        out.append(np.concatenate([1 - p, p], axis=1) if p.shape[1] == 1 else p)
    return np.concatenate(out) if out else np.zeros((0, 0))


@dataclass
class Prediction:
    """One file's outcome: the top class and all probabilities, or why it could not be read."""

    path: str
    label: str | None
    probability: float | None
    probabilities: dict[str, float]
    error: str | None = None


def predict_sources(run: RunModel, sources: list[tuple[str, object]]) -> list[Prediction]:
    """Predict (name, path-or-bytes) pairs; unreadable ones get an error, not an exception."""
    size = (run.image_size, run.image_size)
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


def predict_paths(run: RunModel, paths: list[str | os.PathLike]) -> list[Prediction]:
    return predict_sources(run, [(str(p), p) for p in paths])
