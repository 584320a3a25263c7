"""Train: choose what to train and how, see the model before it runs, launch it in the background."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import streamlit as st

from core import charts, devices, lr_find, models, runs, train
from core.config import TrainConfig
from dashboard import train_form, ui


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
    st.caption(train_form.device_text(devices.device_plan(config), config.precision))


st.title("Train")
st.caption(
    "Pick the pictures, the network and the settings; the model trains in the background, so you can "
    "close this tab or move on. Watch it on the Monitor page."
)
split = ui.split_picker(key="train_split")
if split is None:
    st.stop()
train_form.recipe_buttons_ui()
config = train_form.config_ui(split.name)
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
