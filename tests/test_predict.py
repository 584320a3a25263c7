"""core.predict: predictions for files; a file that is not a picture gets an error, not an exception."""

from __future__ import annotations

from core import modelfile, predict
from core.rundir import run_dir


def test_a_file_that_is_not_a_picture_gets_an_error(colors_run, workspace):
    path = run_dir(colors_run, workspace)
    preds = predict.predict_paths(modelfile.from_run(colors_run, workspace=workspace), [path / "config.json"])
    assert preds[0].error and preds[0].label is None
