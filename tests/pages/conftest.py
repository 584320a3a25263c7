"""Open a page the way a browser does: through dashboard/app.py and its st.navigation."""

from __future__ import annotations

import base64
import os

import numpy as np

from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

APP = str(REPO / "dashboard" / "app.py")
# The app hides error details from users (.streamlit/config.toml); tests want to read them.
os.environ["STREAMLIT_CLIENT_SHOW_ERROR_DETAILS"] = "full"


def open_page(file: str, timeout: float = 180, **session) -> AppTest:
    """Run the app, switch to pages/<file>, and return the AppTest after that run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(f"../pages/{file}").run()
    return at


def plotly_values(v) -> np.ndarray:
    """A trace array from a chart's JSON spec: a plain list, or Plotly's base64 typed array."""
    if isinstance(v, dict) and "bdata" in v:
        shape = [int(n) for n in str(v.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).reshape(shape)
    return np.asarray(v)
