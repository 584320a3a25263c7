"""Browser fixtures: the real app on a free local port, driven by Debian's headless Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test in this folder e2e (a pytestmark here would apply to nothing: pytest reads
    it from test modules only), so `-m "not e2e"` leaves the browser tests out."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def e2e_workspace(tmp_path_factory) -> Path:
    """The workspace the app under test uses (empty at the start of the session)."""
    return tmp_path_factory.mktemp("e2e-workspace")


QUICK_DEMO_SPLIT = "e2e-quick-demo"


@pytest.fixture(scope="session")
def quick_demo_run(e2e_workspace) -> str:
    """A run holding the quick demo's net (compact, 32 px, Adam with a cosine decay), trained here
    on 400 demo shapes per class (~20 s), so screenshots show a model that is mostly right; trained
    once per session for every flow that needs a finished run."""
    import keras
    import numpy as np

    from core import cache, data, demo, models, rundir, runs
    from core.config import QUICK_DEMO, TrainConfig
    from core.rundir import RunControl
    from core.train import finalize

    workspace = e2e_workspace
    root = demo.ensure_demo(workspace)
    if QUICK_DEMO_SPLIT not in data.list_splits(workspace):
        split = data.make_split(data.scan(root), data.SplitSpec("counts", 400, 20, 20))
        data.save_split(split, name=QUICK_DEMO_SPLIT, workspace=workspace)
    split = data.load_split(QUICK_DEMO_SPLIT, workspace)
    config = finalize(TrainConfig(**{**QUICK_DEMO, "split": QUICK_DEMO_SPLIT}), workspace)
    run_id = runs.create_run(config.to_dict(), workspace)
    size, batch = config.image_size, config.batch_size
    train = cache.split_arrays(split, "train", (size, size), workspace=workspace)
    steps = config.epochs * -(-len(train.labels) // batch)
    keras.utils.set_random_seed(0)
    model = models.build_scratch(config.model, size, len(split.classes))
    lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=models.loss_for(len(split.classes)))
    x, y = np.asarray(train.images, np.float32), np.asarray(train.labels)
    model.fit(x, y, epochs=config.epochs, batch_size=batch, verbose=0)
    path = rundir.run_dir(run_id, workspace)
    model.save(path / "best.keras")
    RunControl(path).update(state="done", pid=None, classes=split.classes)
    return run_id


@contextlib.contextmanager
def streamlit_server(
    log_path: Path, cwd: Path = REPO, args: tuple[str, ...] = ("--server.address", "127.0.0.1"), env=None
) -> Iterator[str]:
    """`streamlit run <repo>/dashboard/app.py` from `cwd` on a free port; yields its local URL."""
    port = _free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "dashboard" / "app.py"),
            "--server.port",
            str(port),
            *args,
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early; see {log.name}")
        else:
            raise RuntimeError("streamlit did not become healthy within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory, e2e_workspace) -> Iterator[str]:
    """The app on a free local port with an empty workspace, for the whole session."""
    log = tmp_path_factory.mktemp("e2e-log") / "streamlit.log"
    with streamlit_server(log, env={"CONVNET_WORKSPACE": str(e2e_workspace)}) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # first visits generate the demo and import TensorFlow

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ (kept by CI, ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )
