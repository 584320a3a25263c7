"""core.distributed_worker: shards, the global batch over workers, and the backend check (the
workers' training runs in tests/test_distributed.py)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from core import distributed_worker
from core.config import ConfigError, TrainConfig


@pytest.mark.parametrize("n, workers", [(10, 2), (11, 2), (17, 3), (3, 4), (64, 1), (0, 2)])
def test_shards_are_disjoint_equal_and_cover_all_but_the_remainder(n, workers):
    shards = [distributed_worker.shard_indices(n, workers, i, seed=7) for i in range(workers)]
    assert {len(s) for s in shards} == {n // workers}
    union = np.concatenate(shards)
    assert len(np.unique(union)) == len(union) == n - n % workers
    assert union.size == 0 or (union.min() >= 0 and union.max() < n)
    assert all(np.array_equal(s, np.sort(s)) for s in shards)
    # Deterministic for a seed (every worker computes the same partition), shuffled by it.
    again = [distributed_worker.shard_indices(n, workers, i, seed=7) for i in range(workers)]
    assert all(np.array_equal(a, b) for a, b in zip(shards, again))


def test_shards_mix_classes_and_reject_bad_indices():
    # Split files come ordered by class: a shard must not be one contiguous block.
    s0 = distributed_worker.shard_indices(100, 2, 0, seed=0)
    assert not np.array_equal(s0, np.arange(50))
    with pytest.raises(ValueError):
        distributed_worker.shard_indices(10, 2, 2)
    with pytest.raises(ValueError):
        distributed_worker.shard_indices(10, 0, 0)


def test_global_batch_must_divide_over_workers():
    assert distributed_worker.local_batch_size(8, 2) == 4
    with pytest.raises(ConfigError, match="batch_size"):
        distributed_worker.local_batch_size(9, 2)


def test_worker_refuses_a_non_jax_backend(monkeypatch, tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    config = TrainConfig(split="s", model="small", image_size=32, batch_size=8)
    with pytest.raises(distributed_worker.BackendError, match="KERAS_BACKEND=jax"):
        distributed_worker.worker_main(config, "127.0.0.1:1", 2, 0, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing started, nothing written
