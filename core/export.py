"""Export a run's model for other programs: a .keras copy, a TensorFlow SavedModel, or TensorFlow
Lite; as files in a folder or as bytes for a download."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from core import modelfile
from core.fileio import atomic_write_bytes
from core.rundir import RunError, run_dir
from core.workspace import temp_name

EXPORT_FORMATS = ("keras", "savedmodel", "tflite")


class ExportError(ValueError):
    """A model that cannot be exported in the asked format; the message says why."""


def export_model(
    run_id: str,
    fmt: str,
    out_dir: str | os.PathLike,
    which: str = "best",
    workspace: str | os.PathLike | None = None,
) -> Path:
    """Write a run's model for use outside the workbench; returns the file or folder written.

    keras:      <run>-<which>.keras, a copy of the saved model: load it with
                keras.models.load_model (Python, any Keras 3 backend; custom layers need core.models).
    savedmodel: <run>-<which>-savedmodel/, a TensorFlow SavedModel with a `serve` endpoint
                (model.export(format="tf_saved_model")): for TensorFlow Serving, TF.js or TF
                programs without Keras. TensorFlow backend only.
    tflite:     <run>-<which>.tflite, converted from that SavedModel by tf.lite.TFLiteConverter:
                for phones and small devices (LiteRT / TensorFlow Lite interpreters).
    Models take float RGB images in [0, 255], (N, S, S, 3), and return class probabilities
    ((N, 1) sigmoid for two classes). An existing output of the same name is replaced.
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    file = modelfile.model_file(run_dir(run_id, workspace), which)
    if file is None:
        raise RunError(f"run '{run_id}' has no saved model yet")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{run_id}-{file.stem}"

    if fmt == "keras":
        target = out / f"{stem}.keras"
        tmp = out / temp_name(target.name)
        shutil.copy2(file, tmp)
        os.replace(tmp, target)
        return target

    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"{fmt} export needs the TensorFlow backend; Keras runs on {keras.backend.backend()} "
            "(set KERAS_BACKEND=tensorflow)"
        )
    run = modelfile.from_run(run_id, file.stem, workspace)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as tmp_dir:
        saved = Path(tmp_dir) / "savedmodel"
        try:
            run.model.export(str(saved), format="tf_saved_model", verbose=False)
        except Exception as e:
            raise ExportError(f"could not write a SavedModel: {type(e).__name__}: {e}") from e
        if fmt == "savedmodel":
            target = out / f"{stem}-savedmodel"
            if target.exists():
                shutil.rmtree(target)
            os.replace(saved, target)
            return target
        try:
            import tensorflow as tf

            data = tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert()
        except Exception as e:
            raise ExportError(f"TensorFlow Lite conversion failed: {type(e).__name__}: {e}") from e
        target = out / f"{stem}.tflite"
        atomic_write_bytes(target, data)
        return target


def export_bytes(
    run_id: str, fmt: str, which: str = "best", workspace: str | os.PathLike | None = None
) -> tuple[str, bytes]:
    """export_model into a temporary folder, read back for a download: (file name, contents). A
    SavedModel folder comes zipped as <run>-<which>-savedmodel.zip, its files under that folder name."""
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        path = export_model(run_id, fmt, tmp, which, workspace)
        if not path.is_dir():
            return path.name, path.read_bytes()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    z.write(f, f"{path.name}/{f.relative_to(path)}")
        return f"{path.name}.zip", buf.getvalue()
