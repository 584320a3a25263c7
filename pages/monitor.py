"""Monitor: live smoothed curves and progress of a run; the run history; compare runs."""

from __future__ import annotations

import time

import streamlit as st

from core import charts, curves, rundir, runs
from dashboard import run_history, ui

POLL_SECONDS = 1.5
IDLE_POLL_SECONDS = 5.0  # a run started from another tab or the CLI shows up


def run_label(run: dict) -> str:
    c, s = run["config"], run["status"]
    name = ui.run_name(run)
    return f"{name} · {s['state']} · {c.get('mode')} · {c.get('model')}"


def pick_run(all_runs: list[dict]) -> dict | None:
    if not all_runs:
        st.info("No runs yet. Start one on the Train page.")
        ui.link_to("Train", "Go to Train")
        return None
    ids = [r["id"] for r in all_runs]
    active = [r["id"] for r in all_runs if r["status"]["state"] in runs.ACTIVE_STATES]
    if st.session_state.get("monitor_run") not in ids:
        st.session_state["monitor_run"] = (active or ids)[0]
    by_id = {r["id"]: r for r in all_runs}
    chosen = st.selectbox("Run", ids, format_func=lambda i: run_label(by_id[i]), key="monitor_run")
    return by_id[chosen]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def controls(run_id: str, status: dict) -> None:
    """Stop for active runs, resume for stopped/failed/interrupted ones."""
    state = status["state"]
    if state in runs.ACTIVE_STATES:
        if st.button("Stop after this batch", key="monitor_stop", icon=":material/stop:"):
            with ui.writing("ask the run to stop"):
                runs.stop(run_id)
                st.toast("Asked the run to stop; checkpoints are kept.")
    elif state in ("stopped", "failed", "interrupted"):
        if st.button(
            "Resume",
            key="monitor_resume",
            icon=":material/play_arrow:",
            help="Continue from the last saved epoch, with the optimizer's state.",
        ):
            with ui.writing("resume the run"):
                runs.resume(run_id)
                st.rerun()


def live(run: dict, smoothing: float, per_batch: bool) -> None:
    """Progress, hints and curves of one run (as runs.list_runs read it just now)."""
    run_id, path, status, config = run["id"], run["path"], run["status"], run["config"]
    rows = runs.metrics(run_id)
    p = curves.progress(status, rows, time.time())
    state = status["state"]
    if state == "failed" or state == "interrupted":
        st.error(f"This run {state}: {status.get('error') or 'no message'}")
        with st.expander("Full log"):
            st.code(rundir.log_tail(path) or "(no log)", language="text")
    elif state == "queued":
        st.info(status.get("message") or "Waiting to start...")
    if status.get("heartbeat_late"):
        st.warning(
            f"No news from this run for {int(status['heartbeat_late'] // 60)} min "
            f"{int(status['heartbeat_late'] % 60)} s, but its process is still there: the machine may be "
            "busy or was asleep. It goes on by itself.",
            icon=":material/hourglass_top:",
        )
    cols = st.columns(5)
    cols[0].metric("State", state)
    cols[1].metric("Epoch", f"{p['epoch'] or 0} / {p['epochs'] or config.get('epochs')}")
    cols[2].metric("Elapsed", duration(p["elapsed"]))
    cols[3].metric("Time left", duration(p["eta"]) if p["eta"] is not None else "—")
    cols[4].metric("Images / s", f"{p['images_per_s']:.0f}" if p["images_per_s"] else "—")
    if state in runs.ACTIVE_STATES or state == "stopped":
        st.progress(p["epoch_fraction"], text=f"This epoch: batch {p['batch'] or 0} of {p['batches'] or '?'}")
    st.progress(p["fraction"], text=f"Whole run: {p['fraction']:.0%}")
    if status.get("message") and state == "running":
        st.caption(status["message"])
    for hint in curves.hints(rows, num_classes=len(status.get("classes") or []) or None):
        st.warning(hint, icon=":material/lightbulb:")
    table = curves.batch_table(rows) if per_batch else curves.epoch_table(rows)
    best = curves.best_epoch(rows)
    if len(table) == 0:
        st.caption("No measurements yet: the first appear after a few batches.")
    else:
        x_title = "step (batches)" if per_batch else "epoch"
        left, right = st.columns(2)
        left.plotly_chart(
            charts.curves(table, "loss", smoothing, x_title, None if per_batch else best), key="monitor_loss"
        )
        right.plotly_chart(
            charts.curves(table, "accuracy", smoothing, x_title, None if per_batch else best),
            key="monitor_accuracy",
        )
        if best is not None:
            e = curves.epoch_table(rows)
            i = e.x.index(best)
            st.caption(
                f"Best epoch so far: **{best}** (validation loss {e.val_loss[i]:.4f}, "
                f"validation accuracy {e.val_accuracy[i]:.1%}); it is saved as best.keras."
            )
    controls(run_id, status)


def watch() -> None:
    """The run picker and the chosen run's live view. Re-run on its own every POLL_SECONDS while
    a run is active (IDLE_POLL_SECONDS otherwise); when any run changes state, the whole page is
    redrawn, so picker labels and the run table never show a state the run has left."""
    # The page's own read of the runs on a full render; a rerun of this fragment alone reads again.
    all_runs = st.session_state.pop("monitor_runs", None)
    if all_runs is None:
        all_runs = runs.list_runs()
    states = {r["id"]: r["status"]["state"] for r in all_runs}
    seen = st.session_state.get("monitor_states")
    st.session_state["monitor_states"] = states
    if seen is not None and seen != states:
        st.rerun()
    run = pick_run(all_runs)
    if run is None:
        return
    c1, c2 = st.columns([3, 2])
    smoothing = c1.slider(
        "Smoothing",
        0.0,
        0.99,
        0.8,
        0.01,
        key="monitor_smoothing",
        help="Averages out noise (0: raw). The same debiased moving average as TensorBoard; "
        "0.8 is the tutorials' smooth_curve factor.",
    )
    points = c2.radio("Points", ["per epoch", "per batch"], horizontal=True, key="monitor_x")
    live(run, smoothing, points == "per batch")


st.title("Monitor")
st.caption(
    "Loss says how wrong the model is (lower is better); accuracy is the share of pictures it gets right. "
    "Training curves show the pictures it learns from, validation curves pictures it never learns from: "
    "when they drift apart, it is memorising rather than learning."
)
all_runs = runs.list_runs()
st.session_state["monitor_runs"] = all_runs
any_active = any(r["status"]["state"] in runs.ACTIVE_STATES for r in all_runs)
st.session_state["monitor_states"] = {r["id"]: r["status"]["state"] for r in all_runs}
st.fragment(run_every=POLL_SECONDS if any_active else IDLE_POLL_SECONDS)(watch)()
if all_runs:
    run_history.history_ui(all_runs, st.session_state.get("monitor_smoothing", 0.8))
