"""core.evaluate: evaluating a run's model on its split (cached in the run)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from core import evaluate, metrics, modelfile
from core.data import SplitSpec, make_split, save_split, scan
from core.images import load_resized
from core.modelfile import load_model
from core.rundir import run_dir
from tests.conftest import COLORS_SIZE


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_evaluate_run_metrics_agree_with_csv_and_model(colors_run, workspace, colors):
    seen = []
    result = evaluate.evaluate_run(colors_run, workspace=workspace, progress=lambda *a: seen.append(a))
    assert result.n == 8 and result.classes == ["blue", "red"] and result.which == "best"
    assert not result.cached and result.subset == "test"
    assert {s for s, _, _ in seen} == {"decoding", "predicting"} and seen[-1] == ("predicting", 8, 8)

    rows = read_csv(run_dir(colors_run, workspace) / "predictions-best-test.csv")
    assert [r["path"] for r in rows] == result.paths and len(rows) == 8
    probs = np.array([[float(r["prob_blue"]), float(r["prob_red"])] for r in rows])
    labels = np.array([result.classes.index(r["true"]) for r in rows])
    assert np.array_equal(probs, result.probs) and np.array_equal(labels, result.labels)
    assert [r["predicted"] for r in rows] == [result.classes[k] for k in probs.argmax(1)]
    assert np.allclose(probs.sum(axis=1), 1.0)

    # The numbers follow from the CSV alone.
    assert result.accuracy == metrics.accuracy(labels, probs)
    assert result.loss == pytest.approx(metrics.log_loss(labels, probs))
    assert result.confusion.tolist() == metrics.confusion_matrix(labels, probs.argmax(1), 2).tolist()
    assert result.report == metrics.per_class_report(result.confusion, result.classes)
    assert result.roc[1][2] == pytest.approx(metrics.roc_one_vs_rest(labels, probs)[1][2])
    assert [t["index"] for t in result.top_losses] == metrics.top_losses(labels, probs, evaluate.TOP_LOSSES)
    # The odd pictures are confidently wrong, and the sigmoid output was turned into two columns.
    assert result.accuracy >= 0.75
    assert {"test/blue/blue_odd.png", "test/red/red_odd.png"} <= {t["path"] for t in result.top_losses}
    worst = result.top_losses[0]
    assert set(worst) >= {"path", "true", "pred", "prob", "loss"} and worst["true"] != worst["pred"]
    assert Path(worst["file"]) == colors / worst["path"]

    # And the probabilities are the model's own.
    model = load_model(run_dir(colors_run, workspace) / "best.keras")
    x = np.stack([load_resized(colors / p, (COLORS_SIZE, COLORS_SIZE), "stretch") for p in result.paths])
    p_red = np.asarray(model(x.astype(np.float32), training=False))[:, 0]
    assert np.allclose(result.probs[:, 1], p_red, atol=1e-6)


def test_second_evaluation_is_read_back_without_loading_the_model(colors_run, workspace, monkeypatch):
    first = evaluate.evaluate_run(colors_run, workspace=workspace)

    def no_loading(*args, **kwargs):
        raise AssertionError("a cached evaluation must not load the model")

    monkeypatch.setattr(modelfile, "from_run", no_loading)
    again = evaluate.evaluate_run(colors_run, workspace=workspace)
    assert again.cached
    assert again.created == first.created
    assert (again.accuracy, again.loss, again.paths) == (first.accuracy, first.loss, first.paths)
    assert np.array_equal(again.probs, first.probs) and np.array_equal(again.confusion, first.confusion)
    assert again.report == first.report and again.top_losses == first.top_losses
    assert again.roc.macro_auc == first.roc.macro_auc
    assert np.array_equal(again.roc[0][0], first.roc[0][0])
    assert evaluate.cached_evaluation(colors_run, workspace=workspace) is not None
    # Another subset is another evaluation.
    with pytest.raises(AssertionError, match="must not load"):
        evaluate.evaluate_run(colors_run, subset="val", workspace=workspace)
    with pytest.raises(AssertionError, match="must not load"):
        evaluate.evaluate_run(colors_run, workspace=workspace, refresh=True)


def test_new_best_model_invalidates_the_cached_evaluation(colors_run, workspace, monkeypatch):
    first = evaluate.evaluate_run(colors_run, workspace=workspace)
    best = run_dir(colors_run, workspace) / "best.keras"
    model = load_model(best)
    bias = model.layers[-1].bias
    bias.assign(bias.numpy() + 2.0)  # leans every prediction towards "red"
    model.save(best)
    assert evaluate.cached_evaluation(colors_run, workspace=workspace) is None

    loads = []
    real = modelfile.from_run
    monkeypatch.setattr(modelfile, "from_run", lambda *a, **k: loads.append(a) or real(*a, **k))
    second = evaluate.evaluate_run(colors_run, workspace=workspace)
    assert len(loads) == 1 and not second.cached
    assert np.all(second.probs[:, 1] > first.probs[:, 1])
    assert evaluate.evaluate_run(colors_run, workspace=workspace).cached and len(loads) == 1


def test_damaged_cache_is_recomputed_and_empty_subset_refused(colors_run, workspace, colors):
    evaluate.evaluate_run(colors_run, workspace=workspace)
    json_path, csv_path = evaluate.eval_paths(run_dir(colors_run, workspace), "best", "test")
    csv_path.write_text("path,true\n")
    assert evaluate.cached_evaluation(colors_run, workspace=workspace) is None
    assert not evaluate.evaluate_run(colors_run, workspace=workspace).cached

    split = make_split(scan(colors), SplitSpec(method="given"), name="colors")
    split.subsets["test"] = []
    save_split(split, workspace=workspace, overwrite=True)
    with pytest.raises(evaluate.EvaluationError, match="empty"):
        evaluate.evaluate_run(colors_run, workspace=workspace)


def test_last_model_used_when_there_is_no_best(colors_run, workspace):
    path = run_dir(colors_run, workspace)
    (path / "best.keras").rename(path / "last.keras")
    result = evaluate.evaluate_run(colors_run, which="best", workspace=workspace)
    assert result.which == "last" and result.n == 8
