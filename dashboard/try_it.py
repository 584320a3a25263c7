"""The Try it page's pieces: presenter mode, the run and picture choice, and the answer shown large.

Session state (this page only): ``tryit_present`` (presenter mode, mirrored in the URL as
``?present=1``), ``tryit_run`` (the chosen run, mirrored as ``?run=<id>``), ``tryit_source``,
``tryit_upload``, ``tryit_camera`` (widgets) and ``tryit_sample`` (the sample picture clicked last).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import streamlit as st

from core import charts, modelfile, tryit
from core.data import DataError, load_split
from core.images import ImageError
from core.runs import ACTIVE_STATES
from dashboard import ui

PRESENT_KEY, RUN_KEY, SOURCE_KEY, SAMPLE_KEY = "tryit_present", "tryit_run", "tryit_source", "tryit_sample"
SOURCES = ("Upload", "Sample pictures", "Camera")
THUMBNAIL_SIZE = 96

ANSWER_CSS = """<style>
.st-key-tryit_answer h1 {font-size: 3.2rem; line-height: 1.1; padding-bottom: 0;}
.st-key-tryit_answer h3 {font-size: 1.8rem; color: #495057;}
.st-key-tryit_answer [data-testid="stMarkdownContainer"] p {font-size: 1.2rem;}
</style>"""
# A projector: no sidebar, no Streamlit header, the whole width, the answer's text bigger still.
PRESENTER_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stExpandSidebarButton"], [data-testid="stHeader"] {display: none !important;}
[data-testid="stMainBlockContainer"] {padding-top: 1.5rem; max-width: 100%;}
.st-key-tryit_answer h1 {font-size: 4.5rem;}
.st-key-tryit_answer h3 {font-size: 2.4rem;}
.st-key-tryit_answer [data-testid="stMarkdownContainer"] p {font-size: 1.6rem;}
.st-key-tryit_answer [data-testid="stImageCaption"] {font-size: 1.3rem;}
</style>"""


def presenter_mode() -> bool:
    """Whether presenter mode is on: the toggle's value, taken from the URL (?present=1) at first."""
    if PRESENT_KEY not in st.session_state:
        st.session_state[PRESENT_KEY] = st.query_params.get("present") in ("1", "true")
    return bool(st.session_state[PRESENT_KEY])


def apply_css(present: bool) -> None:
    st.html(ANSWER_CSS + (PRESENTER_CSS if present else ""))


def presenter_toggle() -> None:
    """The presenter-mode toggle, kept in sync with ?present=1 so the URL can be shared or bookmarked."""
    st.toggle(
        "Presenter mode",
        key=PRESENT_KEY,
        help="For a projector: hides the sidebar and settings and enlarges the text. Or open the page "
        "with ?present=1 in its address.",
    )
    if st.session_state[PRESENT_KEY]:
        st.query_params["present"] = "1"
    elif "present" in st.query_params:
        del st.query_params["present"]


def finished_runs() -> list[dict] | None:
    """Runs that saved a model and are no longer training, newest first. None (with a friendly
    sentence and a way on) when there is none."""
    with_model = modelfile.runs_with_model()
    done = [r for r in with_model if r["status"].get("state") not in ACTIVE_STATES]
    if done:
        return done
    if with_model:
        st.info(
            f"Your model is still learning ({ui.run_name(with_model[0])}). Try it here as soon as its "
            "training ends; meanwhile you can watch it learn.",
            icon=":material/hourglass_top:",
        )
        ui.link_to("Monitor", "Watch it on Monitor")
    else:
        st.info(
            "There is no trained model to try yet. Train one first: on the Train page, "
            "**Quick demo settings** train one on the built-in shapes in about a minute.",
            icon=":material/school:",
        )
        ui.link_to("Train", "Go to Train")
    return None


def run_ui(runs: list[dict], present: bool) -> dict:
    """Which run's model to try (the newest at first, or ?run=<id>); mirrored in the URL."""
    by_id = {r["id"]: r for r in runs}
    if st.session_state.get(RUN_KEY) not in by_id:
        wanted = st.query_params.get("run")
        st.session_state[RUN_KEY] = wanted if wanted in by_id else next(iter(by_id))
    run_id = st.selectbox(
        "Model",
        list(by_id),
        key=RUN_KEY,
        format_func=lambda i: f"{ui.run_name(by_id[i])} ({by_id[i]['config'].get('model')})",
        label_visibility="collapsed" if present else "visible",
    )
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id
    return by_id[run_id]


def source_ui(present: bool) -> str:
    return st.radio(
        "Picture from",
        SOURCES,
        horizontal=True,
        key=SOURCE_KEY,
        label_visibility="collapsed" if present else "visible",
    )


def picture_ui(loaded: modelfile.LoadedModel, source: str, present: bool) -> Path | bytes | None:
    """The picture to try, a file or its bytes; None until there is one."""
    label = "collapsed" if present else "visible"
    if source == "Upload":
        upload = st.file_uploader(
            "A picture", type=ui.PICTURE_TYPES, key="tryit_upload", label_visibility=label
        )
        return upload.getvalue() if upload else None
    if source == "Camera":
        shot = st.camera_input("Take a picture", key="tryit_camera", label_visibility=label)
        return shot.getvalue() if shot else None
    return sample_ui(loaded)


def sample_ui(loaded: modelfile.LoadedModel) -> Path | None:
    """A row of test pictures of the run's split, each with a button; the one clicked last."""
    try:
        split = load_split(loaded.split) if loaded.split else None
    except DataError:
        split = None
    files = tryit.sample_files(split) if split else []
    if not files:
        st.info("This model's test pictures are not available; upload a picture instead.")
        return None
    root = split.dataset_root
    columns = st.columns(len(files))
    for i, (column, file) in enumerate(zip(columns, files)):
        thumbnail = ui.pictures(root, (file,), THUMBNAIL_SIZE)
        if thumbnail:
            column.image(thumbnail[0], width=THUMBNAIL_SIZE)
        if column.button("Try this", key=f"tryit_sample_{i}", disabled=not thumbnail):
            st.session_state[SAMPLE_KEY] = file
    chosen = st.session_state.get(SAMPLE_KEY)
    return Path(root) / chosen if chosen in files else None


@st.cache_data(max_entries=32, show_spinner="Looking at the picture...")
def cached_answer(_loaded: modelfile.LoadedModel, model_key: str, digest: str, _source) -> tryit.Answer:
    """Kept per model file version and picture content, so flipping presenter mode is instant."""
    return tryit.answer(_loaded, _source)


def picture_digest(source: Path | bytes) -> str:
    """Identifies a picture's content: the bytes' SHA-256, or a file's path and modification time."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    return f"{source}:{Path(source).stat().st_mtime_ns}"


def it_is(label: str) -> str:
    """The answer in words: "It's a star", "It's an owl", and "It's cats" for names that look plural."""
    if label.endswith("s") and not label.endswith(("ss", "us", "is")):
        return f"It's {label}"
    return f"It's {'an' if label[:1].lower() in 'aeiou' else 'a'} {label}"


def answer_ui(loaded: modelfile.LoadedModel, source: Path | bytes, present: bool) -> None:
    """The answer, large: the class in words and how sure, a bar per class, the picture and its
    Grad-CAM overlay side by side, and what the heatmap means. Friendly sentences on bad input."""
    try:
        answer = cached_answer(loaded, loaded.key, picture_digest(source), source)
    except (ImageError, OSError) as e:
        st.warning(
            f"That picture could not be read: {getattr(e, 'strerror', None) or e}. "
            "Try a photo saved as JPEG or PNG.",
            icon=":material/broken_image:",
        )
        return
    except ValueError as e:
        st.warning(f"This model could not look at the picture: {e}", icon=":material/error:")
        return
    with st.container(key="tryit_answer"):
        picture, overlay, words = st.columns([1, 1, 1.1], gap="medium")
        picture.image(answer.picture, caption="The picture", width="stretch")
        overlay.image(answer.overlay, caption="Where the network looked", width="stretch")
        with words:
            st.title(it_is(answer.label), anchor=False)
            st.subheader(f"{math.floor(answer.probability * 100)}% sure", anchor=False)
            st.plotly_chart(
                charts.answer_bars(dict(zip(answer.classes, map(float, answer.probabilities))), present),
                key="tryit_bars",
                config={"displayModeBar": False, "staticPlot": True},
            )
        st.markdown(
            f"The warm colours show the parts of the picture that made the network say **{answer.label}**."
        )
