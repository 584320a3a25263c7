"""core.feeding: the split loader, the one batch feeder, class weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import feeding
from core.config import TrainConfig
from tests.conftest import make_demo_split


def test_split_arrays_come_decoded_with_their_classes_and_refuse_a_changed_split(workspace):
    split = make_demo_split(workspace, per_class=5, size=32)
    config = TrainConfig(split="demo", model="small", image_size=24)
    asked: list[str] = []

    def progress_for(what: str):
        asked.append(what)
        return None

    data = feeding.load_split_arrays(config, workspace, progress_for)
    assert data.classes == split.classes and data.workspace == workspace.resolve()
    assert data.train.images.shape[1:] == (24, 24, 3) and data.train.images.dtype == np.uint8
    assert len(data.train) == len(split.subsets["train"]) and len(data.val) == len(split.subsets["val"])
    assert asked == ["training images", "validation images"]
    (Path(split.dataset_root) / split.all_files()[0]).unlink()
    with pytest.raises(ValueError, match="^split 'demo': 1 files of this split are missing"):
        feeding.load_split_arrays(config, workspace)


def test_batches_feed_every_picture_once_per_epoch_or_only_a_shard():
    """The one feeder of single-process and multi-worker training: sorted reads, a new order each
    epoch (the same for the same seed and epoch), a shard through `index`, and with drop_remainder
    only whole batches."""
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 2, 2, 3), np.uint8)
    labels = np.arange(10)
    feed = feeding.batches(images, labels, 4, shuffle=True, seed=3)
    assert len(feed) == 3
    first = [feed[i][1].tolist() for i in range(len(feed))]
    assert sorted(sum(first, [])) == list(range(10)) and all(b == sorted(b) for b in first)
    assert all(int(x[j, 0, 0, 0]) == y[j] for x, y in (feed[i] for i in range(3)) for j in range(len(y)))
    feed.on_epoch_end()
    second = [feed[i][1].tolist() for i in range(len(feed))]
    assert second != first and sorted(sum(second, [])) == list(range(10))
    resumed = feeding.batches(images, labels, 4, shuffle=True, seed=3, first_epoch=1)
    assert [resumed[i][1].tolist() for i in range(3)] == second  # a resumed run gets epoch 1's order
    shard = feeding.batches(
        images, labels, 4, shuffle=True, seed=3, index=np.array([1, 4, 5, 8, 9]), drop_remainder=True
    )
    assert len(shard) == 1 and set(shard[0][1].tolist()) <= {1, 4, 5, 8, 9} and len(shard[0][1]) == 4


def test_class_weight_for_unbalanced_labels():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    w = feeding.class_weight_for(labels, 3)
    assert w == pytest.approx({0: 100 / 180, 1: 100 / 90, 2: 100 / 30})
    assert np.mean([w[y] for y in labels]) == pytest.approx(1.0)  # the loss keeps its scale
    assert w[2] / w[0] == pytest.approx(6.0)
    assert feeding.class_weight_for(np.array([0, 0, 1, 1]), 2) == {0: 1.0, 1: 1.0}
    assert set(feeding.class_weight_for(np.array([0, 0, 1]), 3)) == {0, 1, 2}  # an empty class is no error
