"""Train: choose what to train and how, see the model before it runs, launch it in the background."""

from __future__ import annotations

import contextlib
import dataclasses
import json

import pandas as pd
import streamlit as st

from core import augment, lr_find, models, runs, train
from core.config import OPTIMIZERS, PRECISIONS, QUICK_DEMO, RECIPES, SCHEDULES, TrainConfig, default_settings
from dashboard import charts, ui

MODES = {
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
BASE_CHOICES = [
    "vgg16",
    "xception",
    "resnet50",
    "efficientnetb0",
    "densenet121",
    "mobilenetv2",
    "mobilenetv2_0.35",
    "mobilenet",
    "mobilenet_0.5",
    "mobilenet_0.25",
]
WEIGHT_SOURCES = {
    "imagenet": "ImageNet (downloaded once; needs internet)",
    "file": "A local weights file",
    "none": "None: random start (for testing)",
}
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
POOLINGS = {"avg": "global average pooling (any network)", "flatten": "flatten (the tutorials, VGG16)"}
# Settings a recipe may leave out, at their "off" values: a new recipe starts from these.
UNSET = {
    "head_pooling": "flatten",
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
}


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


def finetune_sources() -> dict[str, str]:
    """Finished runs whose model has a pretrained base: id -> label."""
    out = {}
    for run in runs.list_runs():
        c = run["config"]
        if c.get("mode") in ("features", "frozen", "finetune") and (run["path"] / "best.keras").exists():
            out[run["id"]] = f"{run['id']} ({c.get('model')}, {run['status']['state']})"
    return out


def config_ui(split_name: str) -> TrainConfig | None:
    """All the widgets; returns the TrainConfig they describe (None with a message when invalid)."""
    st.session_state.setdefault("train_mode", "scratch")
    if "train_model" not in st.session_state:
        apply_mode_defaults()
    mode = st.radio(
        "How to train",
        list(MODES),
        format_func=lambda m: MODES[m][0],
        horizontal=True,
        key="train_mode",
        on_change=apply_mode_defaults,
    )
    st.caption(MODES[mode][1])
    values: dict = {"split": split_name, "mode": mode}
    left, right = st.columns(2)
    with left:
        if mode == "scratch":
            names = list(models.SCRATCH_NETS)
            if st.session_state.get("train_model") not in names:
                st.session_state["train_model"] = default_settings("scratch")["model"]
            values["model"] = st.selectbox(
                "Network",
                names,
                key="train_model",
                on_change=apply_model_defaults,
                help="seed000 is the tutorials' net; resnet is today's practice for photos; compact "
                "learns the demo in a minute or two. Each brings its own training settings.",
            )
            st.caption(models.SCRATCH_NETS[values["model"]].description)
        elif mode in ("features", "frozen"):
            if st.session_state.get("train_model") not in BASE_CHOICES:
                st.session_state["train_model"] = "vgg16"
            values["model"] = st.selectbox(
                "Pretrained network", BASE_CHOICES, key="train_model", on_change=apply_model_defaults
            )
            st.caption(models.base_spec(values["model"]).description)
            source = st.radio(
                "Pretrained weights",
                list(WEIGHT_SOURCES),
                format_func=WEIGHT_SOURCES.get,
                key="train_weights_source",
            )
            if source == "file":
                text = st.text_input(
                    "Weights file (.h5)",
                    key="train_weights_path",
                    placeholder="/path/to/mobilenet_5_0_224_tf_no_top.h5",
                )
                path = ui.typed_path(text)
                if text.strip() and path is None:
                    return None  # refused: never fall back to random weights silently
                values["weights"] = str(path) if path else "none"
            else:
                values["weights"] = source
        else:
            sources = finetune_sources()
            if not sources:
                st.info("Fine-tuning starts from a finished pretrained-features run. Train one first.")
                return None
            values["from_run"] = st.selectbox(
                "Start from run", list(sources), format_func=sources.get, key="train_from_run"
            )
            source_model = next(r for r in runs.list_runs() if r["id"] == values["from_run"])
            base_name = source_model["config"]["model"]
            how = st.radio(
                "Retrain",
                ["from a named layer up", "the top N layers"],
                horizontal=True,
                key="train_unfreeze_how",
            )
            if how == "the top N layers":
                values["unfreeze_top"] = st.number_input("N", 1, 200, 4, key="train_unfreeze_top")
            else:
                values["unfreeze_from"] = st.text_input(
                    "First layer to retrain",
                    key="train_unfreeze_from",
                    value=models.base_spec(base_name).finetune_from,
                )
        if mode != "features":
            configs = augment.list_configs()
            values["augment_name"] = st.selectbox(
                "Augmentation",
                configs,
                key="train_augment",
                help="Presets and the settings you saved on the Augment page.",
            )
            with contextlib.suppress(KeyError):
                st.caption("; ".join(augment.describe(augment.load_config(values["augment_name"]))) or "none")
    with right:
        if mode != "finetune":
            values["image_size"] = st.number_input("Image size (pixels)", 16, 512, step=2, key="train_size")
            if mode in ("features", "frozen"):
                size_note(values["model"], int(values["image_size"]))
                values["head_pooling"] = st.selectbox(
                    "Head",
                    list(POOLINGS),
                    format_func=POOLINGS.get,
                    key="train_head_pooling",
                    help="How the new classifier reads the pretrained network's feature map.",
                )
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
        with st.expander("More settings"):
            c1, c2 = st.columns(2)
            values["lr_schedule"] = c1.selectbox(
                "Learning-rate schedule", list(SCHEDULES), key="train_schedule"
            )
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
            if values["optimizer"] == "adamw":
                values["weight_decay"] = c2.number_input(
                    "Weight decay",
                    0.0,
                    0.5,
                    step=0.01,
                    key="train_weight_decay",
                    help="AdamW shrinks the weights a little each step; it keeps a network "
                    "trained from scratch from memorising the pictures.",
                )
            values["resize_policy"] = c2.selectbox(
                "Fit pictures by", ["stretch", "crop", "pad"], key="train_resize"
            )
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
                ["auto", "on", "off"],
                key="train_xla",
                help="auto: on GPUs only (it is slower on CPUs).",
            )
            values["name"] = st.text_input("Run label (optional)", key="train_name")
    try:
        return TrainConfig.from_dict(values)
    except ValueError as e:
        ui.show_error(e)
        return None


@st.cache_resource(show_spinner="Building the model...", max_entries=8)
def summary_of(config_json: str, num_classes: int) -> tuple[list[dict], int, int]:
    config = TrainConfig.from_dict(json.loads(config_json))
    model = train.build_model(config, num_classes, ui.workspace())
    trainable, frozen = models.param_counts(model)
    return models.summary_rows(model), trainable, frozen


def summary_ui(config: TrainConfig, num_classes: int) -> None:
    """Layers, output shapes, trainable and frozen weights, before anything runs."""
    # The summary never downloads: pretrained weights do not change the shapes or counts.
    shape_only = (
        dataclasses.replace(config, weights="none") if config.mode in ("features", "frozen") else config
    )
    try:
        rows, trainable, frozen = summary_of(json.dumps(shape_only.to_dict(), sort_keys=True), num_classes)
    except Exception as e:  # a bad layer name, an unusable source run...
        ui.show_error(e)
        return
    a, b, c = st.columns(3)
    a.metric("Weights that learn", f"{trainable:,}")
    b.metric("Frozen weights", f"{frozen:,}")
    c.metric("Classes", num_classes)
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="train_summary")


def use_rate(rate: float) -> None:
    st.session_state["train_lr"] = float(f"{rate:.1e}")


def lr_find_ui(config: TrainConfig) -> None:
    """A short sweep of learning rates on a throw-away model, its chart and a button to use the
    suggestion; kept per config, so moving other widgets does not lose it."""
    st.caption(
        "Trains a throw-away copy of this model for about 100 batches while the learning rate rises "
        "from 1e-7 to 1; a good rate is where the loss falls fastest. No run is saved."
    )
    key = json.dumps({**config.to_dict(), "learning_rate": None, "name": ""}, sort_keys=True)
    if st.button("Find a learning rate", key="train_lr_find", icon=":material/search_insights:"):
        with st.status("Trying learning rates...", expanded=False) as box:
            try:
                found = lr_find.find_lr(config, ui.workspace(), progress=lambda m: box.update(label=m))
            except (ValueError, OSError) as e:
                box.update(label="Could not try learning rates", state="error")
                ui.show_error(e)
                return
            box.update(label="Done", state="complete")
        st.session_state["train_lr_finding"] = (key, found)
    kept = st.session_state.get("train_lr_finding")
    if not kept or kept[0] != key:
        return
    found = kept[1]
    st.plotly_chart(
        charts.lr_sweep(found.lrs, found.losses, found.smoothed, found.suggestion), key="train_lr_chart"
    )
    st.button(
        f"Use {found.suggestion:.1e}",
        key="train_lr_use",
        on_click=use_rate,
        args=(found.suggestion,),
        icon=":material/check:",
    )


def device_ui(config: TrainConfig) -> None:
    plan = train.device_plan(config)
    why = (
        ""
        if config.precision != "auto"
        else (
            " (this processor has bfloat16 hardware)"
            if plan["precision"] == "mixed_bfloat16" and plan["gpus"] == 0
            else " (no bfloat16 hardware here)"
            if plan["precision"] == "float32"
            else ""
        )
    )
    shared = " (each batch split across them, one copy of the model on each)" if plan["gpus"] > 1 else ""
    st.caption(
        f"Runs on: **{plan['device']}**{shared}, precision **{plan['precision']}**{why}, "
        f"XLA **{'on' if plan['jit_compile'] else 'off'}**."
    )


st.title("Train")
st.caption(
    "Pick the pictures, the network and the settings; the model trains in the background, so you can "
    "close this tab or move on. Watch it on the Monitor page."
)
split = ui.split_picker(key="train_split")
if split is None:
    st.stop()
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
config = config_ui(split.name)
if config is None:
    st.stop()
device_ui(config)
with st.expander("Model summary", expanded=False):
    summary_ui(config, len(split.classes))
with st.expander("Find a learning rate", expanded="train_lr_finding" in st.session_state):
    lr_find_ui(config)
if st.button("Start training", key="train_launch", type="primary", icon=":material/play_arrow:"):
    with ui.writing("start the run"):
        final = train.finalize(config, ui.workspace())
        train.check_inputs(final, ui.workspace())  # offline ImageNet, a missing file: say so now
        run_id = runs.submit(final.to_dict())
        st.success(f"Started run `{run_id}`. It keeps going if you leave this page.")
        ui.link_to("Monitor", "Watch it on the Monitor page")
ui.active_runs_ui()
