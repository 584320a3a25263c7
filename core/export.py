"""Export a run's model for other programs: a .keras copy, a TensorFlow SavedModel, or TensorFlow
Lite; as files in a folder or as bytes for a download. SavedModel and TensorFlow Lite exports are
run before they are offered (core.export_check): one that does not answer like the model is refused."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import export_check, modelfile
from core.export_check import ExportCheck
from core.rundir import RunError, run_dir
from core.workspace import temp_name

EXPORT_FORMATS = ("keras", "savedmodel", "tflite")


class ExportError(ValueError):
    """A model that cannot be exported in the asked format; the message says why."""


@dataclass(frozen=True)
class Exported:
    """What export_model wrote, and how it answered when run (None for the .keras copy: the file itself)."""

    path: Path
    check: ExportCheck | None


@dataclass(frozen=True)
class Download:
    """An export as one file's name and contents, with its check (see Exported)."""

    name: str
    data: bytes
    check: ExportCheck | None


def float32_model(model: Any) -> tuple[Any, str | None]:
    """The model computing in float32, and the mixed precision policy it had (None: it was float32
    already, and comes back as is). Mixed precision keeps weights in float32, so nothing is lost;
    TensorFlow Lite has no bfloat16 kernels, and phones rarely do."""
    found: list[str] = []

    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            name = (
                str((o.get("config") or {}).get("name", "")) if o.get("class_name") == "DTypePolicy" else ""
            )
            if name.startswith("mixed_"):
                found.append(name)
                return {**o, "config": {**o["config"], "name": "float32"}}
            return {k: walk(v) for k, v in o.items()}
        return [walk(v) for v in o] if isinstance(o, list) else o

    config = walk(model.get_config())
    if not found:
        return model, None
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy, found[0]


def write_savedmodel(model: Any, folder: Path) -> None:
    """A TensorFlow SavedModel with a `serve` endpoint (model.export)."""
    model.export(str(folder), format="tf_saved_model", verbose=False)


def convert_tflite(saved: Path) -> bytes:
    """A SavedModel folder converted to a TensorFlow Lite flat buffer."""
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert()


def _precision_note(policy: str, original: Any, images, reference) -> str:
    """What the check means for a mixed precision model (its workbench answers are rounded)."""
    import numpy as np

    from core.models import probabilities

    rounded = probabilities(original, images)
    diff = float(np.abs(rounded - reference).max())
    differ = int((rounded.argmax(axis=1) != reference.argmax(axis=1)).sum())
    answers = f", {differ} answers differ" if differ else ""
    return (
        f". The model trained in {policy.removeprefix('mixed_')}, which keeps only about 3 digits: the file "
        "computes in full precision (float32) and was checked against the model doing the same; the "
        f"workbench's own rounded answers differ from it by up to {diff:.3f}{answers}."
    )


def export_model(
    run_id: str,
    fmt: str,
    out_dir: str | os.PathLike,
    which: str = "best",
    workspace: str | os.PathLike | None = None,
) -> Exported:
    """Write a run's model for use outside the workbench: the file or folder written and its check.

    keras:      <run>-<which>.keras, a copy of the saved model: load it with
                keras.models.load_model (Python, any Keras 3 backend; custom layers need core.models).
    savedmodel: <run>-<which>-savedmodel/, a TensorFlow SavedModel with a `serve` endpoint
                (model.export(format="tf_saved_model")): for TensorFlow Serving, TF.js or TF
                programs without Keras. TensorFlow backend only.
    tflite:     <run>-<which>.tflite, converted from that SavedModel by tf.lite.TFLiteConverter:
                for phones and small devices (LiteRT / TensorFlow Lite interpreters).
    Models take float RGB images in [0, 255], (N, S, S, 3), and return class probabilities
    ((N, 1) sigmoid for two classes); mixed precision models are exported computing in float32.
    SavedModel and TFLite exports are run on the run's test pictures first (export_check); one that
    does not give the model's class for every picture and its probabilities within 1e-3 raises
    ExportError with the numbers, and nothing is written. An existing output of the same name is
    replaced only by an export that passed.
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
        return Exported(target, None)

    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"{fmt} export needs the TensorFlow backend; Keras runs on {keras.backend.backend()} "
            "(set KERAS_BACKEND=tensorflow)"
        )
    from core.models import probabilities

    run = modelfile.from_run(run_id, file.stem, workspace)
    model, policy = float32_model(run.model)
    images, what = export_check.check_pictures(run, workspace)
    reference = probabilities(model, images)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out) as tmp_dir:
        saved = Path(tmp_dir) / "savedmodel"
        try:
            write_savedmodel(model, saved)
        except Exception as e:
            raise ExportError(f"could not write a SavedModel: {type(e).__name__}: {e}") from e
        if fmt == "savedmodel":
            made, target = saved, out / f"{stem}-savedmodel"
            got = export_check.savedmodel_probabilities(saved, images)
        else:
            try:
                data = convert_tflite(saved)
            except Exception as e:
                raise ExportError(f"TensorFlow Lite conversion failed: {type(e).__name__}: {e}") from e
            made, target = Path(tmp_dir) / "model.tflite", out / f"{stem}.tflite"
            made.write_bytes(data)
            got = export_check.tflite_probabilities(made, images)
        check = export_check.compare(fmt, reference, got, what)
        if policy is not None:
            note = _precision_note(policy, run.model, images, reference)
            check = dataclasses.replace(check, message=check.message.rstrip(".") + note)
        if not check.passed:
            raise ExportError(check.message)  # the temporary folder, and the broken file, go with it
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(made, target)
        return Exported(target, check)


def export_bytes(
    run_id: str, fmt: str, which: str = "best", workspace: str | os.PathLike | None = None
) -> Download:
    """export_model into a temporary folder, read back for a download. A SavedModel folder comes
    zipped as <run>-<which>-savedmodel.zip, its files under that folder name."""
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        done = export_model(run_id, fmt, tmp, which, workspace)
        path = done.path
        if not path.is_dir():
            return Download(path.name, path.read_bytes(), done.check)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(path.rglob("*")):
                if f.is_file():
                    z.write(f, f"{path.name}/{f.relative_to(path)}")
        return Download(f"{path.name}.zip", buf.getvalue(), done.check)
