"""AppTest for the Evaluate page: scores, confusion matrix, mistakes, CSV, predictions, export."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from tests import imagefiles
from tests.pages.conftest import open_page, plotly_values


def test_score_shows_metrics_confusion_and_mistakes(trained_run):
    run_id, split = trained_run
    at = open_page("evaluate.py")
    assert not at.exception, at.exception
    at.button(key="eval_go").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test pictures"] == str(6 * len(split.classes))
    heatmap = next(
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["data"][0]["type"] == "heatmap"
    )
    z = plotly_values(heatmap["data"][0]["z"])
    assert z.sum() == 6 * len(split.classes) and z.shape == (len(split.classes),) * 2
    wrong = int(metrics["Wrong"])
    assert wrong == z.sum() - np.trace(z)
    accuracy = float(metrics["Test accuracy"].rstrip("%")) / 100
    assert accuracy == pytest.approx(np.trace(z) / z.sum(), abs=0.001)
    assert len(at.get("image")) == min(wrong, 12)  # the mistakes gallery
    assert at.get("download_button")

    at2 = open_page("evaluate.py")  # reopening reads the cached result: no button needed
    assert {m.label: m.value for m in at2.metric}["Test accuracy"] == metrics["Test accuracy"]


def test_predict_uploads_with_probabilities_and_bad_files(trained_run, tmp_path):
    at = open_page("evaluate.py")
    good = imagefiles.noisy(tmp_path / "x.png", size=(40, 40)).read_bytes()
    at.file_uploader(key="predict_upload").upload("x.png", good, "image/png")
    at.file_uploader(key="predict_upload").upload("broken.jpg", b"not an image", "image/jpeg").run()
    assert not at.exception, at.exception
    assert any("broken.jpg" in e.value and "not an image" in e.value for e in at.error)
    bars = [
        json.loads(c.proto.spec)
        for c in at.get("plotly_chart")
        if json.loads(c.proto.spec)["data"][0].get("orientation") == "h"
    ]
    assert len(bars) == 1 and plotly_values(bars[0]["data"][0]["x"]).sum() == pytest.approx(1.0, abs=1e-5)


def test_export_keras_offers_a_download(trained_run):
    at = open_page("evaluate.py")
    at.button(key="export_go").click().run()
    assert not at.exception, at.exception
    assert any(".keras" in str(b.proto.label) for b in at.get("download_button"))


def test_the_run_report_is_offered_once_scored(trained_run):
    run_id, _ = trained_run
    at = open_page("evaluate.py")
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "report_go"]  # nothing to report before scoring
    at.button(key="eval_go").click().run()
    at.button(key="report_go").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    download = next(b for b in at.get("download_button") if "report" in b.proto.label)
    assert download.proto.label.startswith("Download the report (")
    assert "MB)" in download.proto.label


def _map_chart(at) -> tuple[dict, pd.DataFrame] | None:
    """The map's Vega-Lite spec and its points (one row per picture), or None."""
    import pyarrow as pa

    for c in at.get("vega_lite_chart"):
        spec = json.loads(c.proto.spec)
        if spec.get("title") == "Map of what the network sees":
            raw = c.proto.datasets[0].data.data if c.proto.datasets else c.proto.data.data
            return spec, pa.ipc.open_stream(raw).read_pandas()
    return None


def test_map_is_drawn_once_and_a_click_shows_the_picture(trained_run, monkeypatch):
    from core import embedding
    from dashboard.data_map import chart_key

    run_id, split = trained_run
    at = open_page("evaluate.py")
    assert not at.exception, at.exception
    assert not any(b.key == "map_go" for b in at.button)  # closed: nothing read or computed
    at = open_page("evaluate.py", map_open=True)
    assert not at.exception, at.exception
    assert _map_chart(at) is None  # nothing drawn yet: a sentence and a button
    assert any("Drawing the map of 24 pictures takes about" in c.value for c in at.caption)
    at.button(key="map_go").click().run()
    assert not at.exception, at.exception
    spec, points = _map_chart(at)
    assert sorted(points["index"]) == list(range(24))  # every test picture once
    assert set(points["truth"]) <= set(split.classes) and set(points["outcome"]) <= {"right", "wrong"}
    assert spec["encoding"]["color"]["scale"]["domain"] == split.classes
    assert "image" in spec["mark"]["tooltip"]["expr"]  # vega-tooltip draws the field `image`
    assert all(uri.startswith("data:image/png;base64,") for uri in points["image"])
    assert any("24 pictures" in c.value and "drawn in" in c.value for c in at.caption)

    # A click on a point: its picture, where the network looked, the truth and the answer.
    found = embedding.cached_map(run_id)
    wrong = [i for i in range(24) if not found.right[i]] or [0]
    i = wrong[0]
    at.session_state[chart_key(run_id, "best", "test")] = {"selection": {"picked": [{"index": i}]}}
    at.run()
    assert not at.exception, at.exception
    said = found.classes[found.predicted[i]]
    assert any(
        f"really **{found.classes[found.labels[i]]}**" in m.value and said in m.value for m in at.markdown
    )
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert any("Where the network looked" in c for c in captions)

    # The clicked picture can be marked for the cleaning loop, like Evaluate's mistakes.
    from core import marks as pending_marks

    at.selectbox(key=f"map_mark_{found.paths[i]}").set_value("Leave out").run()
    assert not at.exception, at.exception
    assert list(pending_marks.pending("shapes")) == [found.paths[i]]
    assert pending_marks.pending("shapes")[found.paths[i]].action == "drop"

    # A second visit reads the stored map: nothing is computed again.
    def must_not_run(*args, **kwargs):
        raise AssertionError("the map was computed again")

    monkeypatch.setattr(embedding, "features", must_not_run)
    monkeypatch.setattr(embedding, "project", must_not_run)
    again = open_page("evaluate.py", map_open=True)
    assert not again.exception, again.exception
    assert _map_chart(again) is not None
    assert all(b.key != "map_go" for b in again.button)


def test_export_tflite_is_checked_on_test_pictures_before_the_download(trained_run):
    at = open_page("evaluate.py")
    at.radio(key="export_format").set_value("tflite").run()
    at.button(key="export_go").click().run()
    assert not at.exception, at.exception
    assert any(".tflite" in str(b.proto.label) for b in at.get("download_button"))
    (note,) = [s.value for s in at.success if s.value.startswith("Checked on")]
    assert re.fullmatch(
        r"Checked on 24 test pictures: same answer on all, largest difference (0\.000\d\d|under 0\.00001)",
        note,
    )


def test_a_broken_export_is_not_offered(trained_run, monkeypatch):
    import keras

    from core import export

    def other_weights(model, folder):
        keras.utils.set_random_seed(7)
        keras.models.clone_model(model).export(str(folder), format="tf_saved_model", verbose=False)

    monkeypatch.setattr(export, "write_savedmodel", other_weights)
    at = open_page("evaluate.py")
    at.radio(key="export_format").set_value("savedmodel").run()
    at.button(key="export_go").click().run()
    assert not at.exception, at.exception
    assert any("SavedModel does not behave like the model, so it was not kept" in e.value for e in at.error)
    assert not at.get("download_button")


RED_ODD, BLUE_ODD = "test/red/red_odd.png", "test/blue/blue_odd.png"  # see tests/conftest.colors


def test_mark_two_mistakes_and_save_a_cleaned_split(colors_run, workspace, colors):
    from core import data, marks
    from core.data import cleaning

    original = data.split_path("colors", workspace).read_bytes()
    at = open_page("evaluate.py")
    at.button(key="eval_go").click().run()
    assert not at.exception, at.exception
    confused = at.dataframe(key="eval_confused").value  # the most-confused pairs, most first
    assert confused["pictures"].sum() == int({m.label: m.value for m in at.metric}["Wrong"])
    assert list(confused["pictures"]) == sorted(confused["pictures"], reverse=True)
    assert {("red", "blue"), ("blue", "red")} <= set(zip(confused["labelled"], confused["model says"]))
    red_key, blue_key = (f"mark:mistakes:colors:{f}" for f in (RED_ODD, BLUE_ODD))
    assert at.selectbox(key=red_key).options == ["Keep", "Label is wrong → blue", "Leave out"]
    assert at.selectbox(key=red_key).value == "Keep"
    at.selectbox(key=red_key).set_value("Label is wrong → blue").run()
    at.selectbox(key=blue_key).set_value("Leave out").run()
    assert not at.exception, at.exception
    assert set(marks.pending("colors", workspace)) == {RED_ODD, BLUE_ODD}  # on disk at once
    table = next(d.value for d in at.dataframe if "picture" in d.value.columns)  # the marked pictures
    assert table.to_dict("records") == [
        {"picture": RED_ODD, "set": "test", "labelled": "red", "change": "relabel as blue"},
        {"picture": BLUE_ODD, "set": "test", "labelled": "blue", "change": "leave out"},
    ]

    again = open_page("evaluate.py")  # a reload keeps the marks
    assert again.selectbox(key=red_key).value == "Label is wrong → blue"
    assert again.selectbox(key=blue_key).value == "Leave out"
    assert again.text_input(key="marks_name:colors:0").value == "colors-clean-1"
    again.button(key="marks_save").click().run()
    assert not again.exception, again.exception
    assert any("Saved split 'colors-clean-1' (1 relabelled, 1 left out)" in s.value for s in again.success)
    assert again.selectbox(key=red_key).value == "Keep"  # the marks went into the new version
    assert marks.pending("colors", workspace) == {}
    assert data.split_path("colors", workspace).read_bytes() == original
    new = data.load_split("colors-clean-1", workspace)
    assert BLUE_ODD not in new.all_files()
    assert (RED_ODD, new.classes.index("blue")) in new.subsets["test"]
    assert len(new.all_files()) == len(data.load_split("colors", workspace).all_files()) - 1
    assert cleaning.read_record("colors-clean-1", workspace).derived_from == "colors"

    train = open_page("train.py")
    assert (
        "colors-clean-1 (cleaned from colors: 1 relabelled, 1 left out)"
        in train.selectbox(key="train_split").options
    )


def test_picking_a_confused_pair_shows_only_its_pictures(colors_run, workspace):
    at = open_page("evaluate.py")
    at.button(key="eval_go").click().run()
    table = at.dataframe(key="eval_confused").value
    row = table.index[(table["labelled"] == "red") & (table["model says"] == "blue")][0]
    at.session_state["eval_confused"] = {"selection": {"rows": [int(row)], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    captions = [i.proto.imgs[0].caption for i in at.get("image")]
    assert captions and all(c.startswith("labelled red, model says blue") for c in captions)
    assert len(captions) == int(table.loc[row, "pictures"])
