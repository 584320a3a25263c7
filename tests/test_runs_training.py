"""Runs that train, through real worker processes: every mode end to end (artifacts, metrics rows,
the saved model), the feature cache shared by runs, the JAX backend, and how well they learn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import data, demo, evaluate, modelfile, rundir, runs, train
from core.config import TrainConfig, default_settings
from tests.conftest import CATSDOGS, MOBILENET_025, WEIGHTS, make_demo_split, needs_mobilenet
from tests.runhelpers import epochs_of, log_tail, submit, wait_for

ARTIFACTS = ("config.json", "status.json", "metrics.jsonl", "best.keras", "last.keras", "state.json")
EPOCH_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "images_per_s", "epoch", "time"}
BATCH_KEYS = {"loss", "accuracy", "lr", "images", "images_per_s", "epoch", "batch", "step", "time"}


# ---------------------------------------------------------------------------- 2. every mode, end to end


@pytest.fixture(scope="module")
def mode_ws(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("modes") / "workspace"
    make_demo_split(ws)
    return ws


@pytest.fixture(scope="module")
def mode_runs(mode_ws) -> dict[str, str]:
    """scratch, features, frozen, finetune (from features), and features again (cache hit).

    Every mode runs on a fresh clone too: without ../shared the base starts from random weights
    (the same network and shapes), and only the cache-hit run needs the real file (random
    weights are never cached)."""
    ws, ids = mode_ws, {}
    weights = str(MOBILENET_025) if MOBILENET_025.exists() else "none"
    pretrained = dict(model="mobilenet_0.25", weights=weights, epochs=2, log_every=1)
    ids["scratch"] = submit(ws, mode="scratch", epochs=2, augment_name="seed-001", log_every=1)
    ids["features"] = submit(ws, mode="features", **pretrained)
    ids["frozen"] = submit(ws, mode="frozen", augment_name="seed-001", **pretrained)
    wait_for(ids["features"], ws)
    ids["finetune"] = submit(
        ws, mode="finetune", from_run=ids["features"], unfreeze_top=2, epochs=1, log_every=1
    )
    if MOBILENET_025.exists():
        ids["features_again"] = submit(ws, mode="features", **{**pretrained, "epochs": 1})
    for run_id in ids.values():
        wait_for(run_id, ws)
    return ids


@pytest.mark.parametrize("mode", ["scratch", "features", "frozen", "finetune"])
def test_each_mode_trains_through_the_worker_process(mode_runs, mode_ws, mode):
    run_id, ws = mode_runs[mode], mode_ws
    status = runs.status(run_id, ws)
    assert status["state"] == "done", (status, log_tail(run_id, ws))
    path = rundir.run_dir(run_id, ws)
    for name in ARTIFACTS:
        assert (path / name).is_file(), name
    config = TrainConfig.from_dict(json.loads((path / "config.json").read_text()))
    assert config.mode == mode
    assert status["epoch"] == config.epochs and status["classes"] == sorted(demo.DEMO_CLASSES)
    rows = runs.metrics(run_id, ws)
    epoch_rows = [r for r in rows if r["kind"] == "epoch"]
    batch_rows = [r for r in rows if r["kind"] == "batch"]
    assert epochs_of(rows) == list(range(1, config.epochs + 1))
    steps = int(np.ceil(status["train_images"] / config.batch_size))
    assert len(batch_rows) == config.epochs * steps  # log_every=1: one row per batch
    for r in epoch_rows:
        assert set(r) >= EPOCH_KEYS and r["complete"] is True
        assert all(np.isfinite(r[k]) for k in EPOCH_KEYS - {"epoch", "time"})
    for r in batch_rows:
        assert set(r) >= BATCH_KEYS and np.isfinite(r["loss"]) and r["images_per_s"] > 0
        assert 0 <= r["accuracy"] <= 1
    for e in epoch_rows:  # batch rows cover their own images: together they make the epoch's means
        rows_e = [r for r in batch_rows if r["epoch"] == e["epoch"]]
        n = np.array([r["images"] for r in rows_e])
        assert n.sum() == status["train_images"]
        for key in ("loss", "accuracy"):
            assert np.dot(n, [r[key] for r in rows_e]) / n.sum() == pytest.approx(e[key], rel=1e-4, abs=1e-5)
    assert [r["step"] for r in batch_rows] == list(range(1, config.epochs * steps + 1))

    model = modelfile.load_model(path / "best.keras")
    images = np.random.default_rng(0).integers(0, 256, (3, config.image_size, config.image_size, 3), np.uint8)
    probs = np.asarray(model.predict(images.astype("float32"), verbose=0))
    assert probs.shape == (3, 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    if mode in ("features", "frozen", "finetune"):  # the saved model reads images, base included
        assert tuple(model.input.shape[1:]) == (64, 64, 3) and model.get_layer("base")
    if mode == "features":
        assert status["feature_cache_hit"] is False
        assert (path / "resume.keras").is_file()  # the head with its optimizer
    if mode == "finetune":
        assert status["trainable_params"] > 0 and config.model == "mobilenet_0.25"


@needs_mobilenet
def test_second_features_run_reuses_the_feature_cache(mode_runs, mode_ws):
    status = runs.status(mode_runs["features_again"], mode_ws)
    assert status["state"] == "done" and status["feature_cache_hit"] is True
    assert "extracting" not in log_tail(mode_runs["features_again"], mode_ws)
    assert len(list((mode_ws / "features").glob("*.npy"))) == 2  # train and val, shared by both runs


# ---------------------------------------------------------------------------- 10./13. slow


@needs_mobilenet
def test_pretrained_features_learn_the_demo_shapes(workspace):
    """The whole path (decode cache, features, head, metrics) learns: far above chance (0.25)."""
    make_demo_split(workspace, per_class=80, size=96)
    run_id = submit(
        workspace,
        mode="features",
        model="mobilenet_0.25",
        weights=str(MOBILENET_025),
        image_size=96,
        head_pooling="avg",
        head_units=64,
        head_dropout=0.3,
        epochs=8,
        log_every=10,
    )
    status = wait_for(run_id, workspace, timeout=300)
    assert status["state"] == "done", log_tail(run_id, workspace)
    val = [r["val_accuracy"] for r in runs.metrics(run_id, workspace) if r["kind"] == "epoch"]
    assert max(val) >= 0.7 and val[-1] >= 0.6, val


@pytest.mark.slow
def test_small_scratch_net_learns_the_demo_shapes(workspace):
    """The Train page's quick demo: the small net on the default demo (1000 per class) at 64 px."""
    from core import demo

    root = demo.ensure_demo(workspace)
    split = data.make_split(data.scan(root), data.SplitSpec("fractions", 0.6, 0.2, 0.2, seed=0))
    data.save_split(split, name="demo", workspace=workspace)
    run_id = submit(
        workspace,
        epochs=8,
        batch_size=32,
        augment_name="none",
        log_every=20,
        optimizer="adam",
        learning_rate=1e-3,
    )
    status = wait_for(run_id, workspace, timeout=900)
    assert status["state"] == "done", log_tail(run_id, workspace)
    val = [r["val_accuracy"] for r in runs.metrics(run_id, workspace) if r["kind"] == "epoch"]
    assert max(val) >= 0.6, val  # chance is 0.25 for the four shapes


@pytest.mark.slow
def test_jax_backend_trains_a_run(workspace):
    pytest.importorskip("jax")
    make_demo_split(workspace, per_class=8, size=48)
    config = train.finalize(
        TrainConfig(split="demo", model="small", image_size=48, epochs=1, batch_size=8), workspace
    )
    run_id = runs.create_run(config.to_dict(), workspace)
    runs.launch(run_id, workspace, env={"KERAS_BACKEND": "jax"})
    status = wait_for(run_id, workspace, timeout=600)
    assert status["state"] == "done", log_tail(run_id, workspace)
    assert status["plan"]["backend"] == "jax" and status["plan"]["jit_compile"] is True
    assert (rundir.run_dir(run_id, workspace) / "best.keras").is_file()


MOBILENET_05 = WEIGHTS / "mobilenet_5_0_224_tf_no_top.h5"


@pytest.mark.slow
@pytest.mark.skipif(
    not (CATSDOGS.is_dir() and MOBILENET_05.is_file()),
    reason="no shared catsdogs photos or MobileNet weights",
)
def test_feature_extraction_and_fine_tuning_on_real_photos(workspace):
    """The issue's accuracy bar on the 3,000 shared photos, with the default settings (what the CLI
    and the Train page give for MobileNet 0.5: 224 px, a GAP head at Adam 3e-4): >= 97.5% on the
    split's 500 unseen test photos for two split seeds (97.8% and 97.8% on a Zen 4), and
    fine-tuning the top 6 weight layers from the first for 2 epochs at the default 1e-5 does not
    lose a photo and lowers the test loss. (Unfreezing the base's whole last block instead gave
    98.0% but a test loss of 0.0585 against 0.0580.)"""
    scores = []
    for seed in (0, 1):
        split = data.make_split(data.scan(CATSDOGS), data.SplitSpec("counts", 1000, 250, 250, seed=seed))
        data.save_split(split, name=f"photos{seed}", workspace=workspace)
        run_id = submit(
            workspace,
            **{
                **default_settings("features", "mobilenet_0.5"),
                "split": f"photos{seed}",
                "weights": str(MOBILENET_05),
            },
            mode="features",
            seed=0,
        )
        assert wait_for(run_id, workspace, timeout=900)["state"] == "done", log_tail(run_id, workspace)
        result = evaluate.evaluate_run(run_id, "best", "test", workspace)
        print(f"\nfeatures, split seed {seed}: test accuracy {result.accuracy:.3f}, loss {result.loss:.4f}")
        scores.append((run_id, result))
    assert all(r.n == 500 and r.accuracy >= 0.975 for _, r in scores), [r.accuracy for _, r in scores]
    features_id, features = scores[0]

    finetune_id = submit(
        workspace,
        **{**default_settings("finetune"), "from_run": features_id, "epochs": 2},
        mode="finetune",
        unfreeze_top=6,
        seed=0,
    )
    assert wait_for(finetune_id, workspace, timeout=900)["state"] == "done", log_tail(finetune_id, workspace)
    tuned = evaluate.evaluate_run(finetune_id, "best", "test", workspace)
    print(f"fine-tuned: test accuracy {tuned.accuracy:.3f}, loss {tuned.loss:.4f}")
    assert tuned.accuracy >= features.accuracy and tuned.loss < features.loss
