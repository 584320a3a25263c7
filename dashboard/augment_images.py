"""The pictures the Augment page previews on: training images of a saved split, the demo, or uploads."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.images import ImageError, load_resized
from dashboard import ui


def images_ui(size: int) -> np.ndarray | None:
    """Pick the pictures every column shows: a split's training images (random or picked), or uploads."""
    source = st.radio(
        "Pictures",
        ["Training images of a saved split", "Demo dataset", "Upload pictures"],
        horizontal=True,
        key="aug_source",
    )
    count = st.session_state.get("aug_count", 4)
    if source == "Upload pictures":
        files = st.file_uploader(
            "Pictures",
            type=["jpg", "jpeg", "png", "bmp", "webp"],
            accept_multiple_files=True,
            key="aug_upload",
        )
        if not files:
            st.info("Upload one or more pictures to preview augmentation on them.")
            return None
        images = []
        for f in files[:8]:
            try:
                images.append(load_resized(f.getvalue(), (size, size), "crop"))
            except ImageError as e:
                st.warning(f"{f.name}: {e}")
        return np.stack(images) if images else None
    if source == "Demo dataset":
        root = ui.current_demo()
        index = ui.scan_dataset(root)
        if index is None:
            return None
        files = index.paths
    else:
        split = ui.split_picker(key="aug_split")
        if split is None:
            return None
        root, files = split.dataset_root, split.files("train")
    how = st.radio("Which", ["Random", "Pick"], horizontal=True, key="aug_pick_mode")
    if how == "Pick":
        picked = st.multiselect("Files", files, default=files[:count], max_selections=8, key="aug_files")
    else:
        rng = np.random.default_rng(st.session_state.get("aug_image_seed", 0))
        picked = list(rng.choice(files, size=min(count, len(files)), replace=False))
    images = ui.pictures(str(root), tuple(picked), size)
    return np.stack(images) if images else None
