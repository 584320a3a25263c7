"""The Train page's settings form: widgets <-> TrainConfig."""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st

from core import augment, models
from core.config import (
    JIT_CHOICES,
    OPTIMIZERS,
    PRECISIONS,
    QUICK_DEMO,
    RECIPES,
    SCHEDULES,
    TrainConfig,
    default_settings,
)
from core.images import RESIZE_POLICIES
from core.modelfile import runs_with_model
from dashboard import train_choices as choices
from dashboard import ui

# TrainConfig field -> the widget that shows it
WIDGETS = {
    "model": "train_model",
    "image_size": "train_size",
    "optimizer": "train_optimizer",
    "learning_rate": "train_lr",
    "lr_schedule": "train_schedule",
    "warmup_epochs": "train_warmup",
    "weight_decay": "train_weight_decay",
    "label_smoothing": "train_label_smoothing",
    "epochs": "train_epochs",
    "batch_size": "train_batch",
    "augment_name": "train_augment",
    "head_pooling": "train_head_pooling",
}
# Settings a recipe may leave out, at their "off" values: a new recipe starts from these.
UNSET = {
    "head_pooling": "flatten",
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
}
# Source runs fine-tuning can start from: those with a pretrained base.
FINETUNE_FROM_MODES = ("features", "frozen", "finetune")


def put_settings(settings: dict) -> None:
    """Show a recipe's TrainConfig settings in the widgets (fields without a widget are skipped);
    the settings it leaves out go back to off (no warm-up, no label smoothing...)."""
    st.session_state.update({WIDGETS[k]: v for k, v in {**UNSET, **settings}.items() if k in WIDGETS})


def apply_mode_defaults(recipe: str = "default") -> None:
    """When the mode changes, put the recipe's settings for that mode into the widgets."""
    settings = default_settings(st.session_state["train_mode"], None, recipe)
    put_settings(settings)


def apply_model_defaults() -> None:
    """A new network brings the image size it was made for (a base's ImageNet size); a new scratch
    net brings its whole recipe (the ResNet trains with AdamW, warm-up, label smoothing...)."""
    name = st.session_state["train_model"]
    mode = st.session_state["train_mode"]
    with contextlib.suppress(ValueError, KeyError):
        settings = default_settings(mode, name)
        if mode == "scratch":
            put_settings(settings)
        else:
            st.session_state["train_size"] = settings["image_size"]


def size_note(model: str, size: int) -> None:
    """Say so when the pictures are not the size the pretrained weights were made at."""
    native = models.base_spec(model).default_size
    if size != native:
        st.caption(
            f":material/info: {models.base_spec(model).title} learned ImageNet from {native}-pixel "
            f"pictures; at {size} px its features are usually a little less accurate."
        )


def source_label(run: dict[str, Any]) -> str:
    """How the "Start from run" list names a run: id (network, state)."""
    return f"{run['id']} ({run['config'].get('model')}, {run['status']['state']})"


def finetune_sources() -> dict[str, dict[str, Any]]:
    """Runs with a saved model on a pretrained base, newest first: id -> run."""
    return {r["id"]: r for r in runs_with_model() if r["config"].get("mode") in FINETUNE_FROM_MODES}


def device_text(plan: dict[str, Any], precision_setting: str) -> str:
    """The "Runs on" line for a device plan (core.devices.device_plan); precision_setting: the
    config's precision, so "auto" can say why it chose what it chose."""
    why = ""
    if precision_setting == "auto":
        if plan["precision"] == "mixed_bfloat16" and plan["gpus"] == 0:
            why = " (this processor has bfloat16 hardware)"
        elif plan["precision"] == "float32":
            why = " (no bfloat16 hardware here)"
    shared = " (each batch split across them, one copy of the model on each)" if plan["gpus"] > 1 else ""
    return (
        f"Runs on: **{plan['device']}**{shared}, precision **{plan['precision']}**{why}, "
        f"XLA **{'on' if plan['jit_compile'] else 'off'}**."
    )


def recipe_buttons_ui() -> None:
    """ "Quick demo settings" and "Seed recipe": fill the form with a whole recipe."""
    quick, seed = st.columns([1, 1])
    if quick.button(
        "Quick demo settings",
        key="train_quick",
        icon=":material/bolt:",
        help="A compact network on 32-pixel pictures: learns the demo shapes in a minute or two on a laptop.",
        width="stretch",
    ):
        st.session_state["train_mode"] = "scratch"
        put_settings(QUICK_DEMO)
    if seed.button(
        "Seed recipe",
        key="train_seed_recipe",
        icon=":material/menu_book:",
        help="The Keras tutorials' settings for this mode, number for number: " + RECIPES["seed"] + ".",
        width="stretch",
    ):
        apply_mode_defaults("seed")


def mode_ui() -> str:
    """How to train (the recipe's settings for a mode fill the form when it changes)."""
    st.session_state.setdefault("train_mode", "scratch")
    if "train_model" not in st.session_state:
        apply_mode_defaults()
    mode = st.radio(
        "How to train",
        list(choices.MODES),
        format_func=lambda m: choices.MODES[m][0],
        horizontal=True,
        key="train_mode",
        on_change=apply_mode_defaults,
    )
    st.caption(choices.MODES[mode][1])
    return mode


def scratch_net_ui() -> dict:
    names = list(models.SCRATCH_NETS)
    if st.session_state.get("train_model") not in names:
        st.session_state["train_model"] = default_settings("scratch")["model"]
    model = st.selectbox(
        "Network",
        names,
        key="train_model",
        on_change=apply_model_defaults,
        help="seed000 is the tutorials' net; resnet is today's practice for photos; compact "
        "learns the demo in a minute or two. Each brings its own training settings.",
    )
    st.caption(models.SCRATCH_NETS[model].description)
    return {"model": model}


def base_ui() -> dict | None:
    """A pretrained network and its weights; None when a typed weights path is refused."""
    if st.session_state.get("train_model") not in choices.BASE_CHOICES:
        st.session_state["train_model"] = "vgg16"
    model = st.selectbox(
        "Pretrained network", choices.BASE_CHOICES, key="train_model", on_change=apply_model_defaults
    )
    st.caption(models.base_spec(model).description)
    weights = weights_ui()
    return None if weights is None else {"model": model, "weights": weights}


def weights_ui() -> str | None:
    """imagenet, none or a weights file's path; None when the typed path is refused (never fall
    back to random weights silently)."""
    source = st.radio(
        "Pretrained weights",
        list(choices.WEIGHT_SOURCES),
        format_func=choices.WEIGHT_SOURCES.get,
        key="train_weights_source",
    )
    if source != "file":
        return source
    text = st.text_input(
        "Weights file (.h5)", key="train_weights_path", placeholder="/path/to/mobilenet_5_0_224_tf_no_top.h5"
    )
    path = ui.typed_path(text)
    if text.strip() and path is None:
        return None
    return str(path) if path else "none"


def finetune_ui() -> dict | None:
    """The run to start from and what to retrain; None (with a note) when there is no such run."""
    sources = finetune_sources()
    if not sources:
        st.info("Fine-tuning starts from a finished pretrained-features run. Train one first.")
        return None
    values: dict = {}
    values["from_run"] = st.selectbox(
        "Start from run", list(sources), format_func=lambda i: source_label(sources[i]), key="train_from_run"
    )
    base_name = sources[values["from_run"]]["config"]["model"]
    how = st.radio(
        "Retrain", ["from a named layer up", "the top N layers"], horizontal=True, key="train_unfreeze_how"
    )
    if how == "the top N layers":
        values["unfreeze_top"] = st.number_input("N", 1, 200, 4, key="train_unfreeze_top")
    else:
        values["unfreeze_from"] = st.text_input(
            "First layer to retrain",
            key="train_unfreeze_from",
            value=models.base_spec(base_name).finetune_from,
        )
    return values


def augment_ui() -> str:
    name = st.selectbox(
        "Augmentation",
        augment.list_configs(),
        key="train_augment",
        help="Presets and the settings you saved on the Augment page.",
    )
    with contextlib.suppress(KeyError):
        st.caption("; ".join(augment.describe(augment.load_config(name))) or "none")
    return name


def network_ui(mode: str) -> dict | None:
    """The left column: network (or source run), weights, augmentation; None when it cannot run."""
    if mode == "scratch":
        values = scratch_net_ui()
    elif mode in ("features", "frozen"):
        values = base_ui()
    else:
        values = finetune_ui()
    if values is not None and mode != "features":
        values["augment_name"] = augment_ui()
    return values


def size_ui(mode: str, model: str | None) -> dict:
    """Image size and, on a pretrained base, the head (fine-tuning keeps its source's)."""
    if mode == "finetune":
        return {}
    values: dict = {"image_size": st.number_input("Image size (pixels)", 16, 512, step=2, key="train_size")}
    if mode in ("features", "frozen"):
        size_note(model, int(values["image_size"]))
        values["head_pooling"] = st.selectbox(
            "Head",
            list(choices.POOLINGS),
            format_func=choices.POOLINGS.get,
            key="train_head_pooling",
            help="How the new classifier reads the pretrained network's feature map.",
        )
    return values


def optimizer_ui() -> dict:
    """Optimizer, learning rate, epochs, batch size, early stopping."""
    values: dict = {}
    c1, c2 = st.columns(2)
    values["optimizer"] = c1.selectbox("Optimizer", list(OPTIMIZERS), key="train_optimizer")
    values["learning_rate"] = c2.number_input(
        "Learning rate",
        1e-7,
        0.5,
        format="%.0e",
        key="train_lr",
        help="How big each correction step is. A new head on pretrained features learns well at "
        "3e-4 with Adam; fine-tuning needs 1e-5; the tutorials use 1e-4 from scratch.",
    )
    c1, c2, c3 = st.columns(3)
    values["epochs"] = c1.number_input(
        "Epochs", 1, 1000, key="train_epochs", help="Passes over all training pictures."
    )
    values["batch_size"] = c2.number_input("Batch size", 1, 1024, key="train_batch")
    values["patience"] = c3.number_input(
        "Stop early after",
        0,
        100,
        0,
        key="train_patience",
        help="Stop when validation loss has not improved for this many epochs (0: never).",
    )
    return values


def more_settings_ui(optimizer: str) -> dict:
    """The "More settings" expander: schedule, regularisation, pictures, seed, numbers, label."""
    values: dict = {}
    with st.expander("More settings"):
        c1, c2 = st.columns(2)
        values["lr_schedule"] = c1.selectbox("Learning-rate schedule", list(SCHEDULES), key="train_schedule")
        values["warmup_epochs"] = c2.number_input(
            "Warm-up epochs",
            0,
            100,
            key="train_warmup",
            help="The learning rate rises from 0 over these first epochs, so a new network's "
            "first large steps do not throw it off course.",
        )
        values["label_smoothing"] = c1.number_input(
            "Label smoothing",
            0.0,
            0.4,
            step=0.05,
            key="train_label_smoothing",
            help="Aim at 0.9 for the right class instead of 1: the network stops chasing the "
            "last few hard pictures and its probabilities are more honest.",
        )
        if optimizer == "adamw":
            values["weight_decay"] = c2.number_input(
                "Weight decay",
                0.0,
                0.5,
                step=0.01,
                key="train_weight_decay",
                help="AdamW shrinks the weights a little each step; it keeps a network "
                "trained from scratch from memorising the pictures.",
            )
        values["resize_policy"] = c2.selectbox("Fit pictures by", list(RESIZE_POLICIES), key="train_resize")
        values["seed"] = c1.number_input("Random seed", 0, 2**31 - 1, 0, key="train_seed")
        values["class_weights"] = c2.checkbox("Weight rare classes more", key="train_class_weights")
        values["precision"] = c1.selectbox(
            "Number precision",
            list(PRECISIONS),
            key="train_precision",
            help="auto: bfloat16 where the hardware has it, float32 otherwise.",
        )
        values["jit_compile"] = c2.selectbox(
            "XLA compilation",
            list(JIT_CHOICES),
            key="train_xla",
            help="auto: on GPUs only (it is slower on CPUs).",
        )
        values["name"] = st.text_input("Run label (optional)", key="train_name")
    return values


def config_ui(split_name: str) -> TrainConfig | None:
    """All the widgets; returns the TrainConfig they describe (None with a message when invalid)."""
    mode = mode_ui()
    values: dict = {"split": split_name, "mode": mode}
    left, right = st.columns(2)
    with left:
        network = network_ui(mode)
    if network is None:
        return None
    values.update(network)
    with right:
        values.update(size_ui(mode, values.get("model")))
        values.update(optimizer_ui())
        values.update(more_settings_ui(values["optimizer"]))
    try:
        return TrainConfig.from_dict(values)
    except ValueError as e:
        ui.show_error(e)
        return None
