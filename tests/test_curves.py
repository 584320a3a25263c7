"""core.curves: smoothing by hand, tables from metrics.jsonl rows, hints, progress."""

from __future__ import annotations

import math

import pytest

from core import curves


def approx(values):
    return pytest.approx(values, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------- smoothing


def test_smooth_matches_hand_computation():
    # weight 0.5, values 1, 2, 3, 4; last starts at 0, debias by 1 - 0.5**n:
    #   n=1: last = 0.5*0     + 0.5*1 = 0.5     -> 0.5    / 0.5    = 1
    #   n=2: last = 0.5*0.5   + 0.5*2 = 1.25    -> 1.25   / 0.75   = 5/3
    #   n=3: last = 0.5*1.25  + 0.5*3 = 2.125   -> 2.125  / 0.875  = 17/7
    #   n=4: last = 0.5*2.125 + 0.5*4 = 3.0625  -> 3.0625 / 0.9375 = 49/15
    assert curves.smooth([1, 2, 3, 4], 0.5) == approx([1, 5 / 3, 17 / 7, 49 / 15])


def test_smooth_weight_zero_is_identity_and_weight_checked():
    values = [3.0, float("nan"), -1.0, 7.5]
    out = curves.smooth(values, 0)
    assert out[0] == 3.0 and math.isnan(out[1]) and out[2:] == [-1.0, 7.5]
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError):
            curves.smooth([1.0], bad)
    assert curves.smooth([], 0.9) == []


def test_smooth_passes_non_finite_values_without_updating_state():
    out = curves.smooth([1.0, float("nan"), 3.0, None, float("inf"), 5.0], 0.5)
    # The finite values alone are 1, 3, 5: n=1 -> 1; n=2: last = .25 + 1.5 = 1.75 -> 1.75/.75 = 7/3;
    # n=3: last = .875 + 2.5 = 3.375 -> 3.375/.875 = 27/7.
    assert out[0] == 1.0 and math.isnan(out[1]) and out[3] is None and out[4] == float("inf")
    assert [out[0], out[2], out[5]] == approx([1, 7 / 3, 27 / 7])


def test_smooth_constant_stays_constant_and_first_point_is_kept():
    assert curves.smooth([0.3] * 50, 0.99) == pytest.approx([0.3] * 50, rel=1e-9)
    assert curves.smooth([2.0, 10.0], 0.9)[0] == 2.0


# ---------------------------------------------------------------------------- tables


def epoch_row(epoch, loss=None, val_loss=None, accuracy=None, complete=True, **more):
    row = {"kind": "epoch", "epoch": epoch, "step": epoch * 10, "complete": complete, **more}
    for k, v in (("loss", loss), ("val_loss", val_loss), ("accuracy", accuracy)):
        if v is not None:
            row[k] = v
    return row


def test_epoch_table_takes_the_last_row_per_epoch_and_tolerates_missing_keys():
    rows = [
        {"kind": "batch", "epoch": 1, "batch": 5, "step": 5, "loss": 0.9},
        epoch_row(1, 0.8, 0.85, 0.55, lr=1e-4, images_per_s=100.0, time=10.0, seconds=9.0),
        epoch_row(2, 0.7, complete=False),  # stopped part-way, no validation
        {"kind": "epoch"},  # junk: no epoch number
        "not a dict",
        epoch_row(2, 0.6, 0.7, 0.6, val_accuracy=0.58, learning_rate=5e-5),  # resumed: replaces it
        epoch_row(3, 0.5, complete=False),
    ]
    t = curves.epoch_table(rows)
    assert t.x == [1, 2, 3]
    assert t.loss == [0.8, 0.6, 0.5]
    assert t.val_loss == [0.85, 0.7, None]
    assert t.val_accuracy == [None, 0.58, None]
    assert t.lr == [1e-4, 5e-5, None]
    assert t.complete == [True, True, False]
    assert t.images_per_s == [100.0, None, None] and t.seconds == [9.0, None, None]
    assert t.has("val_loss") and len(t) == 3
    assert not curves.epoch_table([epoch_row(1, 0.5)]).has("val_loss")
    assert set(t.to_dict()) >= {
        "x",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "images_per_s",
        "time",
    }


def test_batch_table_uses_steps_and_drops_rows_a_resume_retrains():
    rows = [
        {"kind": "batch", "epoch": 1, "batch": 5, "step": 5, "loss": 1.0, "accuracy": 0.5},
        {"kind": "batch", "epoch": 1, "batch": 10, "step": 10, "loss": 0.9},
        epoch_row(1, 0.9),
        {"kind": "batch", "epoch": 2, "batch": 5, "step": 15, "loss": 0.8},
        {"kind": "batch", "epoch": 2, "batch": 10, "step": 20, "loss": 0.7},  # then stopped
        {"kind": "batch", "epoch": 2, "batch": 5, "step": 15, "loss": 0.75},  # resumed epoch 2
        {"kind": "batch", "epoch": 2, "batch": 10, "step": 20, "loss": 0.65, "lr": 1e-3},
        {"kind": "batch", "loss": 0.1},  # no step: skipped
    ]
    t = curves.batch_table(rows)
    assert t.x == [5, 10, 15, 20]
    assert t.loss == [1.0, 0.9, 0.75, 0.65]
    assert t.accuracy == [0.5, None, None, None] and t.lr[-1] == 1e-3


def test_best_epoch():
    rows = [epoch_row(1, 1, 0.9), epoch_row(2, 1, 0.5), epoch_row(3, 1, float("nan")), epoch_row(4, 1, 0.5)]
    assert curves.best_epoch(rows) == 2  # earliest of the equal lowest; NaN ignored
    assert curves.best_epoch([epoch_row(1, 1.0)]) is None
    assert curves.best_epoch([]) is None


# ---------------------------------------------------------------------------- hints


def curve(losses, val_losses, accs=None):
    accs = accs or [0.5 + 0.05 * i for i in range(len(losses))]
    return [epoch_row(i + 1, lo, v, a) for i, (lo, v, a) in enumerate(zip(losses, val_losses, accs))]


def test_hint_overfitting():
    rows = curve([1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2], [1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 1.0])
    out = curves.hints(rows)
    assert len(out) == 1
    assert "memorise" in out[0] and "risen for 4 epochs" in out[0] and "stopping at epoch 3" in out[0]
    # Only 2 epochs past the best: too early to say.
    assert curves.hints(rows[:5]) == []
    # The rise is noise-sized (< OVERFIT_MIN_VAL_RISE): no hint.
    flat = curve([1.0, 0.8, 0.6, 0.5, 0.4, 0.3], [1.0, 0.8, 0.7, 0.701, 0.702, 0.703])
    assert curves.hints(flat) == []


def test_hint_stalled():
    rows = curve(
        [0.6932, 0.6931, 0.6932, 0.6930, 0.6931],
        [0.6932, 0.6932, 0.6931, 0.6932, 0.6932],
        [0.50, 0.49, 0.51, 0.50, 0.50],
    )
    out = curves.hints(rows, num_classes=2)
    assert len(out) == 1 and out[0].startswith("Training has stalled")
    # 4 classes: chance is 25%, and 50% accuracy is learning something.
    assert curves.hints(rows, num_classes=4) == []


def test_no_hint_for_a_healthy_curve_and_for_too_few_epochs():
    rows = curve([1.0, 0.7, 0.5, 0.4, 0.35, 0.3], [1.0, 0.75, 0.6, 0.5, 0.48, 0.47])
    assert curves.hints(rows) == []
    assert curves.hints([]) == []
    assert curves.hints(rows[:1]) == []


def test_hint_nan_loss_and_partial_epochs_ignored():
    assert "stopped being a number at epoch 2" in curves.hints(curve([1.0, float("nan")], [1.0, 1.0]))[0]
    # A cut-short last epoch with a big val_loss does not count.
    rows = curve([1.0, 0.7, 0.5, 0.4], [1.0, 0.75, 0.6, 0.5]) + [epoch_row(5, 0.1, 3.0, complete=False)]
    assert curves.hints(rows) == []


# ---------------------------------------------------------------------------- progress


def test_progress_eta_from_epoch_times():
    now = 1000.0
    status = {"state": "running", "epoch": 3, "epochs": 10, "batch": 5, "batches": 10, "started": 900.0}
    rows = [
        epoch_row(1, 1.0, seconds=20.0, images_per_s=50.0),
        epoch_row(2, 0.9, seconds=30.0, images_per_s=40.0),
        {"kind": "batch", "epoch": 3, "batch": 5, "step": 25, "images_per_s": 45.0, "time": 990.0},
    ]
    p = curves.progress(status, rows, now)
    assert p["epoch_fraction"] == 0.5
    assert p["fraction"] == pytest.approx(2.5 / 10)
    assert p["elapsed"] == 100.0
    assert p["eta"] == pytest.approx(7.5 * 25.0)  # 7.5 epochs left x mean of 20 s and 30 s
    assert p["images_per_s"] == 45.0


def test_progress_eta_from_batch_rate_before_the_first_epoch_ends():
    status = {"state": "running", "epoch": 1, "epochs": 2, "batch": 10, "batches": 40, "started": 0.0}
    rows = [
        {"kind": "batch", "epoch": 1, "batch": 5, "step": 5, "time": 100.0},
        {"kind": "batch", "epoch": 1, "batch": 10, "step": 10, "time": 102.0},  # 2.5 batches/s
    ]
    p = curves.progress(status, rows, 103.0)
    assert p["eta"] == pytest.approx((2 - 0.25) * 40 / 2.5)
    assert p["images_per_s"] is None


def test_progress_finished_and_unknown():
    done = {
        "state": "done",
        "epoch": 2,
        "epochs": 2,
        "batch": 4,
        "batches": 4,
        "started": 10.0,
        "ended": 40.0,
    }
    p = curves.progress(done, [], 1000.0)
    assert p["fraction"] == 1.0 and p["eta"] is None and p["elapsed"] == 30.0
    q = curves.progress({"state": "queued"}, [], 5.0)
    assert q["fraction"] == 0.0 and q["eta"] is None and q["elapsed"] is None
