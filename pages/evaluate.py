"""Evaluate: score a run on its test pictures, look at its mistakes, try it on new pictures, export it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import charts, evaluate, export, modelfile, predict, rundir
from core.images import load_resized
from dashboard import data_map, marks, mistakes, report_button, ui

EXPORTS = {
    "keras": ("Keras model (.keras)", "For Python with Keras 3: keras.models.load_model(file)."),
    "savedmodel": (
        "TensorFlow SavedModel (.zip)",
        "For TensorFlow Serving, TensorFlow.js and programs without Keras.",
    ),
    "tflite": ("TensorFlow Lite (.tflite)", "For phones and small devices (LiteRT)."),
}


def pick_run() -> tuple[dict, str] | None:
    done = modelfile.runs_with_model()
    if not done:
        st.info("No trained models yet. Train one on the Train page.")
        ui.link_to("Train", "Go to Train")
        return None
    by_id = {r["id"]: r for r in done}
    c1, c2 = st.columns([4, 1])
    run_id = c1.selectbox(
        "Run",
        list(by_id),
        key="eval_run",
        format_func=lambda i: f"{ui.run_name(by_id[i])} · {by_id[i]['status']['state']}",
    )
    which = c2.radio(
        "Model",
        modelfile.MODEL_CHOICES,
        horizontal=True,
        key="eval_which",
        help="best: the epoch with the lowest validation loss; last: the final epoch.",
    )
    return by_id[run_id], which


def scores_ui(run: dict, which: str) -> evaluate.EvalResult | None:
    result = evaluate.cached_evaluation(run["id"], which)
    if result is None:
        st.caption("Scores the model on the test pictures of its split, which it never saw while training.")
        if not st.button(
            "Score on the test pictures", key="eval_go", type="primary", icon=":material/fact_check:"
        ):
            return None
        bar = st.progress(0.0)
        try:
            result = evaluate.evaluate_run(
                run["id"],
                which,
                progress=lambda stage, d, t: bar.progress(d / max(t, 1), text=f"{stage} {d:,}/{t:,}"),
            )
        except ValueError as e:
            bar.empty()
            ui.show_error(e)
            return None
        except OSError as e:
            bar.empty()
            st.error(ui.write_error_text(e, "score the model"))
            return None
        bar.empty()
    return result


def results_ui(result: evaluate.EvalResult) -> None:
    a, b, c, d = st.columns(4)
    a.metric("Test accuracy", f"{result.accuracy:.1%}")
    b.metric("Test loss", f"{result.loss:.4f}")
    c.metric("Test pictures", f"{result.n:,}")
    d.metric("Wrong", f"{int((result.predicted != result.labels).sum()):,}")
    if result.failed:
        st.warning(f"{len(result.failed)} test pictures could not be read and were left out.")
    left, right = st.columns(2)
    with left:
        normalized = st.toggle("Show shares instead of counts", key="eval_normalized")
        st.plotly_chart(charts.confusion(result.confusion, result.classes, normalized), key="eval_confusion")
    with right:
        st.plotly_chart(charts.roc(result.roc, result.classes), key="eval_roc")
    st.dataframe(
        pd.DataFrame(result.report),
        hide_index=True,
        key="eval_report",
        column_config={
            k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "f1")
        },
    )
    csv = evaluate.eval_paths(rundir.run_dir(result.run_id), result.which, result.subset)[1]
    if csv.exists():
        st.download_button(
            "Download every prediction (CSV)",
            csv.read_bytes(),
            file_name=csv.name,
            mime="text/csv",
            key="eval_csv",
            icon=":material/download:",
        )


def predict_ui(run: dict, which: str) -> None:
    st.subheader("Try it on new pictures")
    source = st.radio(
        "Pictures from", ["Upload", "A folder on this computer"], horizontal=True, key="predict_source"
    )
    sources: list[tuple[str, object]] = []
    if source == "Upload":
        files = st.file_uploader(
            "Pictures", type=ui.PICTURE_TYPES, accept_multiple_files=True, key="predict_upload"
        )
        sources = [(f.name, f.getvalue()) for f in files or []]
    else:
        folder = ui.typed_path(st.text_input("Folder", key="predict_folder"))
        if folder is not None:
            try:
                sources = [(str(p), p) for p in predict.image_files(folder)[:200]]
            except OSError as e:
                st.error(f"Could not read {folder}: {e.strerror or e}")
    if not sources:
        return
    model = ui.run_model(run, which)
    if model is None:
        return
    predictions = predict.predict_sources(model, sources)
    cols = st.columns(3)
    for i, ((_, src), p) in enumerate(zip(sources, predictions)):
        with cols[i % 3].container(border=True):
            if p.error:
                st.error(f"{Path(p.path).name}: {p.error}")
                continue
            st.image(load_resized(src, (200, 200), "pad"), caption=Path(p.path).name)
            st.markdown(f"**{p.label}** ({p.probability:.1%})")
            st.plotly_chart(charts.probability_bars(p.probabilities), key=f"predict_bars_{i}")


def export_ui(run: dict, which: str) -> None:
    with st.expander("Export the model"):
        fmt = st.radio("Format", list(EXPORTS), format_func=lambda f: EXPORTS[f][0], key="export_format")
        st.caption(
            EXPORTS[fmt][1] + " Inputs: RGB pictures as floats 0-255 of the training size; "
            "outputs: class probabilities."
            + ("" if fmt == "keras" else " The file is tried on the run's pictures before it is offered.")
        )
        if st.button("Prepare download", key="export_go", icon=":material/package_2:"):
            try:
                with st.spinner("Exporting and checking..."):
                    download = export.export_bytes(run["id"], fmt, which)
            except (ValueError, OSError) as e:
                ui.show_error(e)
                return
            size = len(download.data)
            left, right = st.columns([1, 2], vertical_alignment="center")
            left.download_button(
                f"Download the {Path(download.name).suffix} file "
                f"({f'{size / 1e6:.1f} MB' if size >= 1e5 else f'{size / 1e3:.0f} kB'})",
                download.data,
                file_name=download.name,
                key="export_download",
                icon=":material/download:",
            )
            if download.check is not None:
                right.success(download.check.message, icon=":material/verified:")


st.title("Evaluate")
st.caption("How good is the model on pictures it has never seen? And what does it say about yours?")
picked = pick_run()
if picked is None:
    st.stop()
run, which = picked
result = scores_ui(run, which)
split = marks.split_or_none(run["config"].get("split"))
if result is not None:
    results_ui(result)
    mistakes.mistakes_ui(result, split)
    report_button.report_ui(run, which, result)
data_map.map_ui(run, which, split)
if split is not None:
    marks.pending_ui(split)
predict_ui(run, which)
export_ui(run, which)
