"""Entry point: `streamlit run dashboard/app.py`. Wires the pages; each page is its own script."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # streamlit puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

st.set_page_config(page_title="Convnet Workbench", page_icon=":material/neurology:", layout="wide")

pages = [st.Page(ui.HOME.path, title=ui.HOME.title, icon=ui.HOME.icon, default=True)]
pages += [st.Page(s.path, title=s.title, icon=s.icon) for s in ui.STEPS if s.available]
page = st.navigation(pages)
ui.sidebar()
page.run()
