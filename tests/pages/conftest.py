"""Open a page the way a browser does: through dashboard/app.py and its st.navigation."""

from __future__ import annotations

import base64
import os

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import REPO

APP = str(REPO / "dashboard" / "app.py")
# The app hides error details from users (.streamlit/config.toml); tests want to read them.
os.environ["STREAMLIT_CLIENT_SHOW_ERROR_DETAILS"] = "full"
# AppTest has no server; tell the app it listens on loopback, as `make run` does.
os.environ["STREAMLIT_SERVER_ADDRESS"] = "127.0.0.1"


def open_page(file: str, timeout: float = 180, **session) -> AppTest:
    """Run the app, switch to pages/<file>, and return the AppTest after that run."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(f"../pages/{file}").run()
    return at


def add_zip(at: AppTest, name: str, payload: bytes) -> AppTest:
    """On the Data page: choose "Upload a zip", upload `payload` as `name`, press "Add dataset"."""
    at.radio(key="source").set_value("Upload a zip").run()
    at.file_uploader(key="zip_upload").upload(name, payload, "application/zip").run()
    return at.button(key="zip_add").click().run()


def plotly_values(v) -> np.ndarray:
    """A trace array from a chart's JSON spec: a plain list, or Plotly's base64 typed array."""
    if isinstance(v, dict) and "bdata" in v:
        shape = [int(n) for n in str(v.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"])).reshape(shape)
    return np.asarray(v)


@pytest.fixture
def trained_run(workspace, tmp_path):
    """A run directory holding a real (briefly trained) model on demo shapes at 32 px."""
    from core import data, demo, models, rundir, runs
    from core.config import TrainConfig
    from core.rundir import RunControl
    from core.train import finalize

    root = demo.generate(tmp_path / "shapes", per_class=20, size=32)
    split = data.make_split(data.scan(root), data.SplitSpec("counts", 10, 4, 6))
    data.save_split(split, name="shapes")
    config = finalize(
        TrainConfig(
            split="shapes", mode="scratch", model="small", image_size=32, epochs=1, augment_name="none"
        ),
        workspace,
    )
    run_id = runs.create_run(config.to_dict())
    path = rundir.run_dir(run_id)
    model = models.build_scratch("small", 32, len(split.classes))
    model.compile(optimizer="adam", loss=models.loss_for(len(split.classes)), metrics=["accuracy"])
    from core import cache

    train = cache.split_arrays(split, "train", (32, 32))
    model.fit(np.asarray(train.images, np.float32), np.asarray(train.labels), epochs=2, verbose=0)
    model.save(path / "best.keras")
    RunControl(path).update(state="done", pid=None, classes=split.classes)
    return run_id, split
