"""AppTest for the app entry and Home page: navigation, steps, workspace overview."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core import data
from core.data import SplitSpec
from dashboard import ui
from tests.conftest import REPO, make_class_folders

APP = str(REPO / "dashboard" / "app.py")


def test_app_opens_on_home_with_steps_and_workspace(workspace, tmp_path):
    root = make_class_folders(tmp_path / "pets", {"cat": 6, "dog": 6})
    data.save_split(data.make_split(data.scan(root), SplitSpec("counts", 3, 1, 1)), name="pets-3-1-1")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Convnet Workbench"
    text = "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)
    for step in ui.STEPS:
        assert step.title in text or step.available  # available steps are page links
        assert step.summary in text
    links = [el for el in at.get("page_link")]
    assert len(links) == sum(s.available for s in ui.STEPS)
    tables = [d.value for d in at.dataframe]
    assert any("pets-3-1-1" in list(t.get("name", [])) for t in tables)
    assert any("demo" in " ".join(map(str, t.get("name", []))) for t in tables)


def test_switching_to_data_page_through_navigation(workspace):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("../pages/data.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Data"
