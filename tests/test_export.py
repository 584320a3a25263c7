"""core.export and core.export_check: a run's model as .keras, SavedModel and TensorFlow Lite, each
run on the run's pictures before it is offered; a broken export is refused and leaves nothing."""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pytest

from core import export, export_check
from core.images import load_resized
from core.modelfile import load_model
from core.rundir import run_dir
from tests.conftest import COLORS_SIZE, MOBILENET_025


def colors_pictures(colors, size: int = COLORS_SIZE) -> np.ndarray:
    return np.stack(
        [load_resized(p, (size, size), "stretch") for p in sorted((colors / "test").rglob("*.png"))]
    ).astype(np.float32)


def add_run(workspace, run_id: str, model, size: int) -> str:
    """A run over the saved split 'colors' (made by colors_run) with `model` as its best.keras."""
    from core.config import TrainConfig
    from core.runs import create_run

    create_run(TrainConfig(split="colors", image_size=size, epochs=1).to_dict(), workspace, run_id=run_id)
    model.save(run_dir(run_id, workspace) / "best.keras")
    return run_id


def fit_on_colors(model, colors, size: int, epochs: int = 3):
    """Train `model` briefly on the colors' training pictures (blue 0, red 1)."""
    files = sorted((colors / "train").rglob("*.png"))
    x = np.stack([load_resized(p, (size, size), "stretch") for p in files]).astype(np.float32)
    y = np.array([int(p.parent.name == "red") for p in files])
    model.fit(x, y, epochs=epochs, batch_size=4, verbose=0)
    return model


def test_export_keras_savedmodel_tflite(colors_run, workspace, tmp_path, colors):
    import tensorflow as tf

    x = colors_pictures(colors)
    model = load_model(run_dir(colors_run, workspace) / "best.keras")
    expected = np.asarray(model(x, training=False))

    out = tmp_path / "export"
    done = export.export_model(colors_run, "keras", out, workspace=workspace)
    assert done.path == out / "run-1-best.keras" and done.check is None  # a copy of the file itself
    assert np.allclose(np.asarray(load_model(done.path)(x, training=False)), expected, atol=1e-6)

    done = export.export_model(colors_run, "savedmodel", out, workspace=workspace)
    saved = done.path
    assert saved.is_dir() and (saved / "saved_model.pb").exists()
    loaded = tf.saved_model.load(str(saved))  # keep a reference: its variables die with it
    assert np.allclose(np.asarray(loaded.serve(tf.constant(x))), expected, atol=1e-5)
    check = done.check
    assert (check.format, check.n, check.same_class, check.passed) == ("savedmodel", 24, True, True)
    assert 0 <= check.max_abs_diff <= export_check.TOLERANCE
    # 8 test pictures are too few: validation (4) and training (12) pictures make up 24
    assert check.message.startswith(
        "Checked on 24 test, validation and training pictures: same answer on all"
    )
    assert export.export_model(colors_run, "savedmodel", out, workspace=workspace).path == saved  # replaced
    download = export.export_bytes(colors_run, "savedmodel", workspace=workspace)  # for a download
    assert download.name == "run-1-best-savedmodel.zip" and download.check.passed
    with zipfile.ZipFile(io.BytesIO(download.data)) as z:
        assert "run-1-best-savedmodel/saved_model.pb" in z.namelist()

    done = export.export_model(colors_run, "tflite", out, workspace=workspace)
    assert done.check.passed and done.check.n == 24 and done.check.format == "tflite"
    got = export_check.tflite_probabilities(done.path, x)
    assert np.allclose(got[:, 1:], expected, atol=1e-4)
    assert sorted(p.name for p in out.iterdir()) == [
        "run-1-best-savedmodel",
        "run-1-best.keras",
        "run-1-best.tflite",
    ]

    with pytest.raises(export.ExportError, match="unknown export format"):
        export.export_model(colors_run, "onnx", out, workspace=workspace)


def test_mobilenet_based_model_passes_both_checks(colors_run, workspace, tmp_path, colors):
    """MobileNet 0.25 (ImageNet weights when ../shared has them; random on a fresh clone) + a trained head."""
    import keras

    from core import models

    keras.utils.set_random_seed(0)
    weights = str(MOBILENET_025) if MOBILENET_025.is_file() else None
    model = models.build_transfer("mobilenet_0.25", 32, 2, weights=weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    add_run(workspace, "mobile", fit_on_colors(model, colors, 32, epochs=2), 32)
    for fmt in ("savedmodel", "tflite"):
        check = export.export_model("mobile", fmt, tmp_path, workspace=workspace).check
        assert check.passed and check.same_class and check.n == 24, check
        assert check.max_abs_diff <= 1e-3


def test_bfloat16_model_exports_in_float32_and_says_how_far_its_own_answers_are(
    colors_run, workspace, tmp_path, colors
):
    import keras

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model = keras.Sequential(
            [
                keras.Input((COLORS_SIZE, COLORS_SIZE, 3)),
                keras.layers.Rescaling(1 / 255),
                keras.layers.Conv2D(8, 3, activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(1, activation="sigmoid", dtype="float32"),
            ]
        )
        model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
        add_run(workspace, "bf16", fit_on_colors(model, colors, COLORS_SIZE), COLORS_SIZE)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    as_float32, policy = export.float32_model(load_model(run_dir("bf16", workspace) / "best.keras"))
    assert policy == "mixed_bfloat16"
    assert {layer.dtype_policy.name for layer in as_float32.layers} == {"float32"}
    # TFLite has no bfloat16 kernels: a bfloat16 graph does not even convert, the float32 one passes
    done = export.export_model("bf16", "tflite", tmp_path, workspace=workspace)
    assert done.check.passed and done.check.max_abs_diff <= 1e-3
    assert "trained in bfloat16" in done.check.message
    assert "the workbench's own rounded answers differ from it by up to" in done.check.message


def broken_savedmodel(model, folder):
    """The export step writing a model with other (freshly initialised) weights."""
    import keras

    keras.utils.set_random_seed(123)
    keras.models.clone_model(model).export(str(folder), format="tf_saved_model", verbose=False)


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite"])
def test_an_export_that_answers_otherwise_is_refused_and_leaves_nothing(
    colors_run, workspace, tmp_path, monkeypatch, fmt
):
    out = tmp_path / "out"
    good = export.export_model(colors_run, fmt, out, workspace=workspace).path
    before = sorted(p.name for p in out.rglob("*"))
    stamp = good.stat().st_mtime_ns
    monkeypatch.setattr(export, "write_savedmodel", broken_savedmodel)
    with pytest.raises(export.ExportError, match=r"does not behave like the model, so it was not kept") as e:
        export.export_model(colors_run, fmt, out, workspace=workspace)
    assert "checked on 24 test, validation and training pictures" in str(e.value)
    assert "largest difference in a probability is" in str(e.value) and "(allowed: 0.001)" in str(e.value)
    assert sorted(p.name for p in out.rglob("*")) == before  # no temporary leftovers
    assert good.stat().st_mtime_ns == stamp  # the earlier good export is untouched
    with pytest.raises(export.ExportError):
        export.export_bytes(colors_run, fmt, workspace=workspace)


def test_check_pictures_fall_back_to_noise_when_the_split_is_gone(colors_run, workspace):
    from core import modelfile

    loaded = modelfile.from_run(colors_run, workspace=workspace)
    images, what = export_check.check_pictures(loaded, workspace)
    assert images.shape == (24, COLORS_SIZE, COLORS_SIZE, 3) and images.dtype == np.uint8
    assert what == "test, validation and training pictures"
    shutil.rmtree(workspace / "splits")
    images, what = export_check.check_pictures(loaded, workspace)
    assert len(images) == export_check.MIN_PICTURES and "random noise" in what


def test_compare_reports_a_different_class_and_the_largest_difference():
    reference = np.array([[0.9, 0.1], [0.4, 0.6]])
    check = export_check.compare("tflite", reference, np.array([[0.9, 0.1], [0.6, 0.4]]), "test pictures")
    assert (check.n, check.same_class, check.passed) == (2, False, False)
    assert check.max_abs_diff == pytest.approx(0.2)
    assert "1 of 2 answers differ" in check.message and "0.200" in check.message
    near = export_check.compare("savedmodel", reference, reference + 2e-5, "test pictures")
    assert (
        near.passed
        and near.message == "Checked on 2 test pictures: same answer on all, largest difference 0.00002"
    )
    same = export_check.compare("tflite", reference, reference.copy(), "test pictures")
    assert same.message.endswith("largest difference under 0.00001") and same.max_abs_diff == 0.0
