"""The Keras callbacks of training: the run callback (metrics rows, checkpoints, stop between
batches, early stopping) and the plateau schedule, with the plain-float logs both trainings record."""

from __future__ import annotations

import time

import numpy as np

from core.config import TrainConfig
from core.modelfile import save_atomic
from core.rundir import RunControl
from core.tensorboard import FOLDER, EventLog


def _current_lr(model) -> float | None:
    """The rate the optimizer steps with now (a schedule's current value); None when unreadable."""
    try:
        from keras import ops

        return float(ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:
        return None


def scalar_logs(logs: dict | None) -> dict[str, float]:
    """The logs Keras passes to callbacks, as plain floats (only the scalar ones)."""
    return {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v) or getattr(v, "shape", None) == ()}


def make_run_callback(
    control: RunControl,
    config: TrainConfig,
    steps: int,
    n_train: int,
    save_model=None,
    state: dict | None = None,
):
    """A Keras callback that logs metrics, beats, checkpoints (best and last) and obeys stop requests.
    Every metrics row also goes to TensorBoard event files in the run's tensorboard/ folder.

    Batch rows describe the batches since the previous row: their images, mean loss and accuracy
    (recovered from Keras' running means over the epoch, which would lag and jump at epoch starts),
    speed and learning rate. Epoch rows carry Keras' epoch means, the validation metrics and
    `complete` (False for an epoch cut short by a stop request, which a resumed run trains again).
    save_model: what to checkpoint when it is not the model being fit (features mode: the full
    image model, while the head being fit goes to resume.keras).
    """
    import keras

    class RunCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.state = {
                "epochs_done": 0,
                "best_val_loss": None,
                "best_epoch": None,
                "wait": 0,
                **(state or {}),
            }
            self.stopped = False
            self.early_stopped = False
            self.events = EventLog(control.path / FOLDER)

        def log(self, row: dict) -> None:
            control.log(row)
            self.events.add(row)

        def on_train_end(self, logs=None):
            self.events.close()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epoch_start = time.perf_counter()
            self.train_seconds: float | None = None
            self.batches = 0
            self.last_row: tuple[int, float, dict[str, float]] = (
                0,
                self.epoch_start,
                {},
            )  # seen, clock, means
            self.last_status = self.epoch_start
            control.update(epoch=epoch + 1, epochs=config.epochs, batch=0, batches=steps)

        def _seen(self) -> int:
            return min(self.batches * config.batch_size, n_train)

        def _recent(self, means: dict[str, float], seen: int) -> dict[str, float]:
            """Means over the images since the last row, from running means (both sample-weighted)."""
            prev_seen, _, prev = self.last_row
            out = {
                k: (v * seen - prev.get(k, 0.0) * prev_seen) / (seen - prev_seen) for k, v in means.items()
            }
            if "accuracy" in out:
                out["accuracy"] = min(max(out["accuracy"], 0.0), 1.0)  # float32 rounding
            return out

        def on_train_batch_end(self, batch, logs=None):
            self.batches = batch + 1
            now = time.perf_counter()
            if self.batches >= steps:
                self.train_seconds = now - self.epoch_start
            if self.batches % config.log_every == 0 or self.batches == steps:
                means, seen = scalar_logs(logs), self._seen()
                prev_seen, prev_clock, _ = self.last_row
                self.log(
                    {
                        "kind": "batch",
                        "epoch": self.epoch + 1,
                        "batch": self.batches,
                        "step": self.epoch * steps + self.batches,
                        "images": seen - prev_seen,
                        "images_per_s": (seen - prev_seen) / max(now - prev_clock, 1e-9),
                        "lr": _current_lr(self.model),
                        **self._recent(means, seen),
                    }
                )
                self.last_row = (seen, now, means)
            if now - self.last_status >= 0.5 or self.batches >= steps:  # at most 2 status writes a second
                control.update(batch=self.batches, batches=steps)
                self.last_status = now
            if control.should_stop():
                self.stopped = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = scalar_logs(logs)
            seconds = time.perf_counter() - self.epoch_start
            train_seconds = self.train_seconds or seconds
            complete = self.batches >= steps
            self.log(
                {
                    "kind": "epoch",
                    "epoch": epoch + 1,
                    "step": epoch * steps + self.batches,
                    "complete": complete,
                    "seconds": seconds,  # training and validation
                    "images_per_s": self._seen() / max(train_seconds, 1e-9),
                    "lr": _current_lr(self.model),
                    **logs,
                }
            )
            val = logs.get("val_loss")
            best = self.state.get("best_val_loss")
            target = save_model or self.model
            if val is not None and np.isfinite(val) and (best is None or val < best):
                self.state.update(best_val_loss=val, best_epoch=epoch + 1, wait=0)
                save_atomic(target, control.path / "best.keras")
            elif complete:
                self.state["wait"] = self.state.get("wait", 0) + 1
            if val is None:
                save_atomic(target, control.path / "best.keras")  # no validation set: best = latest
            if complete:
                self.state["epochs_done"] = epoch + 1
            save_atomic(target, control.path / "last.keras")
            if save_model is not None:
                save_atomic(self.model, control.path / "resume.keras")
            control.save_state(self.state)  # last: it vouches for the files
            if control.should_stop():  # asked during validation: do not start another epoch
                self.stopped = True
                self.model.stop_training = True
            if config.patience and self.state["wait"] >= config.patience:
                self.early_stopped = True
                self.model.stop_training = True
                control.update(message=f"early stop: no better val_loss for {config.patience} epochs")

    return RunCallback()


def plateau_callback(config: TrainConfig, has_validation: bool):
    """The 'plateau' schedule: the learning rate x0.2 after 2 epochs without a better val_loss (the
    training loss when there is no validation set); None for the other schedules."""
    import keras

    if config.lr_schedule != "plateau":
        return None
    monitor = "val_loss" if has_validation else "loss"
    return keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.2, patience=2)
