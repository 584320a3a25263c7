"""Entry point: `streamlit run dashboard/app.py`. Wires the pages; each page is its own script."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # streamlit puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from core import access  # noqa: E402
from core.devices import configure_tensorflow  # noqa: E402

# The server shares the GPU with training runs: memory growth, set before TensorFlow starts.
configure_tensorflow(defer=True)
from dashboard import ui  # noqa: E402

st.set_page_config(page_title="Convnet Workbench", page_icon=":material/neurology:", layout="wide")
# .streamlit/config.toml is read only when the server starts in the repo folder: the settings that
# keep the server safe must hold however it was launched.
ui.apply_safe_client_settings()
refusal = access.bind_refusal(st.get_option("server.address"))
if refusal:
    st.error(refusal, icon=":material/lock:")
    st.stop()
try:
    ui.workspace()
except OSError as e:
    st.error(ui.write_error_text(e, "open the workspace"), icon=":material/error:")
    st.stop()

pages = [st.Page(ui.HOME.path, title=ui.HOME.title, icon=ui.HOME.icon, default=True)]
pages += [st.Page(s.path, title=s.title, icon=s.icon) for s in ui.STEPS if s.available]
page = st.navigation(pages)
ui.sidebar()
page.run()
