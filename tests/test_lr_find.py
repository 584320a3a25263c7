"""core.lr_find: a short exponential learning-rate sweep on a throw-away model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import data, demo, lr_find
from core.config import QUICK_DEMO, TrainConfig


@pytest.fixture
def shapes(workspace):
    root = demo.generate(workspace / "datasets" / "shapes", per_class=120, size=48)
    data.save_split(data.make_split(data.scan(root), data.SplitSpec("fractions", 0.6, 0.2, 0.2)), name="s")
    return workspace


def test_suggestion_lies_where_the_loss_drops_on_the_demo(shapes):
    config = TrainConfig(split="s", **QUICK_DEMO)
    messages = []
    found = lr_find.find_lr(config, steps=100, progress=messages.append)
    assert len(found.lrs) == len(found.losses) == len(found.smoothed) >= 10
    assert found.lrs[0] == pytest.approx(1e-7) and found.lrs == sorted(found.lrs)
    i = found.lrs.index(found.suggestion)
    decade = 100 // 7  # 100 batches over 7 decades of rate
    lowest = int(np.nanargmin(found.smoothed))
    print(f"\nsuggested {found.suggestion:.1e}; lowest smoothed loss at {found.lrs[lowest]:.1e}")
    assert found.smoothed[i] < found.smoothed[0]  # already learning at the suggestion...
    assert found.smoothed[min(i + decade, lowest)] < found.smoothed[i]  # ...and still falling after it
    assert i < lowest
    assert any("trying learning rates" in m for m in messages)
    assert not (shapes / "runs").exists() or not any((shapes / "runs").iterdir())  # no run was made


def test_a_diverging_sweep_stops_early(shapes):
    config = TrainConfig(split="s", model="small", image_size=32, optimizer="sgd", learning_rate=0.1)
    found = lr_find.find_lr(config, min_lr=1e-3, max_lr=1e4, steps=60)
    assert found.diverged and len(found.lrs) < 60
    assert not math.isfinite(found.losses[-1]) or found.smoothed[-1] > lr_find.DIVERGED * min(found.smoothed)


def test_valley_rule_on_a_made_up_curve():
    lrs = list(np.logspace(-6, 0, 61))
    # flat, then a steady fall from 1e-4 to 1e-2, then a blow-up
    loss = [2.0 if lr < 1e-4 else 2.0 - 0.5 * (math.log10(lr) + 4) if lr <= 1e-2 else 9.0 for lr in lrs]
    assert 1e-4 < lr_find.suggest(lrs, loss) < 1e-2


def test_bad_ranges_are_refused(shapes):
    config = TrainConfig(split="s", **QUICK_DEMO)
    with pytest.raises(ValueError, match="min_lr < max_lr"):
        lr_find.find_lr(config, min_lr=1e-2, max_lr=1e-3)
    with pytest.raises(ValueError, match="at least 10 steps"):
        lr_find.find_lr(config, steps=3)
