"""Try it: show a model a picture (camera, upload or a test picture) and see its answer and why, large
enough for people who do not program; presenter mode for a projector."""

from __future__ import annotations

import streamlit as st

from dashboard import try_it, ui

present = try_it.presenter_mode()
try_it.apply_css(present)
if not present:
    st.title("Try it")
    st.caption("Show a trained model a picture and see what it thinks it is, and where it looked to decide.")
run_column, source_column, toggle_column = st.columns([3, 3, 2], vertical_alignment="bottom")
with toggle_column:
    try_it.presenter_toggle()
runs = try_it.finished_runs()
if runs is None:
    st.stop()
with run_column:
    run = try_it.run_ui(runs, present)
with source_column:
    source = try_it.source_ui(present)
loaded = ui.run_model(run)
if loaded is None:
    st.stop()
picture = try_it.picture_ui(loaded, source, present)
if picture is not None:
    try_it.answer_ui(loaded, picture, present)
