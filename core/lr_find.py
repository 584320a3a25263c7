"""Find a learning rate: a short trial that raises the rate exponentially, batch by batch, from the
current settings, and records the loss (fastai's ``lr_find``, after Leslie Smith, "Cyclical
Learning Rates for Training Neural Networks", 2017, https://arxiv.org/abs/1506.01186).

The trial builds the model exactly as a run of the same config would (mode, network, augmentation,
precision), trains it on training batches for at most `steps` batches, and throws it away: no run
folder is made and no saved run is touched (features mode may fill the shared feature cache).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import curves, devices, train
from core.config import TrainConfig
from core.feeding import batches
from core.optim import compile_model
from core.workspace import workspace_dir

SMOOTHING = 0.9  # the loss of one batch is noisy; fastai smooths with 0.98 over 100 batches
DIVERGED = 4.0  # stop once the smoothed loss is this many times its best


@dataclass
class LRFinding:
    """Learning rates tried (one per batch), the loss of each batch, the smoothed loss, and the
    suggested rate (see suggest)."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    diverged: bool


class _Trial:
    """Stands in for a run's RunControl while the model and data are prepared: progress messages
    go to a callback, nothing is written."""

    def __init__(self, workspace: Path, progress: Callable[[str], None] | None) -> None:
        self.path = workspace / "runs" / ".lr-find"  # never created; only its parents are used
        self.resume = False
        self._progress = progress

    def update(self, **fields) -> None:
        if self._progress and fields.get("message"):
            self._progress(str(fields["message"]))

    def should_stop(self) -> bool:
        return False


def suggest(lrs: list[float], smoothed: list[float]) -> float:
    """fastai's "valley" rule: find the longest stretch over which the smoothed loss keeps falling
    (the longest decreasing subsequence) and take the rate halfway between its first and second
    thirds: far enough in to be learning fast, well short of where the loss turns up."""
    n = len(smoothed)
    if n < 3:
        raise ValueError("too few points to suggest a learning rate")
    run = [1] * n  # run[i]: length of the longest decreasing subsequence ending at i
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if smoothed[i] < smoothed[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[i] > run[end]:
            end = i
            start = end - run[end]
    third = (end - start) / 3
    return float(lrs[max(0, start) + int(third) + int(third / 2)])


def find_lr(
    config: TrainConfig,
    workspace: str | os.PathLike | None = None,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    steps: int = 100,
    progress: Callable[[str], None] | None = None,
) -> LRFinding:
    """Train a throw-away copy of `config`'s model for up to `steps` batches, the rate rising from
    min_lr to max_lr exponentially; stop early once the loss diverges."""
    import keras

    if not 0 < min_lr < max_lr:
        raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
    if steps < 10:
        raise ValueError(f"need at least 10 steps, got {steps}")
    ws = workspace_dir(workspace)
    config = train.finalize(config, ws)
    train.check_inputs(config, ws)
    trial = _Trial(ws, progress)
    data = train.load_run_data(trial, config)
    plan = devices.device_plan(config)
    policy = keras.config.dtype_policy()
    keras.mixed_precision.set_dtype_policy(plan["precision"])
    try:
        keras.utils.set_random_seed(config.seed)
        fit = train.prepare_fit(trial, config, data, plan["jit_compile"])
        # A constant rate that this loop sets before every batch (a schedule would override it).
        constant = dataclasses.replace(config, lr_schedule="constant", warmup_epochs=0, learning_rate=min_lr)
        compile_model(fit.model, constant, len(data.classes), fit.steps, plan["jit_compile"])
        feed = fit.x if fit.y is None else batches(fit.x, fit.y, config.batch_size, True, config.seed)
        return _sweep(fit.model, feed, min_lr, max_lr, steps, progress)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)


def _sweep(model, feed, min_lr: float, max_lr: float, steps: int, progress) -> LRFinding:
    lrs, losses = [], []
    best, diverged = math.inf, False
    ratio = max_lr / min_lr
    for i in range(steps):
        if i and i % len(feed) == 0:
            feed.on_epoch_end()
        lr = min_lr * ratio ** (i / (steps - 1))
        model.optimizer.learning_rate = lr
        x, y = feed[i % len(feed)]
        loss = float(np.asarray(model.train_on_batch(x, y, return_dict=True)["loss"]))
        lrs.append(lr)
        losses.append(loss)
        smoothed = curves.smooth(losses, SMOOTHING)[-1]
        if progress and i % 10 == 0:
            progress(f"trying learning rates: batch {i + 1} of {steps}, rate {lr:.1e}")
        if not math.isfinite(loss) or (i >= 10 and smoothed > DIVERGED * best):
            diverged = True
            break
        best = min(best, smoothed)
    finite = [v if math.isfinite(v) else math.nan for v in losses]
    smoothed_all = [math.nan if v is None else float(v) for v in curves.smooth(finite, SMOOTHING)]
    return LRFinding(lrs, losses, smoothed_all, suggest(lrs, smoothed_all), diverged)
