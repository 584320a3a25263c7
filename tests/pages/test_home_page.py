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
    captions = [c.value for c in at.caption]
    markdown = [m.value for m in at.markdown]
    links = [el.proto.label for el in at.get("page_link")]
    for i, step in enumerate(ui.STEPS, start=1):
        assert step.summary in captions
        if step.available:  # a link to its page
            assert f"**{i}. {step.title}**" in links
        else:
            assert f"**{i}. {step.title}** · _coming soon_" in markdown
    assert len(links) == sum(s.available for s in ui.STEPS)
    tables = [d.value for d in at.dataframe]
    assert any("pets-3-1-1" in list(t.get("name", [])) for t in tables)
    assert any("demo" in " ".join(map(str, t.get("name", []))) for t in tables)
    assert "None yet: start one on the Train page." in [i.value for i in at.info]


def test_home_lists_runs_with_their_state(workspace):
    from core import runs

    run_id = runs.create_run({"mode": "scratch", "model": "compact", "split": "s"}, workspace)
    runs.set_meta(run_id, workspace, name="my first run")
    at = AppTest.from_file(APP, default_timeout=60).run()
    [table] = [d.value for d in at.dataframe if "run" in d.value.columns]
    assert list(table["run"]) == ["my first run"] and list(table["network"]) == ["compact"]
    assert table["state"][0] == runs.status(run_id, workspace)["state"]


def test_switching_to_data_page_through_navigation(workspace):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("../pages/data.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Data"
