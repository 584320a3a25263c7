"""AppTest for the Augment page: side-by-side columns, seeds, sweep, save."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import augment
from tests.conftest import REPO

PAGE = str(REPO / "pages" / "augment.py")


def _image_urls(at: AppTest) -> list[str]:
    """The preview mosaics' media URLs (content-addressed: a new picture gets a new URL)."""
    return [el.proto.imgs[0].url for el in at.get("image")]


@pytest.fixture
def app(workspace) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["aug_source"] = "Demo dataset"
    at.run()
    assert not at.exception, at.exception
    return at


def test_changing_b_redraws_b_only(app):
    before = _image_urls(app)
    assert len(before) == 2  # columns A and B
    app.slider(key="aug_B_rotation_deg").set_value(90.0).run()
    assert not app.exception
    after = _image_urls(app)
    assert after[0] == before[0], "A changed although only B's setting moved"
    assert after[1] != before[1], "B did not change"
    code = [c.value for c in app.code if "RandomAffine" in c.value]
    assert any("rotation=90.0" in c for c in code)  # the new setting, shown as code


def test_same_settings_same_pictures_and_new_seeds_change_all(app):
    app.selectbox(key="aug_B_start").set_value("none").run()
    urls = _image_urls(app)
    assert urls[0] == urls[1]  # identical configs, images and seeds -> identical previews
    app.selectbox(key="aug_A_start").set_value("seed-000").run()
    app.selectbox(key="aug_B_start").set_value("seed-000").run()
    first = _image_urls(app)
    app.button(key="aug_reseed").click().run()
    second = _image_urls(app)
    assert first[0] != second[0] and first[1] != second[1]
    assert second[0] == second[1]


def test_start_from_preset_sets_widgets(app):
    app.selectbox(key="aug_A_start").set_value("seed-000").run()
    assert app.slider(key="aug_A_rotation_deg").value == 40.0
    assert app.slider(key="aug_A_shear_deg").value == pytest.approx(0.2)
    assert app.checkbox(key="aug_A_horizontal_flip").value is True
    assert any("shear_range in degrees" in c.value for c in app.caption)


def test_save_column_as_named_config(app, workspace):
    app.slider(key="aug_B_zoom").set_value(0.3)
    app.text_input(key="aug_B_save_name").set_value("zoomy").run()
    app.button(key="aug_B_save").click().run()
    assert not app.exception
    assert "zoomy" in augment.list_configs()
    assert augment.load_config("zoomy").zoom == pytest.approx(0.3)
    assert any("Saved 'zoomy'" in s.value for s in app.success)


def test_sweep_mode_one_column_per_value(app):
    app.radio(key="aug_mode").set_value("Sweep one setting").run()
    assert not app.exception
    assert len(_image_urls(app)) == 4  # rotation 0, 10, 20, 40
    app.text_input(key="sweep_values_rotation_deg").set_value("0, 200").run()
    assert any("rotation" in e.value for e in app.error)


def test_three_columns(app):
    app.radio(key="aug_columns").set_value(3).run()
    assert not app.exception
    assert len(_image_urls(app)) == 3
