"""AppTest for the Explain page: heatmaps for uploads, layer and method choice, activations, bad files."""

from __future__ import annotations

from tests import imagefiles
from tests.pages.conftest import open_page


def test_upload_shows_heatmap_overlay_and_activations(trained_run, tmp_path):
    at = open_page("explain.py")
    assert not at.exception, at.exception
    picture = imagefiles.noisy(tmp_path / "p.png", size=(48, 40)).read_bytes()
    at.file_uploader(key="explain_upload").upload("p.png", picture, "image/png").run()
    assert not at.exception, at.exception
    images = at.get("image")
    assert len(images) >= 4  # picture, heatmap, overlay, activation grid
    assert any("the network says" in m.value for m in at.markdown)
    first_overlay = [el.proto.imgs[0].url for el in at.get("image")][2]
    layers = at.selectbox(key="explain_layer").options
    assert len(layers) >= 2
    at.selectbox(key="explain_layer").set_value(layers[0]).run()
    assert not at.exception, at.exception
    assert [el.proto.imgs[0].url for el in at.get("image")][2] != first_overlay  # another layer, another map
    for method in ("Grad-CAM++", "Score-CAM"):
        at.selectbox(key="explain_method").set_value(method).run()
        assert not at.exception, at.exception
    assert at.get("download_button")


def test_bad_picture_and_bad_model_file_are_messages(trained_run, tmp_path):
    at = open_page("explain.py")
    at.file_uploader(key="explain_upload").upload("x.jpg", b"not a picture", "image/jpeg").run()
    assert not at.exception
    assert any("x.jpg" in e.value for e in at.error)
    at.radio(key="explain_model_source").set_value("A model file").run()
    at.file_uploader(key="explain_model_upload").upload(
        "m.keras", b"PK not a model", "application/octet-stream"
    ).run()
    assert not at.exception, at.exception
    assert any("Could not load m.keras" in e.value for e in at.error)


def test_heatmaps_are_kept_across_reruns(trained_run, tmp_path, monkeypatch):
    """Moving the opacity slider re-blends the kept heatmap: Score-CAM is not run again."""
    import streamlit as st

    from core import explain

    st.cache_data.clear()
    calls = []
    scorecam = explain.METHODS["Score-CAM"]
    monkeypatch.setitem(
        explain.METHODS, "Score-CAM", lambda *a, **k: calls.append(k["layer"]) or scorecam(*a, **k)
    )
    at = open_page("explain.py", explain_method="Score-CAM")
    picture = imagefiles.noisy(tmp_path / "p.png", size=(48, 40)).read_bytes()
    at.file_uploader(key="explain_upload").upload("p.png", picture, "image/png").run()
    assert not at.exception, at.exception
    assert len(calls) == 1
    overlay = [el.proto.imgs[0].url for el in at.get("image")][2]
    at.slider(key="explain_alpha").set_value(0.9).run()
    assert not at.exception, at.exception
    assert len(calls) == 1  # same picture, method, layer and class: the kept map
    assert [el.proto.imgs[0].url for el in at.get("image")][2] != overlay  # but re-blended
    layers = at.selectbox(key="explain_layer").options
    at.selectbox(key="explain_layer").set_value(layers[0]).run()
    assert len(calls) == 2 and calls[-1] == layers[0]


def test_model_files_load_in_safe_mode_with_no_control_to_turn_it_off(trained_run, tmp_path):
    """A .keras file whose Lambda layer would run code on load is refused, and nothing ran."""
    import keras

    marker = tmp_path / "code-ran"
    inputs = keras.Input((32, 32, 3))
    touched = keras.layers.Lambda(lambda x, m=str(marker): (open(m, "w").close(), x)[1])(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(touched))
    model_file = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(model_file)
    marker.unlink(missing_ok=True)  # building the model above ran the lambda once

    at = open_page("explain.py")
    at.radio(key="explain_model_source").set_value("A model file").run()
    assert not at.exception, at.exception
    assert not at.checkbox and not at.toggle  # no page control can turn safe mode off
    at.file_uploader(key="explain_model_upload").upload(
        "evil.keras", model_file.read_bytes(), "application/octet-stream"
    ).run()
    assert not at.exception, at.exception
    assert any("never runs code" in e.value for e in at.error), [e.value for e in at.error]
    assert not marker.exists()


def test_test_pictures_come_from_the_runs_split(trained_run):
    run_id, split = trained_run
    at = open_page("explain.py")
    at.radio(key="explain_source").set_value("Test pictures").run()
    assert not at.exception, at.exception
    assert at.multiselect(key="explain_test_files").options == split.files("test")
    assert any("the network says" in m.value for m in at.markdown)
    at.radio(key="explain_source").set_value("Biggest mistakes").run()
    assert not at.exception, at.exception
    assert any("Evaluate page first" in i.value for i in at.info)
