"""Data: choose a dataset, see it, check it, split it, save the split."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core import cache, charts, data
from core.data import DataError, DatasetIndex, SplitSpec
from core.images import RESIZE_POLICIES
from dashboard import dataset_source, dupes_view, marks, ui

METHODS = {
    "fractions": "Share of each class",
    "counts": "Images per class",
    "given": "Keep the folder's own split",
}
SAMPLES_PER_CLASS = 6


def overview(index: DatasetIndex) -> None:
    counts = index.class_counts()
    a, b, c, d = st.columns(4)
    a.metric("Images", f"{len(index):,}")
    b.metric("Classes", len(index.classes))
    c.metric("Left out", len(index.problems), help="Files that are broken, not images, too small or too big.")
    d.metric(
        "Layout",
        {"class_folders": "class folders", "kaggle_flat": "Kaggle names", "pre_split": "train/val/test"}[
            index.layout
        ],
    )
    left, right = st.columns([2, 3])
    with left:
        st.plotly_chart(charts.class_counts(counts), key="class_counts")
        if len(index.classes) < 2:
            st.warning("Training needs at least two classes with images.")
    with right:
        head, button = st.columns([4, 1])
        head.markdown("**Sample images**")
        if button.button("New samples", key="reroll", icon=":material/casino:"):
            st.session_state["sample_seed"] = st.session_state.get("sample_seed", 0) + 1
        rng = np.random.default_rng(st.session_state.get("sample_seed", 0))
        for name in index.classes:
            files = index.files_of(name)
            picked = tuple(sorted(rng.choice(files, size=min(SAMPLES_PER_CLASS, len(files)), replace=False)))
            images = ui.pictures(index.root, picked, 128)
            st.caption(f"{name} ({counts[name]:,})")
            st.image(images, width=88)
    if index.problems:
        with st.expander(f"{len(index.problems)} files left out, and why"):
            st.dataframe(
                pd.DataFrame([{"file": p.path, "reason": p.reason} for p in index.problems]), hide_index=True
            )
    else:
        st.caption(f"All files checked: none broken. {index.ignored} hidden or non-image files ignored.")


def split_spec_ui(index: DatasetIndex) -> SplitSpec | None:
    """The split editor's widgets; returns the spec they describe (None on bad values)."""
    methods = [m for m in METHODS if m != "given" or index.layout == "pre_split"]
    method = st.radio("Split by", methods, format_func=METHODS.get, horizontal=True, key="split_method")
    smallest = min(index.class_counts().values()) if index.classes else 0
    cols = st.columns(5)
    if method == "counts":
        train = cols[0].number_input(
            "Training images per class", 1, max(1, smallest), max(1, smallest * 6 // 10), key="train_count"
        )
        val = cols[1].number_input(
            "Validation per class", 0, max(0, smallest), smallest * 2 // 10, key="val_count"
        )
        test = cols[2].number_input(
            "Test per class", 0, max(0, smallest), smallest * 2 // 10, key="test_count"
        )
    elif method == "fractions":
        train = cols[0].number_input("Training share", 0.01, 1.0, 0.6, 0.05, key="train_frac")
        val = cols[1].number_input("Validation share", 0.0, 1.0, 0.2, 0.05, key="val_frac")
        test = cols[2].number_input("Test share", 0.0, 1.0, 0.2, 0.05, key="test_frac")
    else:
        train = val = test = 0
    seed = cols[3].number_input(
        "Shuffle seed", 0, 2**31 - 1, 0, key="split_seed", help="The same seed always gives the same split."
    )
    balance = cols[4].checkbox(
        "Balance classes",
        key="split_balance",
        help="Use as many images of every class as the smallest class has.",
    )
    st.caption(
        "Training images teach the model; validation images check it after every epoch; test images "
        "are kept aside for the final score. The Keras tutorials use 1000 / 500 / 500 images per class."
    )
    try:
        return SplitSpec(method=method, train=train, val=val, test=test, seed=int(seed), balance=balance)
    except DataError as e:
        ui.show_error(e)
        return None


def save_ui(split: data.Split) -> None:
    default = f"{Path(split.dataset_root).name}-{split.spec.method}-seed{split.spec.seed}"
    name_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    name = name_col.text_input("Split name", value=default, key="split_name")
    if button_col.button("Save split", key="save_split", type="primary", icon=":material/save:"):
        with ui.writing("save the split"):
            path = data.save_split(split, name=name)
            # Drawn again from the top, so the copies report above offers its marks for this split.
            st.session_state["split_saved"] = f"Saved split '{path.stem}'. The Train page can use it now."
            st.rerun()
    if "split_saved" in st.session_state:
        st.success(st.session_state.pop("split_saved"))


def prepare_ui(split: data.Split) -> None:
    """Decode the split once into the cache, with a progress bar, so training starts at once."""
    with st.expander("Prepare images for training (optional)"):
        st.caption(
            "Decodes every image once and stores it at the chosen size; every later run with "
            "this size reads the stored arrays instead of the JPEG files."
        )
        cols = st.columns(3, vertical_alignment="bottom")
        size = cols[0].selectbox("Size (pixels)", [128, 150, 180, 224], index=1, key="prep_size")
        policy = cols[1].selectbox(
            "Fit",
            RESIZE_POLICIES,
            key="prep_policy",
            help="stretch: squash to a square; crop: cut the centre; pad: add black bars",
        )
        if cols[2].button("Decode now", key="prep_go"):
            with ui.writing("store the decoded images"):
                decode_all(split, size, policy)


def decode_all(split: data.Split, size: int, policy: str) -> None:
    """Decode every subset into the cache with a progress bar, and say how it went."""
    bar = st.progress(0.0)
    start, total, decoded = time.perf_counter(), 0, 0
    for subset in data.SUBSETS:
        if not split.subsets[subset]:
            continue
        out = cache.split_arrays(
            split,
            subset,
            (size, size),
            policy,
            progress=ui.progress_callback(bar, f"Decoding {subset}"),
        )
        total, decoded = total + len(out), decoded + out.decoded
        if out.failed:
            st.warning(f"{len(out.failed)} {subset} images could not be decoded and are left out.")
    bar.empty()
    st.success(
        f"{total:,} images ready at {size}x{size} ({decoded:,} decoded now, "
        f"{total - decoded:,} already cached) in {time.perf_counter() - start:.1f} s."
    )


st.title("Data")
st.caption(
    "Choose the pictures to learn from, check them, and split them into training, validation and test sets."
)
chosen = dataset_source.dataset_source_ui()
if chosen is not None and str(chosen) != st.session_state.get("dataset_path"):
    st.session_state["dataset_path"] = str(chosen)
if chosen is None:
    st.stop()
index = ui.scan_dataset(chosen)
if index is None:
    st.stop()
if st.button("Rescan folder", key="rescan", icon=":material/refresh:"):
    st.session_state["scan_generation"] = st.session_state.get("scan_generation", 0) + 1
    st.rerun()
overview(index)

st.subheader("Split")
spec = split_spec_ui(index)
if spec is None:
    st.stop()
try:
    split = data.make_split(index, spec)
except DataError as e:
    ui.show_error(e)
    st.stop()
st.dataframe(ui.split_table(split), key="split_table")
split = dupes_view.dupes_ui(split)
save_ui(split)
prepare_ui(split)
saved = data.list_splits()
if saved:
    st.caption("Saved splits: " + ", ".join(f"`{n}`" for n in saved))
marks.versions_ui()
