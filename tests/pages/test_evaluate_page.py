"""AppTest for the Evaluate page: scores, confusion matrix, mistakes, CSV, predictions, export."""

from __future__ import annotations

import json

import numpy as np
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
