"""What training reads: a saved split decoded through the cache (core.cache), the one batch feeder
over those uint8 arrays, and class weights. Used alike by one-process runs (core.train) and by
multi-worker training (core.distributed)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.config import TrainConfig
from core.workspace import workspace_dir

if TYPE_CHECKING:  # core.cache pulls in the image decoders; import it only when decoding
    from core.cache import CachedArrays, Progress


@dataclass
class SplitArrays:
    """A split's classes, its decoded train and val images (.images of shape (N, H, W, 3) uint8,
    .labels, .key) and the workspace they came from."""

    classes: list[str]
    train: CachedArrays
    val: CachedArrays
    workspace: Path


def load_split_arrays(
    config: TrainConfig,
    workspace: str | os.PathLike | None,
    progress_for: Callable[[str], Progress | None] | None = None,
) -> SplitArrays:
    """The config's saved split, decoded at its image size and resize policy (from the cache when
    decoded before). ValueError when the split's files changed since it was saved.
    progress_for(what): the progress callback for decoding `what` ("training images", ...)."""
    from core import cache
    from core.data import load_split

    workspace = workspace_dir(workspace)
    split = load_split(config.split, workspace)
    changed = split.changed()
    if changed:
        raise ValueError(f"split '{config.split}': {changed}")
    size = (config.image_size, config.image_size)

    def decode(subset: str, what: str):
        progress = progress_for(what) if progress_for else None
        return cache.split_arrays(split, subset, size, config.resize_policy, workspace, progress)

    train = decode("train", "training images")
    val = decode("val", "validation images")
    return SplitArrays(split.classes, train, val, workspace)


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int,
    first_epoch: int = 0,
    index: np.ndarray | None = None,
    drop_remainder: bool = False,
):
    """A keras.utils.PyDataset over (memory-mapped) uint8 arrays (N, H, W, 3): sorted-index batches,
    reshuffled per epoch; only the current batch is read into memory.

    first_epoch: the epoch training starts at, so a resumed run gets that epoch's order.
    index: feed only these items (a multi-worker shard; core.distributed).
    drop_remainder: leave out the last partial batch, so every step has the same shape (one XLA
    compilation, a local batch that divides over the devices); the reshuffle means a different few
    images sit out each epoch.
    """
    import keras

    index = np.arange(len(labels)) if index is None else np.asarray(index)
    n = len(index)

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = first_epoch
            self.order = np.arange(n)
            self.on_epoch_end()

        def __len__(self) -> int:
            return n // batch_size if drop_remainder else math.ceil(n / batch_size)

        def __getitem__(self, i: int):
            idx = index[
                np.sort(self.order[i * batch_size : (i + 1) * batch_size])
            ]  # sorted: sequential reads
            return np.asarray(images[idx]), np.asarray(labels[idx])

        def on_epoch_end(self) -> None:
            if shuffle:
                self.order = np.random.default_rng([seed, self.epoch]).permutation(n)
            self.epoch += 1

    return ArrayBatches()


def class_weight_for(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency weights n / (k * n_c): rarer classes count more, the mean over images is 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    counts[counts == 0] = 1
    w = counts.sum() / (num_classes * counts)
    return {i: float(v) for i, v in enumerate(w)}
