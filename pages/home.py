"""Home: what the app does, the steps, and what the workspace holds."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core import data, runs
from dashboard import ui

st.title("Convnet Workbench")
st.markdown(
    "Teach a computer to sort pictures into groups — cats and dogs, or any classes you have — "
    "and see how well it learned and what it looks at. Work through the steps below from left "
    "to right; everything you make is kept in your workspace."
)

columns = st.columns(3)
for i, step in enumerate(ui.STEPS):
    with columns[i % 3].container(border=True):
        if step.available:
            st.page_link(str(step.path), label=f"**{i + 1}. {step.title}**", icon=step.icon)
        else:
            st.markdown(f"**{i + 1}. {step.title}** · _coming soon_")
        st.caption(step.summary)

st.subheader("Your workspace")
st.caption(f"Folder: `{ui.workspace()}`")
left, middle, right = st.columns(3)
with left:
    st.markdown("**Datasets**")
    st.dataframe(
        pd.DataFrame([{"name": n, "folder": str(p)} for n, p in ui.known_datasets().items()]),
        hide_index=True,
    )
with middle:
    st.markdown("**Saved splits**")
    rows = []
    for name in data.list_splits():
        try:
            split = data.load_split(name)
        except data.DataError as e:
            rows.append({"name": name, "images": None, "classes": None, "made": str(e)})
            continue
        rows.append(
            {
                "name": name,
                "images": sum(len(v) for v in split.subsets.values()),
                "classes": len(split.classes),
                "made": time.strftime("%Y-%m-%d %H:%M", time.localtime(split.created)),
            }
        )
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.info("None yet: make one on the Data page.")
with right:
    st.markdown("**Training runs**")
    table = [
        {"run": ui.run_name(r), "state": r["status"].get("state"), "network": r["config"].get("model")}
        for r in runs.list_runs()
    ]
    if table:
        st.dataframe(pd.DataFrame(table), hide_index=True)
    else:
        st.info("None yet: start one on the Train page.")
