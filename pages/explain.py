"""Explain: what the network looks at (Grad-CAM and friends) and what each layer sees (activations)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from core import charts, evaluate, explain, modelfile
from core.data import DataError, load_split
from core.images import ImageError, encode_png, load_resized
from dashboard import ui

CMAPS = ["viridis", "magma", "gray", "jet"]


@st.cache_resource(max_entries=3, show_spinner="Loading the model...")
def uploaded_model(digest: str, name: str, _data: bytes) -> modelfile.LoadedModel:
    """An uploaded .keras file, loaded once per content (digest)."""
    return modelfile.from_bytes(_data, name)


@st.cache_data(max_entries=64, show_spinner="Computing the heatmap...")
def heatmap(
    _model, model_key: str, image: np.ndarray, method: str, layer: str, class_index: int
) -> np.ndarray:
    """One picture's heatmap, kept so moving the opacity slider or switching back is instant
    (Score-CAM runs the model once per channel: tens of seconds for a VGG16-sized net on a CPU)."""
    return explain.METHODS[method](_model, image[None], layer=layer, class_index=class_index)[0]


def model_ui() -> modelfile.LoadedModel | None:
    """A run's model or an uploaded .keras file (safe mode: files carrying code are refused)."""
    source = st.radio(
        "Model from", ["A training run", "A model file"], horizontal=True, key="explain_model_source"
    )
    if source == "A training run":
        done = modelfile.runs_with_model()
        if not done:
            st.info(
                "No trained models yet. Train one on the Train page (Quick demo settings take about a minute)."
            )
            ui.link_to("Train", "Go to Train")
            return None
        by_id = {r["id"]: r for r in done}
        run_id = st.selectbox(
            "Run", list(by_id), key="explain_run", format_func=lambda i: ui.run_name(by_id[i])
        )
        return ui.run_model(by_id[run_id])
    upload = st.file_uploader(
        "Keras model (.keras)",
        type=["keras"],
        key="explain_model_upload",
        help="Loaded in Keras' safe mode: models that carry Python code (Lambda layers) are refused.",
    )
    if upload is None:
        return None
    data = upload.getvalue()
    loaded = None
    with ui.writing("read the uploaded model"):
        loaded = uploaded_model(hashlib.sha256(data).hexdigest(), upload.name, data)
    return loaded


def images_ui(loaded: modelfile.LoadedModel) -> list[tuple[str, np.ndarray]]:
    """Uploaded pictures, or ones from the run's test split or its top losses: [(name, (S, S, 3) uint8)]."""
    options = ["Upload pictures"] + (["Test pictures", "Biggest mistakes"] if loaded.run_id else [])
    source = st.radio("Pictures", options, horizontal=True, key="explain_source")
    sources: list[tuple[str, object]] = []  # (name, path or bytes)
    if source == "Upload pictures":
        files = st.file_uploader(
            "Pictures", type=ui.PICTURE_TYPES, accept_multiple_files=True, key="explain_upload"
        )
        sources = [(f.name, f.getvalue()) for f in files or []]
    elif source == "Test pictures":
        try:
            split = load_split(loaded.split)
        except DataError as e:
            ui.show_error(e)
            return []
        files = split.files("test")
        picked = st.multiselect(
            "Test pictures", files, default=files[:2], max_selections=6, key="explain_test_files"
        )
        sources = [(p, Path(split.dataset_root) / p) for p in picked]
    else:
        cached = evaluate.cached_evaluation(loaded.run_id)
        if cached is None:
            st.info("Score this run on the Evaluate page first; its biggest mistakes then show up here.")
            return []
        sources = [(item["path"], item["file"]) for item in cached.top_losses[:4]]
    size = (loaded.input_size, loaded.input_size)
    out = []
    for name, src in sources:
        try:
            out.append((name, load_resized(src, size, loaded.resize_policy)))
        except ImageError as e:
            st.error(f"{name}: {e}")
    return out


def cam_ui(loaded: modelfile.LoadedModel, images: list[tuple[str, np.ndarray]]) -> None:
    st.subheader("Where the network looks")
    model, classes = loaded.model, list(loaded.classes)
    layers = explain.conv_layers(model)
    c1, c2, c3, c4 = st.columns([2, 3, 2, 2])
    method = c1.selectbox(
        "Method",
        list(explain.METHODS),
        key="explain_method",
        help="Grad-CAM: gradients of the class score. Grad-CAM++: sharper for several objects. "
        "Score-CAM: no gradients, masks the picture instead (slower).",
    )
    default = explain.default_layer(model)
    layer = c2.selectbox(
        "Layer",
        layers,
        index=layers.index(default) if default in layers else len(layers) - 1,
        key="explain_layer",
        help="Later layers see whole objects; earlier ones see edges and textures.",
    )
    target = c3.selectbox("Explain the class", ["predicted"] + classes, key="explain_class")
    alpha = c4.slider("Heatmap opacity", 0.0, 1.0, 0.4, 0.05, key="explain_alpha")
    for i, (name, image) in enumerate(images):
        probs = explain.predict(model, image)
        k = int(np.argmax(probs)) if target == "predicted" else classes.index(target)
        heat = heatmap(model, loaded.key, image, method, layer, k)
        over = explain.overlay(image, heat, alpha=alpha)
        with st.container(border=True):
            st.markdown(
                f"**{name}**: the network says **{classes[int(np.argmax(probs))]}** "
                f"({float(np.max(probs)):.1%}); heatmap for **{classes[k]}**"
            )
            a, b, c, d = st.columns([2, 2, 2, 2])
            a.image(image, caption="picture", width="stretch")
            b.image(
                explain.heat_image(heat, size=image.shape[:2]),
                caption=f"{method} on {layer}",
                width="stretch",
            )
            c.image(over, caption="overlay", width="stretch")
            with d:
                st.plotly_chart(
                    charts.probability_bars(dict(zip(classes, map(float, probs)))), key=f"explain_p{i}"
                )
                st.download_button(
                    "Overlay PNG",
                    encode_png(over),
                    file_name=f"{Path(name).stem}-{method}.png",
                    mime="image/png",
                    key=f"explain_download_{i}",
                    icon=":material/download:",
                )


def activations_ui(model, images: list[tuple[str, np.ndarray]]) -> None:
    st.subheader("What each layer sees")
    st.caption(
        "Every small square is one channel (one learned detector) of the chosen layer, bright where it "
        "responds. Early layers find edges and colours; later ones respond to parts of objects."
    )
    layers = explain.conv_layers(model)
    c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
    layer = c1.selectbox("Layer", layers, key="explain_act_layer")
    name = c2.selectbox("Picture", [n for n, _ in images], key="explain_act_image")
    cmap = c3.selectbox("Colours", CMAPS, key="explain_cmap")
    image = dict(images)[name]
    act = explain.activations(model, image, [layer])[layer]
    pages = explain.channel_pages(act.shape[-1], 64)
    page = (
        c4.number_input("Page", 1, pages, 1, key="explain_act_page", help=f"{pages} pages of 64 channels") - 1
    )
    info = explain.layer_info(model, layer)
    st.caption(
        f"{info.get('name', layer)}: {info.get('type', '')}, output {info.get('output_shape', '')}, "
        f"{info.get('params', 0):,} weights; channels {page * 64 + 1}-{min((page + 1) * 64, act.shape[-1])} "
        f"of {act.shape[-1]}"
    )
    st.image(explain.channel_grid(act, per_row=16, page=page, per_page=64, cmap=cmap), width="stretch")


st.title("Explain")
st.caption(
    "Heatmaps show which parts of a picture made the network decide as it did; red is where it looked "
    "hardest. Use them to check it looks at the object, not at the background."
)
loaded = model_ui()
if loaded is None:
    st.stop()
images = images_ui(loaded)
if not images:
    st.info("Choose one or more pictures to explain.")
    st.stop()
try:
    cam_ui(loaded, images)
    activations_ui(loaded.model, images)
except ValueError as e:
    ui.show_error(e)
