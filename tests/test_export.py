"""core.export: a run's model as .keras, SavedModel and TensorFlow Lite give the model's own outputs."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from core import export
from core.images import load_resized
from core.modelfile import load_model
from core.rundir import run_dir
from tests.conftest import COLORS_SIZE


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_export_keras_savedmodel_tflite(colors_run, workspace, tmp_path, colors):
    import tensorflow as tf

    x = np.stack(
        [
            load_resized(p, (COLORS_SIZE, COLORS_SIZE), "stretch")
            for p in sorted((colors / "test").rglob("*.png"))
        ]
    ).astype(np.float32)
    model = load_model(run_dir(colors_run, workspace) / "best.keras")
    expected = np.asarray(model(x, training=False))

    out = tmp_path / "export"
    keras_file = export.export_model(colors_run, "keras", out, workspace=workspace)
    assert keras_file == out / "run-1-best.keras"
    assert np.allclose(np.asarray(load_model(keras_file)(x, training=False)), expected, atol=1e-6)

    saved = export.export_model(colors_run, "savedmodel", out, workspace=workspace)
    assert saved.is_dir() and (saved / "saved_model.pb").exists()
    loaded = tf.saved_model.load(str(saved))  # keep a reference: its variables die with it
    served = loaded.serve(tf.constant(x))
    assert np.allclose(np.asarray(served), expected, atol=1e-5)
    assert export.export_model(colors_run, "savedmodel", out, workspace=workspace) == saved  # replaced
    name, data = export.export_bytes(colors_run, "savedmodel", workspace=workspace)  # for a download
    assert name == "run-1-best-savedmodel.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert "run-1-best-savedmodel/saved_model.pb" in z.namelist()

    try:
        lite = export.export_model(colors_run, "tflite", out, workspace=workspace)
    except export.ExportError as e:
        pytest.skip(f"TFLite converter unavailable here: {e}")
    interpreter = tf.lite.Interpreter(model_path=str(lite))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.allclose(got, expected, atol=1e-4)
    assert sorted(p.name for p in out.iterdir()) == [
        "run-1-best-savedmodel",
        "run-1-best.keras",
        "run-1-best.tflite",
    ]

    with pytest.raises(export.ExportError, match="unknown export format"):
        export.export_model(colors_run, "onnx", out, workspace=workspace)
