"""TensorBoard event files beside metrics.jsonl, so `tensorboard --logdir workspace/runs` shows every run.

A run's rows go to <run>/tensorboard/train and <run>/tensorboard/validation under the names Keras'
own TensorBoard callback uses: batch rows as batch_loss, batch_accuracy, batch_learning_rate... at
the global batch step; epoch rows as epoch_loss, epoch_accuracy, epoch_learning_rate... at step
epoch - 1 (Keras counts epochs from 0), their val_ values under validation/ without the prefix.

Batch rows are held until their epoch ends complete: an epoch cut short by a stop is trained again
on resume, and TensorBoard (which cannot forget a written step) then shows it once, as the Monitor
page does. A resumed run writes a new event file and its steps continue. Writing is best effort: when
TensorFlow cannot write (full disk, no TensorFlow), training goes on and says so once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

TRAIN, VALIDATION = "train", "validation"
FOLDER = "tensorboard"
# Bookkeeping, not measurements: never written as scalars.
NOT_SCALARS = {"kind", "epoch", "batch", "step", "complete", "time", "images", "worker"}
TAGS = {"lr": "learning_rate", "images_per_s": "images_per_second"}


def scalars(row: dict[str, Any]) -> tuple[int, dict[str, dict[str, float]]]:
    """A metrics row -> (step, {writer: {tag: value}}) in Keras' TensorBoard names (module docstring)."""
    epoch_row = row.get("kind") == "epoch"
    prefix = "epoch_" if epoch_row else "batch_"
    step = int(row["epoch"]) - 1 if epoch_row else int(row["step"])
    out: dict[str, dict[str, float]] = {}
    for key, value in row.items():
        if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        writer = VALIDATION if key.startswith("val_") else TRAIN
        name = TAGS.get(key.removeprefix("val_"), key.removeprefix("val_"))
        out.setdefault(writer, {})[prefix + name] = float(value)
    return step, out


class EventLog:
    """Writes a run's metrics rows as TensorBoard scalars under `folder` (run/tensorboard).

    add(row) takes every row the run logs; close() when training ends. `say` tells the run's log
    (once) that writing failed; after that, rows are dropped and training is never slowed or stopped.
    """

    def __init__(self, folder: Path, say: Callable[[str], None] = lambda line: print(line, flush=True)):
        self.folder = Path(folder)
        self.say = say
        self.writers: dict[str, Any] = {}
        self.held: list[dict[str, Any]] = []
        self.failed = False

    def add(self, row: dict[str, Any]) -> None:
        if self.failed or row.get("kind") not in ("batch", "epoch"):
            return
        if row["kind"] == "batch":
            self.held.append(row)
            return
        rows, self.held = [*self.held, row], []
        if row.get("complete") is False:
            return  # trained again on resume: written then
        self._guarded(lambda: self._write(rows))

    def close(self) -> None:
        """Flush and close the files (held batch rows of an unfinished epoch are dropped)."""
        writers, self.writers = self.writers, {}
        for writer in writers.values():
            self._guarded(writer.close)

    def _guarded(self, action: Callable[[], None]) -> None:
        if self.failed:
            return
        try:
            action()
        except Exception as e:  # TensorFlow raises many kinds (NotFoundError, ResourceExhausted, OSError)
            self.failed = True
            self.say(
                f"TensorBoard event files could not be written ({type(e).__name__}: {e}); "
                "training goes on without them."
            )

    def _writer(self, name: str):
        if name not in self.writers:
            if not self.folder.parent.is_dir():  # the run was deleted: never re-create its folder
                raise FileNotFoundError(f"{self.folder.parent} is gone")
            import keras
            import tensorflow as tf

            if keras.backend.backend() != "tensorflow":  # JAX owns the GPUs; TensorFlow only writes files
                tf.config.set_visible_devices([], "GPU")
            self.writers[name] = tf.summary.create_file_writer(str(self.folder / name))
        return self.writers[name]

    def _write(self, rows: list[dict[str, Any]]) -> None:
        import tensorflow as tf

        for row in rows:
            step, by_writer = scalars(row)
            for name, values in by_writer.items():
                with self._writer(name).as_default():
                    for tag, value in values.items():
                        tf.summary.scalar(tag, value, step=step)
        for writer in self.writers.values():
            writer.flush()
