"""The safe server settings hold however the app is started: from another folder (where
.streamlit/config.toml is not read) Streamlit listens on every interface, and the app refuses."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from core import access
from tests.e2e.conftest import screenshot, streamlit_server


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    # Settings that a developer's shell or the AppTest suite (tests/pages/conftest.py) set must not
    # leak into the server: looked up now, since they may be set after this module was imported.
    for key in [k for k in os.environ if k.startswith("STREAMLIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv(access.ALLOW_REMOTE_VAR, raising=False)
    monkeypatch.setenv("CONVNET_WORKSPACE", str(tmp_path / "ws"))
    folder = tmp_path / "somewhere-else"
    folder.mkdir()
    return folder


def test_started_from_another_folder_it_refuses_to_serve_on_every_interface(page, elsewhere, tmp_path):
    with streamlit_server(tmp_path / "log.txt", cwd=elsewhere, args=()) as url:
        page.goto(url)
        expect(page.get_by_text("remote use is off")).to_be_visible()
        screenshot(page, "serving-refused")
        expect(page.get_by_text("Convnet Workbench")).to_have_count(0)  # the Home page never ran
    assert (
        "0.0.0.0" in (tmp_path / "log.txt").read_text() or "Network URL" in (tmp_path / "log.txt").read_text()
    )


def test_started_from_another_folder_on_loopback_it_serves(page, elsewhere, tmp_path):
    with streamlit_server(tmp_path / "log.txt", cwd=elsewhere) as url:
        page.goto(url)
        expect(page.get_by_role("heading", name="Convnet Workbench")).to_be_visible()
        expect(page.get_by_text("remote use is off")).to_have_count(0)
