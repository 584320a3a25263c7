"""Classification metrics: confusion matrix, per-class report, ROC/AUC, log loss, top losses.

Labels are integer class indices 0..C-1; probabilities are (N, C) arrays whose rows sum to 1.
scikit-learn (``sklearn.metrics``) computes everything it offers; this module checks the input
(a clear ValueError instead of sklearn's silent drops or NaN warnings), keeps the project's return
types, and adds what sklearn has no function for: rows of a confusion matrix as shares, per-picture
loss clipped like Keras, top losses and the most confused pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics as skm

# Probabilities are clipped to [EPS, 1 - EPS] before the log: Keras' crossentropy uses the same
# epsilon, so log_loss matches the val_loss Keras reports for the same predictions.
EPS = 1e-7


def _labels(y, name: str = "y_true") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
        raise ValueError(f"{name} must hold integer class indices")
    return y.astype(np.int64)


def _probs(y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    y = _labels(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"probs must have shape (N, C) with N = {len(y)}, got {p.shape}")
    if len(y) == 0:
        raise ValueError("no samples")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be in 0..{p.shape[1] - 1}")
    return y, p


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class."""
    t, p = _labels(y_true), _labels(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError("y_true and y_pred differ in length")
    for a in (t, p):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"labels must be in 0..{num_classes - 1}")
    if len(t) == 0:  # sklearn refuses empty input
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    return skm.confusion_matrix(t, p, labels=np.arange(num_classes)).astype(np.int64)


def normalize_rows(cm) -> np.ndarray:
    """Each row divided by its sum (the share of a true class predicted as each class); empty rows stay 0."""
    cm = np.asarray(cm, dtype=np.float64)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def per_class_report(cm, classes: Sequence[str]) -> list[dict]:
    """Precision, recall, F1 and support per class, then "macro avg" and "weighted avg" rows.

    precision = TP / (TP + FP) (of the pictures predicted as the class, the share that are it),
    recall = TP / (TP + FN) (of the pictures of the class, the share found), F1 = their harmonic
    mean; a zero denominator gives 0.0. Macro: the plain mean over classes (F1 too is the mean of
    the per-class F1s); weighted: the mean weighted by support. Each row: {"class", "kind"
    ("class" | "macro" | "weighted"), "precision", "recall", "f1", "support"}.
    """
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(classes):
        raise ValueError(f"confusion matrix must be {len(classes)}x{len(classes)}, got {cm.shape}")
    n = len(classes)
    # The pictures the matrix counts, back as (true, predicted) pairs: sklearn takes labels.
    cells = np.repeat(np.arange(n * n), cm.ravel())
    y_true, y_pred = cells // n, cells % n
    support = cm.sum(axis=1)
    scores = {}
    for average in (None, "macro", "weighted"):
        if len(cells):
            p, r, f, _ = skm.precision_recall_fscore_support(
                y_true, y_pred, labels=np.arange(n), average=average, zero_division=0
            )
        else:
            p = r = f = np.zeros(n) if average is None else 0.0
        scores[average] = (p, r, f)
    precision, recall, f1 = scores[None]
    rows = [
        {
            "class": str(c),
            "kind": "class",
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    ]
    for kind in ("macro", "weighted"):
        p, r, f = scores[kind]
        rows.append(
            {
                "class": f"{kind} avg",
                "kind": kind,
                "precision": float(p),
                "recall": float(r),
                "f1": float(f),
                "support": int(support.sum()),
            }
        )
    return rows


def most_confused(cm, classes: Sequence[str], min_count: int = 1) -> list[tuple[str, str, int]]:
    """(true class, predicted class, count) for every off-diagonal cell of `cm` holding at least
    min_count pictures, most pictures first (equal counts in the matrix's row-major order), like
    fastai's ClassificationInterpretation.most_confused."""
    cm = np.asarray(cm, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(classes):
        raise ValueError(f"confusion matrix must be {len(classes)}x{len(classes)}, got {cm.shape}")
    pairs = [
        (str(classes[t]), str(classes[p]), int(cm[t, p]))
        for t in range(len(classes))
        for p in range(len(classes))
        if t != p and cm[t, p] >= max(1, min_count)
    ]
    return sorted(pairs, key=lambda pair: -pair[2])  # sorted is stable: ties keep row-major order


# ---------------------------------------------------------------------------- ROC


def roc_curve(
    y_true_binary, scores, drop_intermediate: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct score threshold, highest threshold first.

    A sample is called positive when its score >= threshold. Equal scores are one threshold
    (a tie moves the curve diagonally, not along a staircase picked by input order). The curve
    starts at (0, 0) with threshold +inf and ends at (1, 1). drop_intermediate removes points on
    straight segments (fewer points to draw, same area). Raises ValueError when only one class
    is present (a rate would divide by zero).
    """
    y = _labels(y_true_binary, "y_true_binary")
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != y.shape:
        raise ValueError("y_true_binary and scores differ in shape")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true_binary must hold 0 and 1 only")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        which = "positive" if positives == 0 else "negative"
        raise ValueError(f"no {which} samples: the ROC curve is undefined with only one class present")
    return skm.roc_curve(y, s, drop_intermediate=drop_intermediate)


def auc(fpr, tpr) -> float:
    """Area under a curve by the trapezoid rule; x (fpr) must be monotonic (as roc_curve returns)."""
    x, y = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError("auc needs two 1-D arrays of the same length, at least 2 points")
    return float(skm.auc(x, y))  # ValueError when x is neither increasing nor decreasing


@dataclass
class RocOneVsRest(Mapping):
    """{class index: (fpr, tpr, auc)} for every class (that class against all others), plus
    macro_auc (mean of the defined AUCs) and reasons (class index -> why its curve is undefined;
    such a class maps to (empty, empty, None))."""

    curves: dict[int, tuple[np.ndarray, np.ndarray, float | None]] = field(default_factory=dict)
    macro_auc: float | None = None
    reasons: dict[int, str] = field(default_factory=dict)

    def __getitem__(self, k: int) -> tuple[np.ndarray, np.ndarray, float | None]:
        return self.curves[k]

    def __iter__(self) -> Iterator[int]:
        return iter(self.curves)

    def __len__(self) -> int:
        return len(self.curves)

    def to_dict(self) -> dict:
        """JSON-ready: {"macro_auc", "classes": {"<index>": {"fpr", "tpr", "auc", "reason"}}}."""
        return {
            "macro_auc": self.macro_auc,
            "classes": {
                str(k): {
                    "fpr": [float(v) for v in fpr],
                    "tpr": [float(v) for v in tpr],
                    "auc": a,
                    "reason": self.reasons.get(k),
                }
                for k, (fpr, tpr, a) in self.curves.items()
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> RocOneVsRest:
        curves, reasons = {}, {}
        for k, c in d.get("classes", {}).items():
            curves[int(k)] = (
                np.asarray(c["fpr"], dtype=np.float64),
                np.asarray(c["tpr"], dtype=np.float64),
                c["auc"],
            )
            if c.get("reason"):
                reasons[int(k)] = c["reason"]
        return cls(curves, d.get("macro_auc"), reasons)


def roc_one_vs_rest(y_true, probs, drop_intermediate: bool = False) -> RocOneVsRest:
    """One ROC curve per class: class k's probability as the score, "is class k" as the truth.

    A class absent from y_true (or the only one present) gets AUC None and a reason. With two
    classes both curves are mirror images with the same AUC.
    """
    y, p = _probs(y_true, probs)
    result = RocOneVsRest()
    for k in range(p.shape[1]):
        truth = (y == k).astype(np.int64)
        try:
            fpr, tpr, _ = roc_curve(truth, p[:, k], drop_intermediate=drop_intermediate)
        except ValueError as e:
            result.curves[k] = (np.zeros(0), np.zeros(0), None)
            result.reasons[k] = (
                "no pictures of this class in the set"
                if truth.sum() == 0
                else "only this class is in the set"
                if truth.all()
                else str(e)
            )
            continue
        result.curves[k] = (fpr, tpr, auc(fpr, tpr))
    defined = [a for _, _, a in result.curves.values() if a is not None]
    result.macro_auc = float(np.mean(defined)) if defined else None
    return result


# ---------------------------------------------------------------------------- losses


def per_sample_loss(y_true, probs, eps: float = EPS) -> np.ndarray:
    """Cross-entropy of each sample: -log p[true class], p clipped to [eps, 1 - eps].

    Not sklearn.metrics.log_loss: that one gives only the mean and clips at the float's machine
    epsilon, so a sure mistake would cost 36 instead of Keras' 16 and the loss would not match
    val_loss."""
    y, p = _probs(y_true, probs)
    return -np.log(np.clip(p[np.arange(len(y)), y], eps, 1 - eps))


def log_loss(y_true, probs, eps: float = EPS) -> float:
    """Mean cross-entropy (see per_sample_loss); equals Keras' (sparse) categorical or binary crossentropy."""
    return float(per_sample_loss(y_true, probs, eps).mean())


def accuracy(y_true, y_pred) -> float:
    """Share of correct predictions; y_pred is labels (N,) or probabilities (N, C) (argmax taken)."""
    y = _labels(y_true)
    pred = np.asarray(y_pred)
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    pred = _labels(pred, "y_pred")
    if len(pred) != len(y):
        raise ValueError("y_true and y_pred differ in length")
    if len(y) == 0:
        raise ValueError("no samples")
    return float(skm.accuracy_score(y, pred))


def top_losses(y_true, probs, k: int) -> list[int]:
    """Indices of the k most confidently wrong predictions.

    Only misclassified samples (argmax != true class; argmax ties go to the lower class index)
    are returned, ordered by per-sample cross-entropy descending, equal losses by index
    ascending. Fewer than k come back when fewer are wrong.
    """
    y, p = _probs(y_true, probs)
    losses = per_sample_loss(y, p)
    wrong = np.flatnonzero(p.argmax(axis=1) != y)
    order = np.lexsort((wrong, -losses[wrong]))  # last key is primary: loss desc, then index
    return [int(i) for i in wrong[order][: max(0, int(k))]]


def pair_mistakes(y_true, probs, true: int, pred: int, k: int) -> list[int]:
    """Indices of the k most confident pictures of class `true` predicted as `pred`, most sure first."""
    y, p = _probs(y_true, probs)
    picked = np.flatnonzero((y == true) & (p.argmax(axis=1) == pred))
    order = np.lexsort((picked, -p[picked, pred]))
    return [int(i) for i in picked[order][: max(0, int(k))]]
