"""core.tryit: one picture -> probabilities and a Grad-CAM overlay, the same numbers as Evaluate; the
sample pictures of a split."""

from __future__ import annotations

import numpy as np
import pytest

from core import modelfile, predict, tryit
from core.data import load_split
from core.images import ImageError
from tests import imagefiles


def test_answer_gives_evaluates_numbers_and_an_overlay(colors_run, colors):
    loaded = modelfile.from_run(colors_run)
    picture = colors / "test" / "red" / "red_0.png"
    answer = tryit.answer(loaded, picture.read_bytes())
    (predicted,) = predict.predict_sources(loaded, [("p", picture)])
    assert answer.classes == loaded.classes == ("blue", "red")
    assert answer.label == predicted.label == "red"
    assert answer.index == 1
    np.testing.assert_allclose(answer.probabilities, list(predicted.probabilities.values()), atol=1e-5)
    assert answer.probability == pytest.approx(predicted.probability, abs=1e-5)
    size = (tryit.DISPLAY_SIZE, tryit.DISPLAY_SIZE, 3)
    assert answer.picture.shape == answer.overlay.shape == size
    assert answer.picture.dtype == answer.overlay.dtype == np.uint8
    # The heatmap is added on top: never darker, and the colour map is never black.
    assert (answer.overlay >= answer.picture).all() and (answer.overlay != answer.picture).any()
    assert tryit.answer(loaded, picture).label == "red"  # a path works too


@pytest.mark.parametrize(
    "make", [imagefiles.text_as_jpg, imagefiles.truncated_jpeg, imagefiles.huge_header_png]
)
def test_an_unreadable_picture_is_an_image_error(colors_run, tmp_path, make):
    loaded = modelfile.from_run(colors_run)
    with pytest.raises(ImageError):
        tryit.answer(loaded, make(tmp_path / "bad.jpg").read_bytes())


def test_samples_take_each_class_in_turn(colors_run, workspace):
    split = load_split("colors", workspace)
    test = dict(split.subsets["test"])
    picked = tryit.sample_files(split, count=5)
    assert len(picked) == 5 and len(set(picked)) == 5
    assert [test[p] for p in picked] == [0, 1, 0, 1, 0]
    assert sorted(tryit.sample_files(split, count=100)) == sorted(test)
