"""Evaluate a run's model (core.modelfile loads it) on a subset of its split: metrics, top losses and
per-picture predictions, cached in the run directory until the model file or the data change."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import metrics, modelfile
from core.fileio import atomic_write_json, atomic_write_text, read_json
from core.rundir import RunError, read_config, run_dir

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

    path = run_dir(run_id, workspace)
    config = read_config(path)
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
