"""Augment: compare augmentation settings side by side on the same images and the same seeds."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from core import augment
from core.augment import AugmentConfig
from core.images import tile
from dashboard import augment_images, ui

COLUMNS = "ABC"
SWEEP_DEFAULTS = {
    "rotation_deg": "0, 10, 20, 40",
    "zoom": "0, 0.1, 0.2, 0.4",
    "shear_deg": "0, 5, 10, 20",
    "width_shift": "0, 0.1, 0.2, 0.3",
    "brightness": "0, 0.1, 0.2, 0.4",
}


def config_widgets(col: str, start: AugmentConfig) -> AugmentConfig | None:
    """Widgets generated from AugmentConfig's field specs; returns the config they describe."""
    values = {}
    specs = augment.field_specs()
    for group, title in (("geometric", "Geometry"), ("photometric", "Colour"), ("fill", "Edges")):
        with st.expander(title, expanded=group == "geometric"):
            for spec in (s for s in specs if s["group"] == group):
                key = f"aug_{col}_{spec['name']}"
                label = spec["label"] + (f" ({spec['unit']})" if spec["unit"] else "")
                default = getattr(start, spec["name"])
                if spec["kind"] == "bool":
                    values[spec["name"]] = st.checkbox(label, value=default, help=spec["help"], key=key)
                elif spec["kind"] == "choice":
                    choices = list(spec["choices"])
                    values[spec["name"]] = st.selectbox(
                        label, choices, index=choices.index(default), help=spec["help"], key=key
                    )
                else:
                    values[spec["name"]] = st.slider(
                        label,
                        float(spec["min"]),
                        float(spec["max"]),
                        float(default),
                        float(spec["step"]),
                        help=spec["help"],
                        key=key,
                    )
    try:
        return AugmentConfig(**values)
    except ValueError as e:
        ui.show_error(e)
        return None


def reset_widgets(col: str) -> None:
    """When a column's starting config changes, drop its widget values so they take the new defaults."""
    for spec in augment.field_specs():
        st.session_state.pop(f"aug_{col}_{spec['name']}", None)


def show_preview(config: AugmentConfig, images: np.ndarray, seeds: list[int]) -> None:
    """The N x K grid: one row per picture, one column per seed."""
    grid = augment.preview(config, images, seeds)
    st.image(tile(grid), caption=f"{len(images)} pictures x {len(seeds)} random draws", width="stretch")


def details(config: AugmentConfig, col: str) -> None:
    """What the config does in words, as JSON and as Keras code; save it under a name."""
    st.markdown("\n".join(f"- {line}" for line in augment.describe(config)) or "- nothing: images unchanged")
    json_tab, code_tab = st.tabs(["JSON", "Keras code"])
    json_tab.code(json.dumps(config.to_dict(), indent=2), language="json")
    code_tab.code(augment.to_code(config), language="python")
    name_col, button_col = st.columns([3, 2], vertical_alignment="bottom")
    name = name_col.text_input("Save as", key=f"aug_{col}_save_name", placeholder="my-augmentation")
    if button_col.button("Save", key=f"aug_{col}_save", icon=":material/save:"):
        with ui.writing("save the settings"):
            augment.save_config(name, config)
            st.success(f"Saved '{name.strip()}'. The Train page lists it now.")


def compare_column(col: str, images: np.ndarray, seeds: list[int], default: str) -> None:
    """One A/B/C column. A fragment: changing its widgets redraws this column alone."""

    @st.fragment
    def body() -> None:
        names = augment.list_configs()
        start_name = st.selectbox(
            "Start from",
            names,
            index=names.index(default) if default in names else 0,
            key=f"aug_{col}_start",
            on_change=reset_widgets,
            args=(col,),
        )
        preview_slot = st.container()  # the pictures go on top, level across columns
        note = augment.PRESET_NOTES.get(start_name)
        if note:
            st.caption(note)
        config = config_widgets(col, augment.load_config(start_name))
        if config is None:
            return
        with preview_slot:
            show_preview(config, images, seeds)
        details(config, col)

    st.subheader(f"Setting {col}")
    body()


def sweep_ui(images: np.ndarray, seeds: list[int]) -> None:
    """Vary one setting across columns, everything else fixed."""
    names = augment.list_configs()
    c1, c2, c3 = st.columns(3)
    base_name = c1.selectbox("Everything else from", names, key="sweep_base")
    numeric = [s for s in augment.field_specs() if s["kind"] == "float"]
    field = c2.selectbox(
        "Setting to vary",
        [s["name"] for s in numeric],
        key="sweep_field",
        format_func=lambda n: next(s["label"] for s in numeric if s["name"] == n),
    )
    text = c3.text_input(
        "Values (comma separated)",
        value=SWEEP_DEFAULTS.get(field, "0, 0.1, 0.2"),
        key=f"sweep_values_{field}",
    )
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
        configs = augment.sweep(augment.load_config(base_name), field, values)
    except ValueError as e:
        ui.show_error(e)
        return
    if not configs:
        st.info("Enter at least one value.")
        return
    spec = next(s for s in numeric if s["name"] == field)
    for column, value, config in zip(st.columns(len(configs)), values, configs):
        with column:
            st.markdown(f"**{spec['label']} = {value:g}** {spec['unit']}")
            show_preview(config, images, seeds)


st.title("Augment")
st.caption(
    "Augmentation shows the model slightly changed copies of each training picture (turned, shifted, "
    "zoomed, recoloured) so it learns what matters rather than memorising pixels. Every column uses the "
    "same pictures and the same random draws, so the differences you see come from the settings alone. "
    "Training applies exactly these layers."
)
top = st.columns([2, 1, 1, 1, 1], vertical_alignment="bottom")
mode = top[0].radio("Mode", ["Compare settings", "Sweep one setting"], horizontal=True, key="aug_mode")
size = top[1].selectbox("Preview size", [128, 150, 180, 224], index=2, key="aug_size")
top[2].number_input("Pictures", 1, 8, 4, key="aug_count")
variants = top[3].number_input("Draws each", 1, 8, 6, key="aug_variants")
if top[4].button(
    "New seeds",
    key="aug_reseed",
    icon=":material/casino:",
    help="New random draws for every column at once (and new random pictures).",
):
    st.session_state["aug_seed_base"] = st.session_state.get("aug_seed_base", 0) + 1
    st.session_state["aug_image_seed"] = st.session_state.get("aug_image_seed", 0) + 1

images = augment_images.images_ui(int(size))
if images is None:
    st.stop()
base = st.session_state.get("aug_seed_base", 0)
seeds = [base * 1000 + k for k in range(int(variants))]

if mode == "Compare settings":
    n = st.radio("Columns", [2, 3], horizontal=True, key="aug_columns")
    defaults = ["none", "seed-000", "strong"]
    for col, column in zip(COLUMNS[:n], st.columns(n)):
        with column:
            compare_column(col, images, seeds, defaults[COLUMNS.index(col)])
else:
    sweep_ui(images, seeds)
