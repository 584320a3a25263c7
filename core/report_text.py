"""A run in plain words, for people who do not program: what was trained (pictures, way of training,
network, settings), on what machine, and for how long. The run report (core.report) is made of these
sentences; the Train form shows MODES' words for its modes.

Everything here returns plain text: whoever puts it into HTML escapes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# The ways of training (core.config.MODES): a short name and what it means.
MODES: dict[str, tuple[str, str]] = {
    "scratch": (
        "From scratch",
        "A new network learns everything from your pictures. Needs many pictures "
        "and time; augmentation helps it not to memorise them.",
    ),
    "features": (
        "Pretrained features (fast)",
        "A network trained on ImageNet's 1.2 million photos looks at each "
        "picture once; only a small new classifier on top learns your classes. Fast and accurate.",
    ),
    "frozen": (
        "Pretrained + augmentation",
        "Like the fast way, but every epoch shows the pretrained network "
        "freshly varied pictures. Slower, a little more accurate.",
    ),
    "finetune": (
        "Fine-tune a previous run",
        "Start from a pretrained-features run and gently retrain the top "
        "layers of the pretrained network too, at a low learning rate.",
    ),
}
OPTIMIZERS = {"rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW", "sgd": "SGD with momentum"}
RESIZING = {
    "stretch": "stretched to a square",
    "crop": "cut to a square around the middle",
    "pad": "fitted whole into a square, with bars at the sides",
}
BACKENDS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
PRECISIONS = {
    "float32": "32-bit numbers (float32)",
    "mixed_bfloat16": "16-bit numbers where safe (mixed bfloat16)",
    "mixed_float16": "16-bit numbers where safe (mixed float16)",
}


def count(n: int, thing: str) -> str:
    """'1 picture', '1,200 pictures', '4 classes'."""
    if n == 1:
        return f"1 {thing}"
    return f"{n:,} {thing}es" if thing.endswith(("ss", "sh", "x")) else f"{n:,} {thing}s"


def duration(seconds: float) -> str:
    """'0.4 s', '45 s', '3 min 20 s', '2 h 05 min'."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def when(timestamp: float, since: float | None = None) -> str:
    """A moment as people write it, in this machine's time zone: '3 December 2026, 14:05'; only
    the time ('14:05') when it is the same day as `since`."""
    moment = datetime.fromtimestamp(timestamp)
    if since is not None and datetime.fromtimestamp(since).date() == moment.date():
        return f"{moment:%H:%M}"
    return f"{moment.day} {moment:%B %Y, %H:%M}"


def pictures(config: dict, status: dict, classes: list[str], test_pictures: int | None) -> str:
    """Where the pictures came from and how many served each purpose."""
    parts = []
    if status.get("train_images") is not None:
        parts.append(f"{status['train_images']:,} to learn from")
    if status.get("val_images") is not None:
        parts.append(f"{status['val_images']:,} to check progress after each epoch")
    if test_pictures is not None:
        parts.append(f"{test_pictures:,} kept apart for the final test")
    split = f"The saved split '{config.get('split', '?')}'"
    used = f": {', '.join(parts)}" if parts else ""
    return f"{split}{used}. {count(len(classes), 'class').capitalize()}: {', '.join(classes)}."


def way_of_training(config: dict) -> str:
    mode = config.get("mode", "")
    name, meaning = MODES.get(mode, (mode, ""))
    source = (
        f" It started from run '{config['from_run']}'."
        if mode == "finetune" and config.get("from_run")
        else ""
    )
    return f"{name}. {meaning}{source}".strip()


def network(config: dict) -> str:
    """The network's name and its one-line description; for pretrained bases, the weights and head."""
    from core import models

    name = str(config.get("model", ""))
    if config.get("mode") == "scratch":
        spec = models.SCRATCH_NETS.get(name)
        return f"'{name}': {spec.description}" if spec else f"'{name}'."
    try:
        spec = models.base_spec(name)
    except ValueError:
        return f"'{name}'."
    weights = str(config.get("weights", ""))
    start = {"imagenet": "its ImageNet weights", "none": "random weights"}.get(weights, "a weights file")
    pooling = "global average pooling" if config.get("head_pooling") == "avg" else "flattening"
    units = int(config.get("head_units") or 0)
    hidden = f", a layer of {units} units" if units else ""
    dropout = float(config.get("head_dropout") or 0)
    drop = f", dropout {dropout:.0%}" if dropout else ""
    return (
        f"{spec.title}, starting from {start}: {spec.description} "
        f"On top, a new classifier: {pooling}{hidden}{drop}."
    )


def picture_size(config: dict) -> str:
    size = int(config.get("image_size", 0))
    how = RESIZING.get(str(config.get("resize_policy", "stretch")), "resized")
    return f"{size} × {size} pixels: every picture {how}."


def augmentation(config: dict) -> str:
    """What varied the training pictures (core.augment.describe), or why nothing did."""
    from core import augment

    if config.get("mode") == "features":
        return "None: this way of training looks at each picture only once."
    if config.get("augment"):
        lines = augment.describe(augment.AugmentConfig.from_dict(config["augment"]))
    else:
        lines = [f"The saved settings '{config.get('augment_name', 'none')}'"]
    name = config.get("augment_name")
    named = f" (settings '{name}')" if name and name != "none" and config.get("augment") else ""
    return "; ".join(lines) + named + "."


def learning(config: dict) -> str:
    """Optimizer, learning rate and its schedule, batches, epochs, early stopping and the extras."""
    optimizer = OPTIMIZERS.get(str(config.get("optimizer")), str(config.get("optimizer")))
    lr = float(config.get("learning_rate", 0))
    schedule = {
        "constant": "kept the same throughout",
        "cosine": "lowered along a cosine curve towards 0",
        "plateau": "cut to a fifth whenever the validation loss stopped falling for 2 epochs",
    }.get(str(config.get("lr_schedule")), str(config.get("lr_schedule")))
    warmup = int(config.get("warmup_epochs") or 0)
    rises = f", after rising from 0 over the first {count(warmup, 'epoch')}" if warmup else ""
    epochs = int(config.get("epochs", 0))
    patience = int(config.get("patience") or 0)
    stop = f", stopping early after {count(patience, 'epoch')} without progress" if patience else ""
    parts = [
        f"{optimizer} with learning rate {lr:g}, {schedule}{rises}.",
        f"Batches of {config.get('batch_size')} pictures, up to {count(epochs, 'epoch')}{stop}.",
    ]
    if config.get("optimizer") == "adamw" and config.get("weight_decay"):
        parts.append(f"Weight decay {float(config['weight_decay']):g}.")
    if config.get("label_smoothing"):
        parts.append(f"Label smoothing {float(config['label_smoothing']):g}.")
    if config.get("class_weights"):
        parts.append("Rare classes weighted up.")
    parts.append(f"Random seed {config.get('seed', 0)}.")
    return " ".join(parts)


def what_was_trained(
    config: dict, status: dict, classes: list[str], test_pictures: int | None = None
) -> list[tuple[str, str]]:
    """(heading, sentence) rows: pictures, way of training, network, picture size, augmentation, learning."""
    return [
        ("Pictures", pictures(config, status, classes, test_pictures)),
        ("Way of training", way_of_training(config)),
        ("Network", network(config)),
        ("Picture size", picture_size(config)),
        ("Augmentation", augmentation(config)),
        ("Learning", learning(config)),
    ]


def machine(status: dict, cpu: str) -> list[tuple[str, str]]:
    """(heading, sentence) rows about the computer a run trained on (its status' device plan)."""
    plan: dict[str, Any] = status.get("plan") or {}
    rows = [("Processor", cpu)]
    if plan:
        device = str(plan.get("device", "?"))
        replicas = int(plan.get("replicas") or 1)
        spread = f", the work spread over {replicas}" if replicas > 1 else ""
        backend = BACKENDS.get(str(plan.get("backend")), str(plan.get("backend", "")))
        rows.append(("Trained on", f"{device}{spread}, with Keras on {backend}."))
        precision = str(plan.get("precision", ""))
        xla = " XLA compiled the steps." if plan.get("jit_compile") else ""
        rows.append(("Numbers", f"{PRECISIONS.get(precision, precision)}.{xla}"))
    return rows


def time_taken(status: dict, epoch_seconds: list[float]) -> list[tuple[str, str]]:
    """(heading, sentence) rows: when the run started and ended, and how long its epochs took."""
    rows = []
    started, ended = status.get("started"), status.get("ended")
    if started:
        end = f" and ended {when(ended, since=started)}" if ended else ""
        rows.append(("When", f"Started {when(started)}{end}."))
    if epoch_seconds:
        total = sum(epoch_seconds)
        rows.append(
            (
                "Time taken",
                f"{duration(total)} of training for {count(len(epoch_seconds), 'epoch')} "
                f"(about {duration(total / len(epoch_seconds))} each, checking included).",
            )
        )
    elif started and ended:
        rows.append(("Time taken", f"{duration(ended - started)}."))
    return rows
