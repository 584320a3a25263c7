"""AppTest for the Try it page: a picture in (upload, sample, camera), the answer out, large; presenter
mode and the run from the URL; friendly sentences for no model and unreadable pictures."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from streamlit.proto.LabelVisibility_pb2 import LabelVisibility
from streamlit.testing.v1 import AppTest

from core import rundir, runs
from core.fileio import read_json
from core.rundir import RunControl
from tests import imagefiles
from tests.conftest import write_status
from tests.pages.conftest import APP, open_page, plotly_values

COLLAPSED = LabelVisibility.LabelVisibilityOptions.COLLAPSED


def open_with_params(**params: str) -> AppTest:
    """The Try it page opened at /try_it?key=value..."""
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("../pages/try_it.py")
    at.query_params.update(params)
    return at.run()


def assert_answer(at: AppTest, classes: list[str]) -> None:
    """The answer, and nothing more: class in words, how sure, one bar per class, picture and overlay."""
    assert not at.exception, at.exception
    said = [t.value for t in at.title if t.value.startswith("It's")]
    assert len(said) == 1 and said[0].split()[-1] in classes, said
    assert any(s.value.endswith("% sure") for s in at.subheader)
    (chart,) = at.get("plotly_chart")
    (trace,) = json.loads(chart.proto.spec)["data"]
    assert list(trace["y"]) == classes
    assert abs(plotly_values(trace["x"]).sum() - 1) < 1e-3
    assert len(at.get("image")) >= 2
    captions = [c for el in at.get("image") for c in (i.caption for i in el.proto.imgs)]
    assert "Where the network looked" in captions
    assert any("warm colours show the parts of the picture" in m.value for m in at.markdown)


def test_upload_shows_class_bars_and_overlay(trained_run, tmp_path):
    _, split = trained_run
    at = open_page("try_it.py")
    assert not at.exception, at.exception
    assert at.selectbox(key="tryit_run").value == trained_run[0]
    assert at.query_params["run"] == trained_run[0]
    picture = imagefiles.noisy(tmp_path / "p.png", size=(48, 40)).read_bytes()
    at.file_uploader(key="tryit_upload").upload("p.png", picture, "image/png").run()
    assert_answer(at, split.classes)
    overlay = next(el for el in at.get("image") if el.proto.imgs[0].caption == "Where the network looked")
    assert overlay.proto.imgs[0].url


def test_sample_click_answers_and_stays_chosen(trained_run):
    _, split = trained_run
    at = open_page("try_it.py")
    at.radio(key="tryit_source").set_value("Sample pictures").run()
    assert not at.exception, at.exception
    assert not [t for t in at.title if t.value.startswith("It's")]  # nothing clicked yet
    buttons = [b for b in at.button if b.key and b.key.startswith("tryit_sample_")]
    assert 3 <= len(buttons) <= 6
    at.button(key="tryit_sample_1").click().run()
    assert_answer(at, split.classes)
    first = [t.value for t in at.title]
    at.toggle(key="tryit_present").set_value(True).run()  # a rerun: the clicked picture stays
    assert_answer(at, split.classes)
    assert [t.value for t in at.title] == first[1:]  # the page title goes in presenter mode


def test_camera_picture_answers(trained_run, tmp_path):
    _, split = trained_run
    at = open_page("try_it.py")
    at.radio(key="tryit_source").set_value("Camera").run()
    assert not at.exception, at.exception
    shot = imagefiles.noisy(tmp_path / "shot.jpg", size=(64, 48)).read_bytes()
    at.camera_input(key="tryit_camera").set_value(("shot.jpg", shot, "image/jpeg")).run()
    assert_answer(at, split.classes)


def test_no_model_yet_is_a_friendly_sentence_with_a_way_on(workspace):
    at = open_page("try_it.py")
    assert not at.exception, at.exception
    assert any("no trained model to try yet" in i.value for i in at.info)
    assert "Go to Train" in [el.proto.label for el in at.get("page_link")]
    assert not at.file_uploader


def test_a_model_still_training_is_a_friendly_sentence(trained_run):
    run_id, _ = trained_run
    write_status(rundir.run_dir(run_id), state="running", pid=None, heartbeat=time.time())
    at = open_page("try_it.py")
    assert not at.exception, at.exception
    assert any("still learning" in i.value for i in at.info)


@pytest.mark.parametrize(
    "make",
    [imagefiles.text_as_jpg, imagefiles.truncated_jpeg, imagefiles.zero_bytes, imagefiles.huge_header_png],
)
def test_unreadable_picture_is_a_friendly_sentence(trained_run, tmp_path, make):
    at = open_page("try_it.py")
    bad = make(tmp_path / "bad.png").read_bytes()
    at.file_uploader(key="tryit_upload").upload("bad.png", bad, "image/png").run()
    assert not at.exception, at.exception
    assert any("could not be read" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not [t for t in at.title if t.value.startswith("It's")]


def test_presenter_mode_from_the_url(trained_run):
    at = open_with_params(present="1")
    assert not at.exception, at.exception
    assert at.toggle(key="tryit_present").value is True
    assert "Try it" not in [t.value for t in at.title]
    css = " ".join(h.proto.body for h in at.get("html"))
    assert 'stSidebar"], [data-testid="stExpandSidebarButton"]' in css and "4.5rem" in css
    assert at.selectbox(key="tryit_run").label_visibility.value == COLLAPSED
    at.toggle(key="tryit_present").set_value(False).run()
    assert not at.exception, at.exception
    assert "present" not in at.query_params
    assert "Try it" in [t.value for t in at.title]
    assert "stSidebar" not in " ".join(h.proto.body for h in at.get("html"))
    at.toggle(key="tryit_present").set_value(True).run()
    assert at.query_params["present"] == "1"


def test_run_from_the_url_stays_chosen(trained_run):
    """Two finished runs: the newest by default; ?run= picks the other, and reruns keep it."""
    older, split = trained_run
    newer = runs.create_run(read_json(rundir.run_dir(older) / "config.json"))
    shutil.copy2(rundir.run_dir(older) / "best.keras", rundir.run_dir(newer) / "best.keras")
    RunControl(rundir.run_dir(newer)).update(state="done", pid=None, classes=split.classes)
    assert open_page("try_it.py").selectbox(key="tryit_run").value == newer
    at = open_with_params(run=older)
    assert at.selectbox(key="tryit_run").value == older
    at.radio(key="tryit_source").set_value("Sample pictures").run()
    at.toggle(key="tryit_present").set_value(True).run()
    assert at.selectbox(key="tryit_run").value == older
    assert at.query_params["run"] == older


def test_the_answer_reads_as_english():
    from dashboard.try_it import it_is

    assert it_is("star") == "It's a star"
    assert it_is("owl") == "It's an owl"
    assert it_is("cats") == "It's cats"
    assert it_is("glass") == "It's a glass"
