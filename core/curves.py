"""What the Monitor page plots: smoothing, metric tables from metrics.jsonl, hints and progress.

Pure Python and numpy (no Keras), so the page can redraw every second while a run trains.

metrics.jsonl rows (written by core.train's run callback) look like
    {"kind": "batch", "epoch": 3, "batch": 10, "step": 110, "loss": .., "accuracy": ..,
     "lr": .., "images_per_s": .., "time": ..}
    {"kind": "epoch", "epoch": 3, "step": 150, "complete": true, "seconds": .., "loss": ..,
     "accuracy": .., "val_loss": .., "val_accuracy": .., "lr": .., "images_per_s": .., "time": ..}
Any key may be missing. An epoch stopped part-way is logged with "complete": false; when the
run is resumed, that epoch is trained again and logged again: the later row wins.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

# ---------------------------------------------------------------------------- smoothing


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def smooth(values: Sequence[float | None], weight: float) -> list[float | None]:
    """Debiased exponential moving average, as TensorBoard's and W&B's smoothing slider.

    For each finite value v (n counts the finite values so far, `last` starts at 0):
        last = last * weight + (1 - weight) * v
        smoothed = last / (1 - weight ** n)
    Dividing by 1 - weight**n removes the pull towards the starting 0, so the first smoothed
    point equals the first value and early points are averages of what came before, not damped.
    Non-finite values (NaN, inf, None) pass through unchanged and do not update the state.
    weight 0 returns the values as they are; weight must be in [0, 1).

    TensorBoard's implementation (the "classic" smoothing of the scalar dashboard):
    https://github.com/tensorflow/tensorboard/blob/34877f15153e1a2087316b9952c931807a122aa7/tensorboard/components/vz_line_chart2/line-chart.ts#L699
    (One difference: TensorBoard also returns a constant series unsmoothed, to dodge float
    round-off; here a constant series comes out constant up to round-off.)
    """
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    if weight == 0:
        return list(values)
    out: list[float | None] = []
    last, n = 0.0, 0
    for v in values:
        if not _finite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * float(v)
        n += 1
        out.append(last / (1 - weight**n))
    return out


# ---------------------------------------------------------------------------- tables


@dataclass
class Table:
    """Columns for plotting, one entry per row; None where a row lacks the value.

    x is the epoch number (epoch_table) or the global batch step (batch_table).
    """

    x: list[int] = field(default_factory=list)
    epoch: list[int | None] = field(default_factory=list)
    loss: list[float | None] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float | None] = field(default_factory=list)
    images_per_s: list[float | None] = field(default_factory=list)
    time: list[float | None] = field(default_factory=list)
    seconds: list[float | None] = field(default_factory=list)  # epoch rows: how long the epoch took
    complete: list[bool] = field(default_factory=list)  # epoch rows: False for an epoch cut short

    def __len__(self) -> int:
        return len(self.x)

    def to_dict(self) -> dict[str, list]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    def has(self, column: str) -> bool:
        """True when some row has a finite value in `column`."""
        return any(_finite(v) for v in getattr(self, column))


def _number(row: dict, *keys: str) -> float | None:
    for k in keys:
        v = row.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _append(table: Table, row: dict, x: int, complete: bool) -> None:
    table.x.append(x)
    table.epoch.append(_int(row.get("epoch")))
    table.loss.append(_number(row, "loss"))
    table.accuracy.append(_number(row, "accuracy", "acc"))
    table.val_loss.append(_number(row, "val_loss"))
    table.val_accuracy.append(_number(row, "val_accuracy", "val_acc"))
    table.lr.append(_number(row, "lr", "learning_rate"))
    table.images_per_s.append(_number(row, "images_per_s"))
    table.time.append(_number(row, "time"))
    table.seconds.append(_number(row, "seconds"))
    table.complete.append(complete)


def _epoch_rows(rows: Iterable[dict]) -> list[dict]:
    """Epoch rows, one per epoch number (the last logged wins: a resumed epoch replaces its cut-short row)."""
    by_epoch: dict[int, dict] = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("kind") != "epoch":
            continue
        epoch = _int(row.get("epoch"))
        if epoch is not None:
            by_epoch[epoch] = row
    return [by_epoch[e] for e in sorted(by_epoch)]


def epoch_table(rows: Iterable[dict]) -> Table:
    """One entry per epoch, x = epoch number (1-based), in epoch order."""
    table = Table()
    for row in _epoch_rows(rows):
        _append(table, row, int(row["epoch"]), row.get("complete", True) is not False)
    return table


def batch_table(rows: Iterable[dict]) -> Table:
    """One entry per logged batch, x = global step. When steps go back (a resumed run trains a
    cut-short epoch again), the earlier rows from that step on are dropped, like TensorBoard's purge."""
    kept: list[tuple[int, dict]] = []
    for row in rows:
        if not isinstance(row, dict) or row.get("kind") != "batch":
            continue
        step = _int(row.get("step"))
        if step is None:
            continue
        while kept and kept[-1][0] >= step:
            kept.pop()
        kept.append((step, row))
    table = Table()
    for step, row in kept:
        _append(table, row, step, True)
    return table


def best_epoch(rows: Iterable[dict]) -> int | None:
    """The epoch (1-based) with the lowest finite val_loss; the earliest on ties; None without any."""
    best: tuple[float, int] | None = None
    for row in _epoch_rows(rows):
        v = _number(row, "val_loss")
        if v is not None and math.isfinite(v) and (best is None or v < best[0]):
            best = (v, int(row["epoch"]))
    return best[1] if best else None


# ---------------------------------------------------------------------------- hints

# Overfitting: val_loss's best is at least this many complete epochs ago...
OVERFIT_EPOCHS_SINCE_BEST = 3
# ...the latest val_loss is above the best by at least this fraction (noise is not a rise)...
OVERFIT_MIN_VAL_RISE = 0.02
# ...and the training loss fell by at least this fraction since the best epoch.
OVERFIT_MIN_TRAIN_DROP = 0.02
# Stalled: over the last STALL_EPOCHS complete epochs the training loss moved less than
# STALL_MAX_LOSS_CHANGE (relative), and the training accuracy is within STALL_CHANCE_MARGIN of chance.
STALL_EPOCHS = 3
STALL_MAX_LOSS_CHANGE = 0.01
STALL_CHANCE_MARGIN = 0.05


def hints(rows: Iterable[dict], num_classes: int | None = None) -> list[str]:
    """Plain-language advice about the curves so far; empty when nothing looks wrong.

    Only complete epochs count. num_classes sets chance accuracy (1 / num_classes) for the
    stalled check; without it 2 classes are assumed.
    """
    table = epoch_table(rows)
    done = [i for i in range(len(table)) if table.complete[i]]
    loss = [table.loss[i] for i in done]
    acc = [table.accuracy[i] for i in done]
    val = [table.val_loss[i] for i in done]
    epochs = [table.x[i] for i in done]
    out: list[str] = []

    bad = next((epochs[i] for i, v in enumerate(loss) if v is not None and not math.isfinite(v)), None)
    if bad is not None:
        out.append(
            f"The training loss stopped being a number at epoch {bad}: the model's numbers blew up. "
            "A lower learning rate usually fixes this."
        )
        return out

    with_val = [i for i, v in enumerate(val) if v is not None and math.isfinite(v)]
    if with_val:
        b = min(with_val, key=lambda i: val[i])  # earliest lowest
        last = with_val[-1]
        since = len([i for i in with_val if i > b])
        if (
            since >= OVERFIT_EPOCHS_SINCE_BEST
            and val[last] > val[b] * (1 + OVERFIT_MIN_VAL_RISE)
            and _finite(loss[b])
            and _finite(loss[last])
            and loss[last] < loss[b] * (1 - OVERFIT_MIN_TRAIN_DROP)
        ):
            out.append(
                "The model is starting to memorise the training pictures: validation loss has risen "
                f"for {since} epochs while training loss keeps falling. More augmentation, dropout, "
                f"or stopping at epoch {epochs[b]} would help."
            )

    if len(loss) > STALL_EPOCHS:
        first, latest = loss[-STALL_EPOCHS - 1], loss[-1]
        chance = 1 / (num_classes or 2)
        if (
            _finite(first)
            and _finite(latest)
            and _finite(acc[-1])
            and abs(latest - first) <= STALL_MAX_LOSS_CHANGE * max(abs(first), 1e-12)
            and acc[-1] <= chance + STALL_CHANCE_MARGIN
        ):
            out.append(
                f"Training has stalled: the training loss barely moved over the last {STALL_EPOCHS} "
                f"epochs and accuracy ({acc[-1]:.0%}) is about what guessing gives ({chance:.0%}). "
                "Try a higher learning rate, another optimizer, or check that the classes really differ."
            )
    return out


# ---------------------------------------------------------------------------- progress


def progress(status: dict, rows: Iterable[dict], now: float) -> dict[str, Any]:
    """Where a run is and how long it still needs.

    Returns state, epoch (current, 1-based), epochs, batch, batches, epoch_fraction (of the
    current epoch), fraction (of the whole run), elapsed (seconds since this process started
    training, or until it ended), eta (seconds; None when unknown or the run is not active) and
    images_per_s (latest logged). The ETA uses the mean time of the last few complete epochs,
    or before the first epoch ends, the batch rate of the current epoch (validation not included).
    """
    rows = list(rows)
    state = status.get("state")
    epochs = _int(status.get("epochs")) or 0
    epoch = _int(status.get("epoch")) or 0
    batches = _int(status.get("batches")) or 0
    batch = _int(status.get("batch")) or 0
    table = epoch_table(rows)
    done_epochs = sum(1 for c in table.complete if c)
    epoch_fraction = min(1.0, batch / batches) if batches else 0.0
    if state == "done":
        fraction = 1.0
    elif epochs:
        fraction = min(1.0, (max(epoch - 1, 0) + epoch_fraction) / epochs) if epoch else done_epochs / epochs
    else:
        fraction = 0.0

    started = status.get("started")
    end = status.get("ended") if state not in ("queued", "running") else None
    elapsed = max(0.0, float(end or now) - float(started)) if _finite(started) else None

    eta: float | None = None
    if state == "running" and epochs:
        remaining_epochs = max(0.0, epochs - max(epoch - 1, 0) - epoch_fraction)
        recent = [s for s, c in zip(table.seconds, table.complete) if c and _finite(s)][-3:]
        if recent:
            eta = remaining_epochs * (sum(recent) / len(recent))
        elif batches:
            current = [
                r
                for r in rows
                if r.get("kind") == "batch" and _int(r.get("epoch")) == epoch and _finite(r.get("time"))
            ]
            if len(current) >= 2:
                db = float(current[-1].get("batch", 0)) - float(current[0].get("batch", 0))
                dt = float(current[-1]["time"]) - float(current[0]["time"])
                if db > 0 and dt > 0:
                    eta = remaining_epochs * batches * dt / db

    ips = None
    for row in reversed(rows):
        v = _number(row, "images_per_s") if isinstance(row, dict) else None
        if v is not None:
            ips = v
            break
    return {
        "state": state,
        "epoch": epoch,
        "epochs": epochs,
        "batch": batch,
        "batches": batches,
        "epoch_fraction": epoch_fraction,
        "fraction": fraction,
        "elapsed": elapsed,
        "eta": eta,
        "images_per_s": ips,
    }
