"""core.modelfile: one loader for a run's model and for a model file, always in safe mode."""

from __future__ import annotations

import numpy as np
import pytest

from core import modelfile
from core.config import TrainConfig
from core.rundir import RunError, run_dir
from core.runs import create_run
from tests.conftest import COLORS_SIZE


def test_run_model_has_the_runs_classes_size_and_policy(colors_run, workspace):
    loaded = modelfile.from_run(colors_run, workspace=workspace)
    assert loaded.classes == ("blue", "red")  # the split's, since the run's status names none
    assert (loaded.input_size, loaded.resize_policy) == (COLORS_SIZE, "stretch")
    assert (loaded.run_id, loaded.which, loaded.split) == (colors_run, "best", "colors")
    best = run_dir(colors_run, workspace) / "best.keras"
    assert loaded.key == f"{best}:{best.stat().st_mtime_ns}"
    assert loaded.model.input_shape == (None, COLORS_SIZE, COLORS_SIZE, 3)
    with pytest.raises(AttributeError):
        loaded.classes = ("x",)  # frozen

    best.rename(best.with_name("last.keras"))
    assert modelfile.from_run(colors_run, workspace=workspace).which == "last"


def test_runs_with_model_lists_only_runs_that_saved_one(colors_run, workspace):
    empty = create_run(
        TrainConfig(split="colors", image_size=COLORS_SIZE).to_dict(), workspace, run_id="run-0"
    )
    assert [r["id"] for r in modelfile.runs_with_model(workspace)] == [colors_run]
    with pytest.raises(RunError, match="no saved model"):
        modelfile.from_run(empty, workspace=workspace)


def test_uploaded_file_gets_size_from_input_and_classes_from_output(colors_model, workspace):
    data = colors_model.read_bytes()
    loaded = modelfile.from_bytes(data, "mine.keras", workspace=workspace)
    assert loaded.classes == ("class 0", "class 1")  # one sigmoid unit: two classes
    assert (loaded.input_size, loaded.resize_policy, loaded.run_id) == (COLORS_SIZE, "stretch", None)
    assert loaded.source == "mine.keras" and loaded.key.startswith("sha256:")
    assert not [p for p in (workspace / "uploads").iterdir()]  # the temporary file is gone

    named = modelfile.from_file(colors_model, classes=["blue", "red"])
    assert named.classes == ("blue", "red")
    x = np.zeros((1, COLORS_SIZE, COLORS_SIZE, 3), np.float32)
    assert np.allclose(named.model(x), loaded.model(x))
    with pytest.raises(modelfile.ModelFileError, match="predicts 2 classes, not 3"):
        modelfile.from_file(colors_model, classes=["a", "b", "c"])


def test_file_with_a_lambda_layer_is_refused_and_its_code_never_runs(tmp_path, workspace):
    import keras

    marker = tmp_path / "code-ran"
    inputs = keras.Input((8, 8, 3))
    touched = keras.layers.Lambda(lambda x, m=str(marker): (open(m, "w").close(), x)[1])(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(touched))
    path = tmp_path / "evil.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink(missing_ok=True)  # building the model ran the lambda once
    with pytest.raises(modelfile.ModelFileError, match="Could not load evil.keras: it carries Python code"):
        modelfile.from_file(path)
    with pytest.raises(modelfile.ModelFileError, match="never runs code"):
        modelfile.from_bytes(path.read_bytes(), "evil.keras", workspace=workspace)
    assert not marker.exists()


def test_non_model_files_and_odd_inputs_are_clear_errors(tmp_path, workspace):
    import keras

    with pytest.raises(modelfile.ModelFileError, match="^Could not load m.keras: "):
        modelfile.from_bytes(b"PK not a model", "m.keras", workspace=workspace)
    with pytest.raises(modelfile.ModelFileError, match="no such file"):
        modelfile.from_file(tmp_path / "nowhere.keras")
    inputs = keras.Input((8, 6, 3))
    path = tmp_path / "wide.keras"
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs))).save(path)
    with pytest.raises(modelfile.ModelFileError, match="square RGB"):
        modelfile.from_file(path)


def test_load_model_always_refuses_code(tmp_path):
    """The one model loader has no switch for safe mode, and a Lambda layer is refused."""
    import inspect

    import keras

    assert "safe_mode" not in inspect.signature(modelfile.load_model).parameters
    inputs = keras.Input((8,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(tmp_path / "code.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        modelfile.load_model(tmp_path / "code.keras")
