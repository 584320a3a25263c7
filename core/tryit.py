"""Try it: one picture in, the model's answer out (class probabilities and a Grad-CAM overlay), quick
enough to demo live; and a few test pictures of a run's split to try it on."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from core import explain
from core.data import Split
from core.images import load_resized, load_rgb, resize
from core.modelfile import LoadedModel

DISPLAY_SIZE = 384  # side of the picture and overlay shown; small model inputs would look blocky
SAMPLE_COUNT = 6


@dataclass(frozen=True)
class Answer:
    """What the model says about one picture.

    probabilities: (C,) float32 in the order of `classes`. picture: the (D, D, 3) uint8 picture as
    the model sees it (same resize policy), at least DISPLAY_SIZE on a side; overlay: the picture
    with the Grad-CAM heatmap of the predicted class on top, same shape.
    """

    classes: tuple[str, ...]
    probabilities: np.ndarray
    picture: np.ndarray
    overlay: np.ndarray

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return self.classes[self.index]

    @property
    def probability(self) -> float:
        return float(self.probabilities[self.index])


def answer(loaded: LoadedModel, source: str | os.PathLike | bytes) -> Answer:
    """Decode `source` (a path or a file's bytes) through core.images, predict, and explain the
    predicted class with Grad-CAM on the last conv layer. Raises ImageError for a picture that
    cannot be read."""
    size = (loaded.input_size, loaded.input_size)
    image = load_resized(source, size, loaded.resize_policy)  # exactly what Evaluate and Explain feed
    probabilities = explain.predict(loaded.model, image)
    k = int(np.argmax(probabilities))
    heatmap = explain.gradcam(loaded.model, image[None], class_index=k)[0]
    if loaded.input_size >= DISPLAY_SIZE:
        picture = image
    else:
        shown = (DISPLAY_SIZE, DISPLAY_SIZE)
        picture = resize(load_rgb(source, min_size=shown), shown, loaded.resize_policy)
    return Answer(loaded.classes, probabilities, picture, explain.overlay(picture, heatmap))


def sample_files(split: Split, count: int = SAMPLE_COUNT) -> list[str]:
    """Up to `count` test pictures of `split` (paths relative to its dataset root), taking each
    class in turn so every class shows up when there are few enough."""
    by_class: dict[int, list[str]] = {}
    for path, label in split.subsets.get("test", []):
        by_class.setdefault(label, []).append(path)
    picked: list[str] = []
    queues = [by_class[k] for k in sorted(by_class)]
    for i in range(max((len(q) for q in queues), default=0)):
        for queue in queues:
            if i < len(queue) and len(picked) < count:
                picked.append(queue[i])
    return picked
