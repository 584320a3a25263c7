"""Widgets and session helpers shared by the pages (figures are in core/charts.py).

Session state used across pages (one documented name each):
- ``dataset_path``: the folder the Data page works on (str; the demo by default).
- ``scans``: {(path, generation): DatasetIndex}, so switching pages does not rescan.
- ``scan_generation``: bumped by "Rescan" to force a fresh scan.
- ``dupes_reports``: {split key: DupesReport}, the Data page's last check for copies (dashboard.dupes_view).
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core import access, data, demo, download, modelfile, rundir
from core.data import DataError, DatasetIndex, cleaning
from core.images import ImageError, load_resized
from core.workspace import subdir, workspace_dir

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "pages"
# What picture uploaders accept: the formats core.images decodes.
PICTURE_TYPES = ["jpg", "jpeg", "png", "bmp", "webp", "gif", "tif", "tiff"]


@dataclass(frozen=True)
class Step:
    """One page of the app, in the order a user works through them."""

    title: str
    file: str
    icon: str
    summary: str

    @property
    def path(self) -> Path:
        return PAGES / self.file

    @property
    def available(self) -> bool:
        return self.path.exists()


HOME = Step("Home", "home.py", ":material/home:", "What this app does and what your workspace holds.")
STEPS: tuple[Step, ...] = (
    Step(
        "Data",
        "data.py",
        ":material/photo_library:",
        "Pick a folder of images, check it for broken files, and split it into training, validation and test sets.",
    ),
    Step(
        "Augment",
        "augment.py",
        ":material/auto_awesome:",
        "Try random flips, turns and zooms side by side on the same pictures to choose how to vary the training images.",
    ),
    Step(
        "Train",
        "train.py",
        ":material/model_training:",
        "Train a network from scratch or reuse one pretrained on ImageNet, in the background.",
    ),
    Step(
        "Monitor",
        "monitor.py",
        ":material/monitoring:",
        "Watch loss and accuracy while a model trains, and compare runs.",
    ),
    Step(
        "Evaluate",
        "evaluate.py",
        ":material/fact_check:",
        "Score a model on the test images it never saw, and try it on new pictures.",
    ),
    Step(
        "Explain",
        "explain.py",
        ":material/visibility:",
        "See what the network looks at: activation maps and Grad-CAM heatmaps.",
    ),
    Step(
        "Try it",
        "try_it.py",
        ":material/touch_app:",
        "Show a trained model a new picture, from the camera or a file, and see its answer and why: for demos.",
    ),
)


def link_to(title: str, label: str | None = None) -> None:
    """A link to another step's page, when that page exists in this version of the app."""
    step = next(s for s in (HOME, *STEPS) if s.title == title)
    if step.available:
        st.page_link(str(step.path), label=label or step.title, icon=step.icon)


def workspace() -> Path:
    return workspace_dir()


@st.cache_resource(show_spinner="Making the demo dataset (a few seconds, once)...")
def demo_path(workspace: str) -> Path:
    """The demo dataset's folder, generated on first use."""
    return demo.ensure_demo(workspace)


def current_demo() -> Path:
    """The demo dataset; on a read-only or full workspace, a message and the page stops."""
    try:
        return demo_path(str(workspace()))
    except OSError as e:
        st.error(write_error_text(e, "make the demo dataset"), icon=":material/error:")
        st.stop()


def known_datasets() -> dict[str, Path]:
    """Datasets in the workspace: the demo first, then uploaded ones by name."""
    found = {"demo (built-in shapes)": current_demo()}
    for p in sorted(subdir("datasets").iterdir()):
        if p.is_dir() and not p.name.startswith(".") and p.name != demo.DEMO_NAME:
            found[p.name] = download.class_root(p)
    return found


def dataset_path() -> Path:
    """The dataset the user chose on the Data page (the demo until they choose another)."""
    chosen = st.session_state.get("dataset_path")
    return Path(chosen) if chosen else current_demo()


def progress_callback(bar, label: str) -> Callable[[int, int], None]:
    """Adapt a st.progress bar to core's (done, total) callbacks."""

    def report(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{label}: {done:,} of {total:,}")

    return report


def scan_dataset(path: str | os.PathLike) -> DatasetIndex | None:
    """Scan once per session (progress bar on first scan); None and a message on bad input."""
    generation = st.session_state.get("scan_generation", 0)
    scans = st.session_state.setdefault("scans", {})
    key = (str(Path(path).expanduser()), generation)
    if key not in scans:
        bar = st.progress(0.0, text="Checking images...")
        try:
            scans[key] = data.scan(path, progress=progress_callback(bar, "Checking images"))
        except DataError as e:
            bar.empty()
            st.error(str(e))
            return None
        except OSError as e:
            bar.empty()
            st.error(f"Could not read {path}: {e.strerror or e}")
            return None
        bar.empty()
    return scans[key]


@st.cache_data(show_spinner=False, max_entries=64)
def pictures(root: str, paths: tuple[str, ...], size: int) -> list[np.ndarray]:
    """root/paths as centre-cropped (size, size, 3) uint8 arrays; unreadable files are skipped."""
    out = []
    for p in paths:
        try:
            out.append(load_resized(Path(root) / p, (size, size), "crop"))
        except ImageError:
            continue
    return out


def split_table(split: data.Split) -> pd.DataFrame:
    """Images per split (rows) and class (columns), with totals."""
    df = pd.DataFrame(split.table()).T
    df.index = ["train", "validation", "test"]
    df["total"] = df.sum(axis=1)
    df.loc["total"] = df.sum(axis=0)
    return df


def split_picker(key: str = "split", label: str = "Saved split") -> data.Split | None:
    """A selectbox of saved splits; None (with a hint) when there are none."""
    names = data.list_splits()
    if not names:
        st.info("No saved split yet. Make one on the **Data** page.")
        return None
    name = st.selectbox(label, names, key=key, format_func=cleaning.version_label)
    try:
        split = data.load_split(name)
    except DataError as e:
        st.error(str(e))
        return None
    changed = split.changed()
    if changed:
        st.warning(f"Split '{name}': {changed}. Make the split again on the Data page.")
    return split


def show_error(e: BaseException) -> None:
    """A plain one-line message for errors users can fix (never a traceback)."""
    st.error(str(e) or type(e).__name__)


def apply_safe_client_settings() -> None:
    """Hide error details from users unless the operator chose otherwise (flag or environment)."""
    from streamlit import config

    if config.get_where_defined("client.showErrorDetails") == "<default>":
        st.set_option("client.showErrorDetails", "none")
    if config.get_where_defined("client.toolbarMode") == "<default>":
        st.set_option("client.toolbarMode", "minimal")


def remote_mode() -> bool:
    """True when the server listens where other machines can reach it (allowed by the operator)."""
    return not access.is_loopback(st.get_option("server.address"))


def typed_path(text: str) -> Path | None:
    """A folder or file path the user typed, once the server may read it; None (and a one-line
    refusal) when it lies outside the data roots."""
    if not text.strip():
        return None
    try:
        return access.check_typed_path(text, remote_mode())
    except DataError as e:
        show_error(e)
        return None


def write_error_text(e: OSError, what: str) -> str:
    """One sentence for a failed write: read-only or full workspace, or another OS error."""
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = f"the workspace is read-only{where}"
    elif e.errno in (errno.ENOSPC, errno.EDQUOT):
        why = f"the disk is full{where}"
    else:
        why = f"{e.strerror or e}{where}"
    return (
        f"Could not {what}: {why}. Nothing was changed. Free some space or point "
        f"CONVNET_WORKSPACE at a writable folder."
    )


@contextlib.contextmanager
def writing(what: str) -> Iterator[None]:
    """A page action that writes: a refusal written for people (core's DataError, RunError,
    ConfigError... are ValueErrors; an unknown saved name a KeyError) is shown as it is, and a
    failed write (read-only or full workspace) as one sentence; the code after the block runs."""
    try:
        yield
    except (ValueError, KeyError) as e:
        show_error(e)
    except OSError as e:
        st.error(write_error_text(e, what), icon=":material/error:")


def sidebar() -> None:
    with st.sidebar:
        st.caption(f"Workspace: `{workspace()}`")
        chosen = st.session_state.get("dataset_path")
        st.caption(f"Dataset: `{Path(chosen).name if chosen else demo.DEMO_NAME}`")


def _progress_text(status: dict) -> str:
    epoch, epochs = status.get("epoch") or 0, status.get("epochs") or "?"
    text = f"epoch {epoch}/{epochs}"
    if status.get("batches"):
        text += f", batch {status.get('batch') or 0}/{status['batches']}"
    return text + (f" — {status['message']}" if status.get("message") else "")


@st.fragment(run_every=2.0)
def active_runs_ui() -> None:
    """Queued and running runs with a stop button each; refreshes itself every 2 s."""
    from core import runs

    active = [r for r in runs.list_runs() if r["status"]["state"] in runs.ACTIVE_STATES]
    st.subheader("Running now")
    if not active:
        st.caption("Nothing is training.")
        return
    for run in active:
        status = run["status"]
        left, right = st.columns([5, 1], vertical_alignment="center")
        left.markdown(f"**{run['id']}** · {status['state']} · {_progress_text(status)}")
        if rundir.stop_requested(run["path"]):
            right.caption("stopping...")
        elif right.button("Stop", key=f"stop_{run['id']}", icon=":material/stop:"):
            runs.stop(run["id"])
            right.caption("stopping...")


@st.cache_resource(max_entries=3, show_spinner="Loading the model...")
def _run_model(run_id: str, which: str, key: str) -> modelfile.LoadedModel:
    """Kept per model file version (key), so reruns and page switches do not reload it."""
    return modelfile.from_run(run_id, which)


def run_model(run: dict, which: str = "best") -> modelfile.LoadedModel | None:
    """A run's model (safe mode, as always); None with a message when it cannot be loaded."""
    file = modelfile.model_file(run["path"], which)
    if file is None:
        st.error(f"Run '{run['id']}' has no saved model.")
        return None
    try:
        return _run_model(run["id"], which, f"{file}:{file.stat().st_mtime_ns}")
    except (ValueError, OSError) as e:
        show_error(e)
        return None


def run_name(run: dict) -> str:
    """The name the user gave a run, else its id. Kept in the run's dict, so meta.json is read
    once per run per render however many labels and table rows show the name."""
    from core import runs

    if "name" not in run:
        run["name"] = runs.meta(run["id"]).get("name") or run["id"]
    return run["name"]


def runs_table(all_runs: list[dict]) -> pd.DataFrame:
    """One row per run for the history tables: what, how, how well, how long, state."""
    from core import curves, evaluate, runs

    rows = []
    for run in all_runs:
        c, s = run["config"], run["status"]
        epochs = curves.epoch_table(runs.metrics(run["id"]))
        val = [v for v in epochs.val_accuracy if v is not None]
        cached = evaluate.cached_evaluation(run["id"]) if modelfile.model_file(run["path"], "best") else None
        start, end = s.get("started"), s.get("ended") or (time.time() if s["state"] == "running" else None)
        rows.append(
            {
                "name": run_name(run),
                "mode": c.get("mode"),
                "model": c.get("model"),
                "augmentation": c.get("augment_name"),
                "split": c.get("split"),
                "epochs": f"{max([e for e in epochs.x if e] or [0])}/{c.get('epochs')}",
                "best val acc": max(val) if val else None,
                "test acc": cached.accuracy if cached else None,
                "minutes": round((end - start) / 60, 1) if start and end else None,
                "state": s["state"],
                "id": run["id"],
            }
        )
    return pd.DataFrame(rows)
