"""Where the Data page's images come from: the demo, a saved dataset, a typed folder, an
uploaded zip or a public download; each gives a folder to scan."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import archive, download
from core.workspace import subdir
from dashboard import ui

SOURCES = (
    "Demo shapes",
    "Saved dataset",
    "Folder on this computer",
    "Upload a zip",
    "Download Dogs vs. Cats",
)


def download_ui(name: str = "dogs-vs-cats") -> Path | None:
    """A public dataset: at once when it was downloaded before, else after the Download button."""
    source = download.SOURCES[name]
    st.caption(f"{source.title}, about {source.approx_mb} MB. {source.note} Needs internet.")
    if (subdir("datasets") / source.name).is_dir():
        return download.get(source.name)
    if not st.button(f"Download ({source.approx_mb} MB)", key="download_go", icon=":material/download:"):
        return None
    bar = st.progress(0.0, text="Starting the download...")

    def report(stage: str, done: int, total: int) -> None:
        text = f"{stage.capitalize()}: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB" if total > 1 else stage
        bar.progress(done / max(total, 1), text=text)

    folder = None
    with ui.writing("save the download"):
        folder = download.get(source.name, progress=report)
    bar.empty()
    if folder is not None:
        st.success(f"Downloaded and unpacked {source.title}. The scan below lists the files left out.")
    return folder


def dataset_source_ui() -> Path | None:
    """Radio + inputs for where the images come from; returns the chosen folder."""
    source = st.radio("Images from", SOURCES, horizontal=True, key="source")
    if source == "Demo shapes":
        st.caption("Generated pictures of circles, squares, triangles and stars on busy backgrounds.")
        return ui.current_demo()
    if source == "Saved dataset":
        uploaded = {n: p for n, p in ui.known_datasets().items() if not n.startswith("demo")}
        if not uploaded:
            st.info("No uploaded datasets yet. Upload a zip first.")
            return None
        return uploaded[st.selectbox("Dataset", list(uploaded), key="saved_dataset")]
    if source == "Folder on this computer":
        text = st.text_input(
            "Folder path",
            key="folder_path",
            placeholder="/home/me/pictures/pets  (holding one folder per class)",
        )
        st.caption(
            "One sub-folder per class (cats/, dogs/, ...), Kaggle-style names (cat.1.jpg), "
            "or train/, validation/ and test/ folders."
        )
        return ui.typed_path(text)
    if source == "Download Dogs vs. Cats":
        return download_ui()
    upload = st.file_uploader("Zip of images (one folder per class inside)", type=["zip"], key="zip_upload")
    if upload is None:
        return None
    name = st.text_input("Name for this dataset", value=Path(upload.name).stem, key="zip_name")
    if st.button("Add dataset", key="zip_add", type="primary"):
        folder = None
        with st.spinner("Unpacking..."), ui.writing("add the dataset"):
            folder = archive.extract_zip(upload.getvalue(), subdir("datasets"), name)
        if folder is None:
            return None
        st.success(f"Added '{folder.name}'. Find it under 'Saved dataset' from now on.")
        st.session_state["dataset_path"] = str(folder)
        return folder
    return None
