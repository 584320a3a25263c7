"""core.embedding: the input of the output layer found from the graph, features in batches, PCA -> t-SNE,
and the map cached in the run directory next to its evaluation."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core import embedding, evaluate
from core import models as M
from core.rundir import run_dir
from tests.modelkit import VARIANTS, build_variant, keras, mobilenet_transfer, random_images, to_numpy


@pytest.mark.parametrize(
    "make, dims",
    [
        (lambda: M.build_scratch("small", 32, 4), 64),  # GMP -> Dropout -> Dense
        (lambda: M.build_scratch("seed000", 48, 2, units=24), 24),  # Flatten -> Dropout -> Dense 24 -> Dense
        (lambda: M.build_scratch("resnet", 32, 3), 256),
        (lambda: mobilenet_transfer(2), 32),  # base -> head (shared layers): Dense 32 -> Dropout -> Dense
    ],
)
def test_features_are_the_input_of_the_output_layer(make, dims):
    """Whatever the network, the output layer applied to the features gives the model's output."""
    model = make()
    images = random_images(3, model.inputs[0].shape[1])
    feats = embedding.features(model, images)
    assert feats.shape == (3, dims)
    again = to_numpy(model.get_layer("output")(feats))
    np.testing.assert_allclose(again, to_numpy(model(images, training=False)), atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_features_are_what_the_classifier_reads(variant, tmp_path):
    """Batches, mixed precision and a saved model give the same real input of the output layer."""
    model = build_variant(variant, lambda: M.build_scratch("small", 32, 3), tmp_path)
    images = random_images(7, 32).astype(np.uint8)
    seen = []
    feats = embedding.features(model, images, batch_size=3, progress=lambda d, t: seen.append((d, t)))
    assert feats.shape == (7, 64) and feats.dtype == np.float32
    assert seen == [(3, 7), (6, 7), (7, 7)]
    again = to_numpy(keras.ops.cast(model.get_layer("output")(feats), "float32"))
    want = to_numpy(keras.ops.cast(model(images.astype(np.float32), training=False), "float32"))
    np.testing.assert_allclose(again, want, atol=2e-2 if variant == "mixed_bfloat16" else 1e-5)


def test_projection_is_seeded_and_keeps_clusters_apart():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 40)
    centres = rng.normal(0, 10, (3, 80))
    feats = centres[labels] + rng.normal(0, 1, (120, 80))  # 80 dims: PCA to 50 first
    xy = embedding.project(feats)
    assert xy.shape == (120, 2) and np.isfinite(xy).all()
    np.testing.assert_array_equal(xy, embedding.project(feats))  # same seed, same map
    # Each point's nearest neighbour on the map is of its own cluster.
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(120) * 1e9
    assert (labels[d.argmin(axis=1)] == labels).mean() > 0.95


def test_projection_needs_a_few_pictures():
    assert embedding.project(np.random.default_rng(0).normal(size=(5, 3))).shape == (5, 2)
    with pytest.raises(embedding.MapError, match="at least 5 pictures"):
        embedding.project(np.zeros((4, 3)))


def test_map_follows_the_evaluation_and_is_cached(colors_run, workspace, monkeypatch):
    stages = set()
    first = embedding.embed_run(colors_run, workspace=workspace, progress=lambda s, d, t: stages.add(s))
    assert stages == {"decoding", "predicting", "features", "layout"}  # scored first: no evaluation yet
    scores = evaluate.cached_evaluation(colors_run, workspace=workspace)
    assert first.paths == scores.paths and len(first.paths) == 8 and not first.cached
    np.testing.assert_array_equal(first.labels, scores.labels)
    np.testing.assert_array_equal(first.probs, scores.probs)
    assert first.xy.shape == (8, 2) and first.feature_dims == 4
    assert first.right.sum() == round(scores.accuracy * 8)
    assert os.path.isfile(first.file(0)) and set(first.seconds) == {"features", "layout"}
    assert embedding.map_path(run_dir(colors_run, workspace), "best", "test").is_file()

    def must_not_run(*args, **kwargs):
        raise AssertionError("a second visit must not recompute the map")

    monkeypatch.setattr(embedding, "features", must_not_run)
    monkeypatch.setattr(embedding, "project", must_not_run)
    again = embedding.embed_run(colors_run, workspace=workspace)
    assert again.cached and again.paths == first.paths and again.seconds == first.seconds
    np.testing.assert_array_equal(again.xy, first.xy)
    np.testing.assert_array_equal(again.probs, first.probs)

    # A new model file (another training, a fine-tune...) makes the stored map stale.
    best = run_dir(colors_run, workspace) / "best.keras"
    os.utime(best, ns=(best.stat().st_atime_ns, best.stat().st_mtime_ns + 10**9))
    assert embedding.cached_map(colors_run, workspace=workspace) is None


def test_map_of_all_pictures_and_bad_subsets(colors_run, workspace):
    whole = embedding.embed_run(colors_run, subset="all", workspace=workspace)
    assert len(whole.paths) == len(whole.labels) == len(whole.xy) == 6 * 2 + 2 * 2 + 8
    assert whole.paths[-8:] == evaluate.cached_evaluation(colors_run, workspace=workspace).paths
    assert embedding.cached_map(colors_run, subset="all", workspace=workspace).cached
    assert embedding.cached_map(colors_run, subset="test", workspace=workspace) is None  # not drawn yet
    with pytest.raises(embedding.MapError, match="test or all"):
        embedding.embed_run(colors_run, subset="everything", workspace=workspace)
