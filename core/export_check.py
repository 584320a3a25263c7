"""Check an export by running it: the SavedModel (tf.saved_model.load) and the TensorFlow Lite file
(the TFLite interpreter) must give the Keras model's class for every picture and its probabilities
within TOLERANCE, on pictures of the run's own split."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.modelfile import LoadedModel

TOLERANCE = 1e-3  # largest allowed |p_export - p_keras| for any class of any picture
CHECK_PICTURES = 24  # pictures taken for the check
MIN_PICTURES = 20  # below this, seeded noise pictures fill up the check
FORMAT_NAMES = {"savedmodel": "SavedModel", "tflite": "TensorFlow Lite file"}


@dataclass(frozen=True)
class ExportCheck:
    """The outcome of running an export on `n` pictures next to the Keras model.

    same_class: the export picks the Keras model's class for every picture. max_abs_diff: the
    largest difference of any class probability. passed: same_class and max_abs_diff <= TOLERANCE.
    message: one sentence for people, with the numbers.
    """

    format: str
    n: int
    same_class: bool
    max_abs_diff: float
    passed: bool
    message: str


def _spread(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n) (subsets are ordered by class, so every class shows)."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int)) if n else np.zeros(0, int)


def check_pictures(
    loaded: LoadedModel, workspace: str | os.PathLike | None = None, count: int = CHECK_PICTURES
) -> tuple[np.ndarray, str]:
    """Up to `count` pictures (N, S, S, 3) uint8 at the model's input size and resize policy, and
    what they are for a sentence ("test pictures"). The run's test pictures come first, then its
    validation and training ones when the test set is small (decoded through core.cache, as
    Evaluate does); seeded noise pictures fill up to MIN_PICTURES when the split has too few or
    cannot be read."""
    from core import cache
    from core.data import load_split
    from core.errors import DataError

    size = (loaded.input_size, loaded.input_size)
    taken: list[np.ndarray] = []
    used: list[str] = []
    try:
        split = load_split(loaded.split or "", workspace)
        for subset, name in (("test", "test"), ("val", "validation"), ("train", "training")):
            if sum(len(t) for t in taken) >= MIN_PICTURES or not split.subsets.get(subset):
                continue
            arrays = cache.split_arrays(split, subset, size, loaded.resize_policy, workspace=workspace)
            have = sum(len(t) for t in taken)
            picked = np.asarray(arrays.images)[_spread(len(arrays), count - have)]
            if len(picked):
                taken.append(picked)
                used.append(name)
    except (DataError, OSError, ValueError, KeyError):
        pass  # a deleted dataset or split: the noise pictures below still check the export
    images = np.concatenate(taken) if taken else np.zeros((0, *size, 3), np.uint8)
    what = (", ".join(used[:-1]) + " and " + used[-1] if len(used) > 1 else "".join(used)) + " pictures"
    if len(images) < MIN_PICTURES:
        noise = np.random.default_rng(0).integers(0, 256, (MIN_PICTURES - len(images), *size, 3), np.uint8)
        what = (
            f"{len(images)} {what} and {len(noise)} pictures of random noise (the split has too few)"
            if len(images)
            else "pictures of random noise (the run's split could not be read)"
        )
        images = np.concatenate([images, noise])
    return images, what


class _Outputs:
    """An exported model as a callable with Keras' call shape, for core.models.probabilities."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, batch: np.ndarray, training: bool = False) -> np.ndarray:
        return np.asarray(self.fn(np.asarray(batch, np.float32)))


def savedmodel_probabilities(folder: Path, images: np.ndarray) -> np.ndarray:
    """Class probabilities (N, C) of a SavedModel's `serve` endpoint, loaded by TensorFlow alone."""
    import tensorflow as tf

    from core.models import probabilities

    loaded = tf.saved_model.load(str(folder))  # keep a reference: its variables die with it
    return probabilities(_Outputs(lambda b: loaded.serve(tf.constant(b))), images)


def tflite_probabilities(file: Path, images: np.ndarray) -> np.ndarray:
    """Class probabilities (N, C) of a .tflite file through TensorFlow's TFLite interpreter."""
    import tensorflow as tf

    from core.models import probabilities

    with warnings.catch_warnings():  # "use ai_edge_litert instead": not installed, and this one works
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(file))
    source = interpreter.get_input_details()[0]["index"]

    def run(batch: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(source, batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source, batch)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    return probabilities(_Outputs(run), images)


def _number(d: float) -> str:
    if d < 0.000005:
        return "under 0.00001"
    return f"{d:.5f}" if d < 0.001 else f"{d:.3f}"


def compare(fmt: str, reference: np.ndarray, got: np.ndarray, what: str) -> ExportCheck:
    """Judge an export's probabilities `got` against the Keras model's `reference`, both (N, C)."""
    n = len(reference)
    if got.shape != reference.shape:
        return ExportCheck(
            fmt,
            n,
            False,
            float("inf"),
            False,
            f"The {FORMAT_NAMES.get(fmt, fmt)} answers in another shape ({got.shape[1:]}) than the model "
            f"({reference.shape[1:]}), so it was not kept.",
        )
    differ = int((got.argmax(axis=1) != reference.argmax(axis=1)).sum())
    diff = float(np.abs(got - reference).max()) if n else 0.0
    passed = differ == 0 and diff <= TOLERANCE and np.isfinite(got).all()
    if passed:
        message = f"Checked on {n} {what}: same answer on all, largest difference {_number(diff)}"
    else:
        answers = "same answer on all" if not differ else f"{differ} of {n} answers differ"
        message = (
            f"The {FORMAT_NAMES.get(fmt, fmt)} does not behave like the model, so it was not kept: checked "
            f"on {n} {what}, {answers}, and the largest difference in a probability is {_number(diff)} "
            f"(allowed: {TOLERANCE:g})."
        )
    return ExportCheck(fmt, n, differ == 0, diff, bool(passed), message)
