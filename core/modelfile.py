"""One way to load a model for use: a run's best.keras / last.keras, or a .keras file from
elsewhere (an upload), always through load_model (Keras safe mode). Either way the result is a
LoadedModel: the model plus what it needs to read images (classes, input size, resize policy).
Models are saved with save_atomic."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.fileio import replacing
from core.workspace import temp_file


class ModelFileError(ValueError):
    """A model file that cannot be used (not a model, carries code, odd inputs); the message says why."""


def save_atomic(model, path: Path) -> None:
    """model.save to a temp .keras file beside `path`, then rename: readers never see half a file."""
    with replacing(path) as tmp:
        model.save(tmp)


def load_model(path: str | os.PathLike, compile: bool = True):
    """keras.models.load_model with our custom layers registered, always in safe mode: a file that
    carries Python code (Lambda layers) is refused, never run. There is no switch to turn it off."""
    import keras

    import core.models  # noqa: F401  registers Preprocess and friends

    return keras.models.load_model(path, safe_mode=True, compile=compile)


@dataclass(frozen=True)
class LoadedModel:
    """A loaded Keras model with what it needs to read images.

    source: where it came from, for people ("run <id>, best.keras" or a file name). key: the exact
    file version loaded (path and mtime, or the bytes' SHA-256), for caches. run_id, which ("best"
    or "last", the file actually read) and split: the run's, None for a model file.
    """

    model: Any
    classes: tuple[str, ...]
    input_size: int
    resize_policy: str
    source: str
    key: str
    run_id: str | None = None
    which: str | None = None
    split: str | None = None


MODEL_CHOICES = ("best", "last")  # best: lowest validation loss; last: the final epoch


def model_file(path: Path, which: str = "best") -> Path | None:
    """The model file from_run reads from run directory `path`: `which`.keras, else the other of
    best/last; None when the run saved no model yet."""
    file = path / f"{which}.keras"
    if which in MODEL_CHOICES and file.exists():
        return file
    other = path / ("last.keras" if which == "best" else "best.keras")
    return other if other.exists() else None


def runs_with_model(workspace: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """runs.list_runs(), newest first, keeping only the runs that saved a model."""
    from core.runs import list_runs

    return [r for r in list_runs(workspace) if model_file(r["path"], "best")]


def from_run(run_id: str, which: str = "best", workspace: str | os.PathLike | None = None) -> LoadedModel:
    """best.keras (or last.keras) of a run, with the run's classes, image size and resize policy."""
    from core.rundir import RunError, read_config, run_dir
    from core.runs import read_status

    path = run_dir(run_id, workspace)
    file = model_file(path, which)
    if file is None:
        raise RunError(f"run '{run_id}' has no saved model yet")
    config = read_config(path)
    classes = read_status(path).get("classes")
    if not classes:
        from core.data import load_split

        classes = load_split(config["split"], workspace).classes
    key = f"{file}:{file.stat().st_mtime_ns}"
    return LoadedModel(
        load_model(file),
        tuple(classes),
        int(config["image_size"]),
        config.get("resize_policy", "stretch"),
        source=f"run {run_id}, {file.name}",
        key=key,
        run_id=run_id,
        which=file.stem,
        split=config.get("split"),
    )


def from_file(
    path: str | os.PathLike, classes: list[str] | None = None, name: str | None = None, key: str | None = None
) -> LoadedModel:
    """A .keras file: input size from the model's input shape (square RGB only), classes from its
    output ("class 0".."class n-1" unless given; a sigmoid output means two), resize policy
    "stretch". name: what messages call the file (its name by default). Raises ModelFileError."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise ModelFileError(f"Could not load {name}: there is no such file")
    try:
        model = load_model(path, compile=False)
    except Exception as e:  # Keras raises many kinds on foreign, damaged or code-carrying files
        if "safe_mode" in str(e):
            raise ModelFileError(
                f"Could not load {name}: it carries Python code (such as a Lambda layer), "
                "and this app never runs code from model files."
            ) from None
        first = str(e).splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"Could not load {name}: {first}") from None
    shape = model.input_shape
    if not (
        isinstance(shape, tuple) and len(shape) == 4 and shape[1] and shape[1] == shape[2] and shape[3] == 3
    ):
        raise ModelFileError(
            f"{name} takes inputs of shape {shape}; the workbench works with models on square RGB images."
        )
    out = model.output_shape
    if not (isinstance(out, tuple) and len(out) == 2 and out[1]):
        raise ModelFileError(f"{name} gives outputs of shape {out}; the workbench needs class probabilities.")
    n = 2 if out[1] == 1 else int(out[1])
    if classes is not None and len(classes) != n:
        raise ModelFileError(f"{name} predicts {n} classes, not {len(classes)}")
    return LoadedModel(
        model,
        tuple(classes) if classes is not None else tuple(f"class {i}" for i in range(n)),
        int(shape[1]),
        "stretch",
        source=name,
        key=key or f"{path.resolve()}:{path.stat().st_mtime_ns}",
    )


def from_bytes(
    data: bytes, name: str, classes: list[str] | None = None, workspace: str | os.PathLike | None = None
) -> LoadedModel:
    """An uploaded .keras file's bytes: written to a temporary file in the workspace, loaded with
    from_file, and the file removed again. The key is the bytes' SHA-256."""
    with temp_file(data, ".keras", workspace) as path:
        return from_file(path, classes, name=name, key=f"sha256:{hashlib.sha256(data).hexdigest()}")
