"""The Monitor page's run history: the table of every run, comparing the chosen ones, and
renaming, notes and deleting."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import charts, curves, runs
from dashboard import ui


def history_ui(all_runs: list[dict], smoothing: float) -> None:
    """The run table: sortable, select rows to compare; rename, notes, delete."""
    st.subheader("All runs")
    table = ui.runs_table(all_runs)
    event = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        key="runs_table",
        column_config={
            "best val acc": st.column_config.NumberColumn(format="percent"),
            "test acc": st.column_config.NumberColumn(format="percent"),
        },
    )
    chosen = [all_runs[i] for i in event.selection.rows] if event and event.selection.rows else []
    if not chosen:
        st.caption(
            "Select runs in the table (tick the boxes on the left) to compare their curves and settings, "
            "rename them or delete them."
        )
        return
    if len(chosen) >= 2:
        compare_ui(chosen, smoothing)
    edit_ui(chosen)


def compare_ui(chosen: list[dict], smoothing: float) -> None:
    tables = {ui.run_name(r): curves.epoch_table(runs.metrics(r["id"])) for r in chosen}
    left, right = st.columns(2)
    left.plotly_chart(charts.compare(tables, "loss", smoothing, "epoch"), key="compare_loss")
    right.plotly_chart(charts.compare(tables, "accuracy", smoothing, "epoch"), key="compare_accuracy")
    configs = pd.DataFrame({ui.run_name(r): {k: str(v) for k, v in r["config"].items()} for r in chosen})
    differs = configs.nunique(axis=1) > 1
    only_diff = st.toggle("Only settings that differ", value=True, key="compare_only_diff")
    shown = configs[differs] if only_diff else configs
    st.dataframe(
        shown.style.apply(
            lambda row: ["background-color: #fff3bf" if differs[row.name] else ""] * len(row), axis=1
        ),
        key="compare_configs",
    )


def edit_ui(chosen: list[dict]) -> None:
    run = chosen[-1]
    meta = runs.meta(run["id"])
    with st.expander(f"Name, notes and delete: {ui.run_name(run)}", expanded=len(chosen) == 1):
        name = st.text_input("Name", value=meta.get("name", ""), key=f"meta_name_{run['id']}")
        notes = st.text_area("Notes", value=meta.get("notes", ""), key=f"meta_notes_{run['id']}")
        c1, c2 = st.columns(2)
        if c1.button("Save name and notes", key="meta_save", icon=":material/save:"):
            with ui.writing("save the name and notes"):
                runs.set_meta(run["id"], name=name, notes=notes)
                st.rerun()
        if run["status"]["state"] in runs.ACTIVE_STATES:
            c2.caption("A running run cannot be deleted; stop it first.")
        elif c2.checkbox("Yes, delete this run and its models", key=f"delete_confirm_{run['id']}"):
            if c2.button("Delete run", key="delete_run", type="primary", icon=":material/delete:"):
                with ui.writing("delete the run"):
                    runs.delete(run["id"])
                    st.session_state.pop("monitor_run", None)
                    st.rerun()
