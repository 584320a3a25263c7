"""The Evaluate page's run report: one HTML file (core.report) to hand to people who do not use the app."""

from __future__ import annotations

import streamlit as st

from core import evaluate, report
from dashboard import ui


def report_ui(run: dict, which: str, result: evaluate.EvalResult) -> None:
    """A button that makes the report of a scored run, then offers it as a download."""
    st.subheader("Run report")
    st.caption(
        "One file with everything about this model: what was trained, how it learned, the test results, "
        "its biggest mistakes and where it looked, its layers, the computer and the time it took. "
        "It opens in any web browser, without this app and without internet."
    )
    if not st.button("Make the report", key="report_go", icon=":material/description:"):
        return
    model = ui.run_model(run, which)
    if model is None:
        return
    try:
        with st.spinner("Making the report..."):
            page = report.build_report(run["id"], which, result=result, loaded=model).encode("utf-8")
    except (ValueError, OSError) as e:
        ui.show_error(e)
        return
    st.download_button(
        f"Download the report ({len(page) / 1e6:.1f} MB)",
        page,
        file_name=f"{run['id']}-report.html",
        mime="text/html",
        key="report_download",
        icon=":material/download:",
        on_click="ignore",  # no rerun: the button stays for a second download
    )
