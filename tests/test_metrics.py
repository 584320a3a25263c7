"""core.metrics against values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core import metrics
from tests.conftest import REPO

# Ten pictures of three classes:
Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
Y_PRED = [0, 1, 0, 1, 2, 2, 2, 1, 2, 0]
# true 0 (indices 0, 1, 2, 9) -> predicted 0, 1, 0, 0: row [3, 1, 0]
# true 1 (indices 3, 4)       -> predicted 1, 2:       row [0, 1, 1]
# true 2 (indices 5..8)       -> predicted 2, 2, 1, 2: row [0, 1, 3]
CM = [[3, 1, 0], [0, 1, 1], [0, 1, 3]]


def test_confusion_matrix_by_hand():
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == CM
    np.testing.assert_allclose(metrics.normalize_rows(cm), [[0.75, 0.25, 0], [0, 0.5, 0.5], [0, 0.25, 0.75]])
    assert metrics.normalize_rows([[0, 0], [1, 3]]).tolist() == [[0, 0], [0.25, 0.75]]  # empty row stays 0
    assert metrics.confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError):
        metrics.confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        metrics.confusion_matrix([0, 1], [0], 3)


def test_per_class_report_by_hand():
    rows = metrics.per_class_report(np.array(CM), ["a", "b", "c"])
    by = {r["class"]: r for r in rows}
    # predicted column sums 3, 3, 4; true row sums 4, 2, 4; diagonal 3, 1, 3
    assert by["a"] == {
        "class": "a",
        "kind": "class",
        "precision": 1.0,
        "recall": 0.75,
        "f1": pytest.approx(6 / 7),
        "support": 4,
    }  # f1 = 2*1*.75/1.75
    assert (by["b"]["precision"], by["b"]["recall"], by["b"]["f1"]) == pytest.approx((1 / 3, 1 / 2, 2 / 5))
    assert (by["c"]["precision"], by["c"]["recall"], by["c"]["f1"]) == pytest.approx((3 / 4, 3 / 4, 3 / 4))
    macro, weighted = by["macro avg"], by["weighted avg"]
    assert macro["precision"] == pytest.approx((1 + 1 / 3 + 3 / 4) / 3)  # 25/36
    assert macro["recall"] == pytest.approx(2 / 3)
    assert macro["f1"] == pytest.approx((6 / 7 + 2 / 5 + 3 / 4) / 3)  # mean of F1s: 281/420
    assert weighted["precision"] == pytest.approx((4 * 1 + 2 * 1 / 3 + 4 * 3 / 4) / 10)  # 23/30
    assert weighted["recall"] == pytest.approx(0.7)  # = accuracy
    assert weighted["f1"] == pytest.approx((4 * 6 / 7 + 2 * 2 / 5 + 4 * 3 / 4) / 10)
    assert macro["support"] == weighted["support"] == 10 and macro["kind"] == "macro"


def test_report_zero_division_is_zero():
    # class 1 never predicted and never present; class 2 predicted but never right
    rows = metrics.per_class_report(np.array([[2, 0, 1], [0, 0, 0], [0, 0, 0]]), ["x", "y", "z"])
    assert [(r["precision"], r["recall"], r["f1"]) for r in rows[:3]] == [
        (1.0, 2 / 3, 0.8),
        (0, 0, 0),
        (0, 0, 0),
    ]
    with pytest.raises(ValueError):
        metrics.per_class_report(np.eye(2), ["only one name"])


def test_binary_roc_with_a_tie():
    # Sorted by score: .9 (pos), .5 (neg), .5 (pos), .1 (neg). The two .5s are one threshold:
    #   >= .9: TP 1, FP 0 -> (0, .5);  >= .5: TP 2, FP 1 -> (.5, 1);  >= .1: (1, 1)
    # AUC = .5 * (.5 + 1) / 2 + .5 * 1 = .875 = pairs won 3.5 of 4 (the tied pair counts half)
    fpr, tpr, thr = metrics.roc_curve([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1])
    assert fpr.tolist() == [0, 0, 0.5, 1] and tpr.tolist() == [0, 0.5, 1, 1]
    assert thr.tolist() == [math.inf, 0.9, 0.5, 0.1]
    assert metrics.auc(fpr, tpr) == pytest.approx(0.875)
    # The input order of the tied pair does not matter.
    fpr2, tpr2, _ = metrics.roc_curve([0, 1, 1, 0], [0.5, 0.5, 0.9, 0.1])
    assert fpr2.tolist() == fpr.tolist() and tpr2.tolist() == tpr.tolist()


def test_auc_perfect_reversed_and_random_ordering():
    y = [0, 0, 1, 1]
    assert metrics.auc(*metrics.roc_curve(y, [0.1, 0.2, 0.8, 0.9])[:2]) == 1.0
    assert metrics.auc(*metrics.roc_curve(y, [0.9, 0.8, 0.2, 0.1])[:2]) == 0.0
    assert metrics.auc(*metrics.roc_curve(y, [0.5] * 4)[:2]) == 0.5  # all tied: the diagonal
    # positives at ranks 1 and 4 of 4: each beats 2 of 4 pairs... 2/4
    assert metrics.auc(*metrics.roc_curve([1, 0, 0, 1], [4, 3, 2, 1])[:2]) == 0.5


def test_auc_equals_the_pair_count_with_many_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # rounding makes many ties
    pos, neg = s[y == 1], s[y == 0]
    pairs = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    fpr, tpr, _ = metrics.roc_curve(y, s)
    assert metrics.auc(fpr, tpr) == pytest.approx(pairs)
    fpr_d, tpr_d, _ = metrics.roc_curve(y, s, drop_intermediate=True)
    assert len(fpr_d) <= len(fpr) and metrics.auc(fpr_d, tpr_d) == pytest.approx(pairs)


def test_roc_one_class_only():
    with pytest.raises(ValueError, match="only one class"):
        metrics.roc_curve([1, 1, 1], [0.2, 0.5, 0.9])
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.6, 0.2], [0.6, 0.3, 0.1], [0.3, 0.4, 0.3]])
    result = metrics.roc_one_vs_rest([0, 1, 0, 1], probs)  # class 2 absent
    assert set(result) == {0, 1, 2}
    fpr, tpr, a = result[2]
    assert a is None and len(fpr) == 0 and "no pictures" in result.reasons[2]
    assert result[0][2] == 1.0 and result[1][2] == 1.0 and result.macro_auc == 1.0
    back = metrics.RocOneVsRest.from_dict(result.to_dict())
    assert back.macro_auc == 1.0 and back[2][2] is None and back.reasons == result.reasons
    assert back[0][0].tolist() == result[0][0].tolist()


def test_roc_one_vs_rest_binary_is_symmetric():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.2, 0.8]])
    r = metrics.roc_one_vs_rest([0, 1, 1, 1], probs)
    # class 1 scores .1 .6 .4 .8 with truth 0 1 1 1: the negative is lowest -> AUC 1
    assert r[0][2] == r[1][2] == 1.0 == r.macro_auc


def test_log_loss_accuracy_and_clipping():
    y, p = [0, 1], [[0.8, 0.2], [0.4, 0.6]]
    assert metrics.log_loss(y, p) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert metrics.log_loss([1], [[1.0, 0.0]]) == pytest.approx(-math.log(metrics.EPS))  # clipped, finite
    assert metrics.accuracy(y, p) == 1.0 and metrics.accuracy([1, 1], p) == 0.5  # argmax of probabilities
    assert metrics.accuracy(Y_TRUE, Y_PRED) == 0.7
    with pytest.raises(ValueError):
        metrics.log_loss([2], [[0.5, 0.5]])
    with pytest.raises(ValueError):
        metrics.accuracy([], [])


def test_top_losses_order():
    y = [0, 1, 2, 0, 1]
    probs = [
        [0.9, 0.05, 0.05],  # right
        [0.7, 0.2, 0.1],  # wrong, loss -ln .2
        [0.1, 0.1, 0.8],  # right
        [0.05, 0.9, 0.05],  # wrong, loss -ln .05 (worst)
        [0.8, 0.2, 0.0],  # wrong, loss -ln .2: ties with index 1, comes after it
    ]
    assert metrics.top_losses(y, probs, 10) == [3, 1, 4]
    assert metrics.top_losses(y, probs, 2) == [3, 1]
    assert metrics.top_losses(y, probs, 0) == []
    assert metrics.top_losses([0], [[0.6, 0.4]], 5) == []  # nothing wrong


# ---------------------------------------------------------------------------- pinned outputs
# tests/data/metrics_pinned.json holds what the hand-written numpy version of core.metrics (before
# it moved onto sklearn.metrics) returned for pinned_cases(); every later version must give the same
# numbers within 1e-12. The file was written once with pinned_outputs() and is never regenerated.
PINNED = REPO / "tests" / "data" / "metrics_pinned.json"


def pinned_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fixed random predictions full of ties: binary, 4-class, and 4-class with class 3 absent."""
    rng = np.random.default_rng(17)
    p = rng.integers(0, 11, 48) / 10  # tenths: many tied scores, 0 and 1 exactly, 0.5 an argmax tie
    binary = ((rng.random(48) < 0.2 + 0.6 * p).astype(np.int64), np.stack([1 - p, p], axis=1))
    cases = {"binary": binary}
    for name, classes in (("four", 4), ("four_missing_3", 3)):
        counts = rng.integers(0, 4, (64, 4)).astype(np.float64)
        counts[counts.sum(axis=1) == 0, 0] = 1
        probs = counts / counts.sum(axis=1, keepdims=True)  # equal quarters, thirds, halves: ties
        guess = np.where(rng.random(64) < 0.6, probs.argmax(axis=1), rng.integers(0, 4, 64))
        y = np.where(guess < classes, guess, rng.integers(0, classes, 64)).astype(np.int64)
        cases[name] = (y, probs)
    return cases


def pinned_outputs(y: np.ndarray, probs: np.ndarray) -> dict:
    """Every public number core.metrics gives for one set of predictions, JSON-ready."""
    c = probs.shape[1]
    cm = metrics.confusion_matrix(y, probs.argmax(axis=1), c)
    out = {
        "confusion": cm.tolist(),
        "normalized": metrics.normalize_rows(cm).tolist(),
        "report": metrics.per_class_report(cm, [f"c{k}" for k in range(c)]),
        "roc": metrics.roc_one_vs_rest(y, probs).to_dict(),
        "roc_dropped": metrics.roc_one_vs_rest(y, probs, drop_intermediate=True).to_dict(),
        "per_sample_loss": metrics.per_sample_loss(y, probs).tolist(),
        "log_loss": metrics.log_loss(y, probs),
        "accuracy": metrics.accuracy(y, probs),
        "top_losses": metrics.top_losses(y, probs, 10**6),
    }
    if c == 2:
        for drop in (False, True):
            fpr, tpr, thr = metrics.roc_curve(y, probs[:, 1], drop_intermediate=drop)
            out[f"roc_curve_drop_{drop}"] = {
                "fpr": fpr.tolist(),
                "tpr": tpr.tolist(),
                "thresholds": thr.tolist(),
                "auc": metrics.auc(fpr, tpr),
            }
    return out


def assert_same(got, want, where: str = "") -> None:
    """Equal structure and values; floats within 1e-12 (infinities equal)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == want or abs(got - want) <= 1e-12, f"{where}: {got} != {want}"
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("case", ["binary", "four", "four_missing_3"])
def test_outputs_match_the_pinned_hand_written_version(case):
    y, probs = pinned_cases()[case]
    pinned = json.loads(PINNED.read_text())[case]
    assert_same(json.loads(json.dumps(pinned_outputs(y, probs))), pinned, case)


def test_pinned_cases_have_ties():
    y, probs = pinned_cases()["binary"]
    assert len(np.unique(probs[:, 1])) < len(probs) / 3 and (probs[:, 0] == probs[:, 1]).any()
    y4, probs4 = pinned_cases()["four_missing_3"]
    assert 3 not in y4 and (np.sort(probs4, axis=1)[:, -1] == np.sort(probs4, axis=1)[:, -2]).any()


def test_most_confused_pairs_sorted_with_min_count():
    cm = np.array([[5, 3, 0, 1], [3, 4, 2, 0], [0, 7, 9, 1], [1, 0, 0, 2]])
    names = ["cat", "dog", "fox", "owl"]
    assert metrics.most_confused(cm, names) == [
        ("fox", "dog", 7),
        ("cat", "dog", 3),  # ties keep the matrix's order: row cat before row dog
        ("dog", "cat", 3),
        ("dog", "fox", 2),
        ("cat", "owl", 1),
        ("fox", "owl", 1),
        ("owl", "cat", 1),
    ]
    assert metrics.most_confused(cm, names, min_count=3) == [
        ("fox", "dog", 7),
        ("cat", "dog", 3),
        ("dog", "cat", 3),
    ]
    assert metrics.most_confused(np.diag([4, 5]), ["a", "b"]) == []  # no mistakes, no pairs
    assert metrics.most_confused(np.diag([4, 5]), ["a", "b"], min_count=0) == []  # zero cells never listed
    with pytest.raises(ValueError):
        metrics.most_confused(cm, names[:3])


def test_most_confused_from_predictions():
    y, probs = pinned_cases()["four"]
    cm = metrics.confusion_matrix(y, probs.argmax(axis=1), 4)
    pairs = metrics.most_confused(cm, list("abcd"))
    assert sum(n for _, _, n in pairs) == int((probs.argmax(axis=1) != y).sum())
    assert [n for _, _, n in pairs] == sorted((n for _, _, n in pairs), reverse=True)


def test_most_confused_pairs_most_first():
    cm = [[5, 2, 0], [3, 4, 1], [0, 3, 6]]
    classes = ["cat", "dog", "fox"]
    assert metrics.most_confused(cm, classes) == [
        ("dog", "cat", 3),
        ("fox", "dog", 3),  # ties keep the matrix's order: row dog before row fox
        ("cat", "dog", 2),
        ("dog", "fox", 1),
    ]
    assert metrics.most_confused(cm, classes, min_count=3) == [("dog", "cat", 3), ("fox", "dog", 3)]
    assert metrics.most_confused(np.eye(3, dtype=int), classes) == []  # no mistakes, no pairs
    assert metrics.most_confused(CM, ["a", "b", "c"], min_count=0)[0] == ("a", "b", 1)  # zeros never listed
    assert len(metrics.most_confused(CM, ["a", "b", "c"], min_count=0)) == 3
    with pytest.raises(ValueError):
        metrics.most_confused(cm, ["cat", "dog"])


def test_pair_mistakes_most_sure_first():
    y = [0, 0, 0, 1, 0]
    probs = [[0.3, 0.7], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8], [0.3, 0.7]]
    assert metrics.pair_mistakes(y, probs, 0, 1, 10) == [1, 0, 4]  # equal sureness: by index
    assert metrics.pair_mistakes(y, probs, 0, 1, 1) == [1]
    assert metrics.pair_mistakes(y, probs, 1, 0, 10) == []
