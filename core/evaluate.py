"""Use a model (core.modelfile loads it): predict classes for images, files and folders, evaluate a
run's model on a subset of its split (metrics cached in the run directory), and export it for other
programs."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import metrics, modelfile
from core.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from core.images import ImageError, is_image_name, load_resized
from core.workspace import temp_name


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


# ---------------------------------------------------------------------------- evaluation

EVAL_VERSION = 1
TOP_LOSSES = 30  # how many most-confidently-wrong pictures an evaluation keeps
EVAL_BATCH_SIZE = 32
EvalProgress = Callable[[str, int, int], None]  # (stage "decoding" | "predicting", done, total)


class EvaluationError(ValueError):
    """An evaluation that cannot be done (empty subset, classes that do not match...)."""


@dataclass
class EvalResult:
    """A run's model measured on one subset of its split.

    confusion: (C, C) counts, rows true, columns predicted. report: metrics.per_class_report rows.
    roc: metrics.RocOneVsRest. top_losses: the most confidently wrong pictures, worst first, as
    dicts {index, path (relative to dataset_root), file (absolute), true, pred, prob (of pred),
    true_prob, loss}. paths/labels/probs: per picture, in the subset's order (pictures that could
    not be decoded are left out and listed in failed). which is the model file actually used.
    """

    run_id: str
    which: str
    subset: str
    classes: list[str]
    n: int
    accuracy: float
    loss: float
    confusion: np.ndarray
    report: list[dict]
    roc: metrics.RocOneVsRest
    top_losses: list[dict]
    paths: list[str]
    labels: np.ndarray
    probs: np.ndarray
    dataset_root: str = ""
    failed: list[tuple[str, str]] = field(default_factory=list)
    created: float = 0.0
    key: dict = field(default_factory=dict)
    cached: bool = False  # True when read back from the run directory instead of computed

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1) if len(self.probs) else np.zeros(0, dtype=np.int64)

    def to_json(self) -> dict:
        """Everything but probs (those are in the predictions CSV)."""
        return {
            "version": EVAL_VERSION,
            "key": self.key,
            "run_id": self.run_id,
            "which": self.which,
            "subset": self.subset,
            "created": self.created,
            "classes": self.classes,
            "n": self.n,
            "accuracy": self.accuracy,
            "loss": self.loss,
            "confusion": self.confusion.tolist(),
            "report": self.report,
            "roc": self.roc.to_dict(),
            "top_losses": self.top_losses,
            "dataset_root": self.dataset_root,
            "paths": self.paths,
            "labels": [int(y) for y in self.labels],
            "failed": [list(f) for f in self.failed],
        }


def eval_paths(run_path: Path, which: str, subset: str) -> tuple[Path, Path]:
    """The cached evaluation's JSON and predictions CSV in a run directory."""
    return run_path / f"eval-{which}-{subset}.json", run_path / f"predictions-{which}-{subset}.csv"


def _eval_key(file: Path, split, subset: str, config: dict) -> dict:
    """What an evaluation depends on: the model file (name, size, mtime), the split (fingerprint,
    the subset's files and labels, the files' sizes and mtimes now), image size and resize policy."""
    from core.data import fingerprint_files

    st = file.stat()
    items = split.subsets[subset]
    listing = hashlib.sha256("\n".join(f"{p}\t{y}" for p, y in items).encode()).hexdigest()[:16]
    return {
        "version": EVAL_VERSION,
        "model_file": file.name,
        "model_size": st.st_size,
        "model_mtime_ns": st.st_mtime_ns,
        "split": split.name,
        "split_fingerprint": split.fingerprint,
        "subset": subset,
        "subset_listing": listing,
        "files_now": fingerprint_files(split.dataset_root, [p for p, _ in items]),
        "image_size": int(config["image_size"]),
        "resize_policy": config.get("resize_policy", "stretch"),
    }


def _prob_column(name: str) -> str:
    return f"prob_{name}"


def _predictions_csv(paths: list[str], labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "true", "predicted", *map(_prob_column, classes)])
    pred = probs.argmax(axis=1)
    for path, y, k, p in zip(paths, labels, pred, probs):
        # repr: the shortest text that reads back as the same float, so cached metrics match.
        w.writerow([path, classes[int(y)], classes[int(k)], *(repr(float(v)) for v in p)])
    return buf.getvalue()


def read_predictions(csv_path: Path, classes: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(paths, true labels, probs) back from a predictions CSV."""
    index = {c: i for i, c in enumerate(classes)}
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header != ["path", "true", "predicted", *map(_prob_column, classes)]:
            raise ValueError("predictions file has other columns")
        paths, labels, probs = [], [], []
        for row in reader:
            paths.append(row[0])
            labels.append(index[row[1]])
            probs.append([float(v) for v in row[3:]])
    return (
        paths,
        np.asarray(labels, dtype=np.int64),
        np.asarray(probs, dtype=np.float64).reshape(-1, len(classes)),
    )


def _from_json(d: dict, paths: list[str], labels: np.ndarray, probs: np.ndarray) -> EvalResult:
    return EvalResult(
        run_id=d["run_id"],
        which=d["which"],
        subset=d["subset"],
        classes=list(d["classes"]),
        n=int(d["n"]),
        accuracy=float(d["accuracy"]),
        loss=float(d["loss"]),
        confusion=np.asarray(d["confusion"], dtype=np.int64),
        report=d["report"],
        roc=metrics.RocOneVsRest.from_dict(d["roc"]),
        top_losses=d["top_losses"],
        paths=paths,
        labels=labels,
        probs=probs,
        dataset_root=d.get("dataset_root", ""),
        failed=[tuple(f) for f in d.get("failed", [])],
        created=float(d.get("created", 0.0)),
        key=d["key"],
        cached=True,
    )


def _run_context(run_id: str, which: str, subset: str, workspace):
    from core.data import load_split
    from core.rundir import RunError, run_dir

    path = run_dir(run_id, workspace)
    config = read_json(path / "config.json")
    file = modelfile.model_file(path, which)
    if file is None:
        raise RunError(f"run '{run_id}' has no saved model yet")
    split = load_split(config["split"], workspace)
    if subset not in split.subsets:
        raise EvaluationError(f"split '{split.name}' has no subset {subset!r}")
    return path, config, file, split


def cached_evaluation(
    run_id: str, which: str = "best", subset: str = "test", workspace: str | os.PathLike | None = None
) -> EvalResult | None:
    """The stored evaluation when it still matches the model file and the split; else None."""
    path, config, file, split = _run_context(run_id, which, subset, workspace)
    return _load_cached(path, which, subset, _eval_key(file, split, subset, config))


def _load_cached(path: Path, which: str, subset: str, key: dict) -> EvalResult | None:
    json_path, csv_path = eval_paths(path, which, subset)
    try:
        d = read_json(json_path)
        if d.get("key") != key or d.get("csv_sha256") != _sha256(csv_path.read_bytes()):
            return None
        paths, labels, probs = read_predictions(csv_path, d["classes"])
        if paths != d["paths"] or labels.tolist() != d["labels"]:
            return None
        return _from_json(d, paths, labels, probs)
    except (OSError, ValueError, KeyError, TypeError, IndexError, StopIteration):
        return None


def compute_metrics(
    labels: np.ndarray, probs: np.ndarray, classes: list[str], paths: list[str], dataset_root: str = ""
) -> dict[str, Any]:
    """accuracy, loss, confusion, report, roc and top_losses for true labels and probabilities."""
    labels = np.asarray(labels, dtype=np.int64)
    pred = probs.argmax(axis=1)
    confusion = metrics.confusion_matrix(labels, pred, len(classes))
    losses = metrics.per_sample_loss(labels, probs)
    worst = [
        {
            "index": i,
            "path": paths[i],
            "file": str(Path(dataset_root) / paths[i]) if dataset_root else paths[i],
            "true": classes[int(labels[i])],
            "pred": classes[int(pred[i])],
            "prob": float(probs[i, pred[i]]),
            "true_prob": float(probs[i, labels[i]]),
            "loss": float(losses[i]),
        }
        for i in metrics.top_losses(labels, probs, TOP_LOSSES)
    ]
    return {
        "accuracy": metrics.accuracy(labels, pred),
        "loss": float(losses.mean()),
        "confusion": confusion,
        "report": metrics.per_class_report(confusion, classes),
        "roc": metrics.roc_one_vs_rest(labels, probs, drop_intermediate=True),
        "top_losses": worst,
    }


def evaluate_run(
    run_id: str,
    which: str = "best",
    subset: str = "test",
    workspace: str | os.PathLike | None = None,
    progress: EvalProgress | None = None,
    refresh: bool = False,
) -> EvalResult:
    """Measure a run's model (best or last) on a subset (train, val or test) of its split.

    The result is stored in the run directory (eval-<which>-<subset>.json, and
    predictions-<which>-<subset>.csv with path, true, predicted and one probability column per
    class), keyed by the model file's size and mtime and the split's files, so asking again
    returns it without loading the model, until best.keras (or the data) changes. refresh=True
    computes it anew. progress(stage, done, total) reports decoding and predicting.
    """
    from core import cache
    from core.models import probabilities

    path, config, file, split = _run_context(run_id, which, subset, workspace)
    key = _eval_key(file, split, subset, config)
    if not refresh:
        found = _load_cached(path, which, subset, key)
        if found is not None:
            return found

    if not split.subsets[subset]:
        raise EvaluationError(f"the {subset} subset of split '{split.name}' is empty")
    size = int(config["image_size"])
    policy = config.get("resize_policy", "stretch")
    arrays = cache.split_arrays(
        split,
        subset,
        (size, size),
        policy,
        workspace=path.parents[1],
        progress=(lambda d, t: progress("decoding", d, t)) if progress else None,
    )
    if len(arrays) == 0:
        raise EvaluationError(f"the {subset} subset of split '{split.name}' has no usable images")
    run = modelfile.from_run(run_id, which, workspace)
    if list(run.classes) != list(split.classes):
        raise EvaluationError(
            f"the model's classes ({', '.join(run.classes)}) differ from split '{split.name}' "
            f"({', '.join(split.classes)})"
        )
    probs = probabilities(
        run.model,
        arrays.images,
        EVAL_BATCH_SIZE,
        progress=(lambda d, t: progress("predicting", d, t)) if progress else None,
    )
    if probs.shape[1] != len(split.classes):
        raise EvaluationError(
            f"the model predicts {probs.shape[1]} classes, the split has {len(split.classes)}"
        )
    labels = np.asarray(arrays.labels, dtype=np.int64)
    paths = list(arrays.paths)
    result = EvalResult(
        run_id=run_id,
        which=run.which,
        subset=subset,
        classes=list(split.classes),
        n=len(labels),
        paths=paths,
        labels=labels,
        probs=probs,
        dataset_root=split.dataset_root,
        failed=list(arrays.failed),
        created=time.time(),
        key=key,
        **compute_metrics(labels, probs, list(split.classes), paths, split.dataset_root),
    )
    json_path, csv_path = eval_paths(path, which, subset)
    text = _predictions_csv(paths, labels, probs, result.classes)
    atomic_write_text(csv_path, text)
    # Last, with the CSV's hash: a CSV from another (concurrent) evaluation is noticed on reading.
    atomic_write_json(json_path, {**result.to_json(), "csv_sha256": _sha256(text.encode("utf-8"))})
    return result


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- export

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
    from core.rundir import RunError, run_dir

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
