"""Tests for core.explain: layer paths, activations, channel grids, Grad-CAM, Grad-CAM++, Score-CAM.

Every explainer test runs in float32, in mixed precision (mixed_bfloat16) and on a model that went
through a .keras save -> load round trip. The slow test trains a net on the demo shapes and checks
that Grad-CAM points at the objects.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import explain as E  # noqa: E402
from core import modelfile  # noqa: E402
from core import models as M  # noqa: E402
from core.images import load_resized  # noqa: E402
from tests.conftest import MOBILENET_025, REPO  # noqa: E402

VARIANTS = ("float32", "mixed_bfloat16", "keras_file")


def _image(size: int, seed: int = 0, shape: str = "square") -> np.ndarray:
    """A uint8 (size, size, 3) test image: a bright shape on a dark noisy background."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
    a, b = size // 4 + seed % 3, size // 2 + size // 8 + seed % 3
    if shape == "square":
        img[a:b, a:b] = (230, 200, 40)
    else:
        yy, xx = np.mgrid[:size, :size]
        img[(yy - a) ** 2 + (xx - b) ** 2 < (size // 6) ** 2] = (40, 200, 230)
    return img


def _images(n: int, size: int) -> np.ndarray:
    return np.stack([_image(size, i, "square" if i % 2 == 0 else "disc") for i in range(n)])


def _build(variant: str, make, tmp_path):
    """make() in float32 or mixed_bfloat16; "keras_file" saves and loads the float32 model."""
    if variant == "mixed_bfloat16":
        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
        try:
            keras.utils.set_random_seed(0)
            return make()
        finally:
            keras.mixed_precision.set_dtype_policy(previous)
    keras.utils.set_random_seed(0)
    model = make()
    if variant == "keras_file":
        path = tmp_path / "model.keras"
        model.save(path)
        return modelfile.load_model(path)
    return model


def _check_maps(maps: np.ndarray, shape: tuple[int, ...]) -> None:
    assert maps.shape == shape and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    for m in maps:
        assert m.max() == pytest.approx(1.0) and m.std() > 1e-3  # normalised, not constant


def _small(num_classes: int = 2):
    return M.build_scratch("small", 32, num_classes)


def _transfer(num_classes: int = 2):
    weights = str(MOBILENET_025) if MOBILENET_025.is_file() else None
    return M.build_transfer("mobilenet_0.25", 96, num_classes, weights=weights, units=32)


# --------------------------------------------------------------------------------------------------
# Layer paths and info


def test_layer_paths_flat_and_nested():
    small = _small()
    assert E.conv_layers(small) == ["conv1", "pool1", "conv2", "pool2", "last_conv"]
    assert E.default_layer(small) == "last_conv"
    transfer = _transfer()
    paths = E.conv_layers(transfer)
    assert paths[0] == "base/conv1" and paths[-1] == "base/conv_pw_13_relu" == E.default_layer(transfer)
    assert all(p.startswith("base/") for p in paths)
    assert E.find_layer(transfer, "base/conv_pw_13_relu") is M.last_conv_layer(transfer)
    assert E.find_layer(transfer, "dense") is transfer.get_layer("dense")
    with pytest.raises(ValueError, match="No layer 'nope'"):
        E.find_layer(transfer, "base/nope")
    with pytest.raises(ValueError, match="not a nested model"):
        E.find_layer(transfer, "dense/x")
    info = E.layer_info(transfer, "base/conv1")
    assert info == {
        "path": "base/conv1",
        "name": "conv1",
        "type": "Conv2D",
        "output_shape": (48, 48, 8),
        "params": 3 * 3 * 3 * 8,
        "trainable_params": 0,  # the base is frozen
    }
    assert E.layer_info(small, "last_conv")["params"] == 3 * 3 * 32 * 64 + 64


# --------------------------------------------------------------------------------------------------
# Activations


def test_activations_match_sub_models_in_one_pass(monkeypatch):
    small = _small()
    img = _image(32)
    calls = []
    real = E.activation_model

    def spy(model, paths):
        built = real(model, paths)
        calls.append(built)
        return built

    monkeypatch.setattr(E, "activation_model", spy)
    names = ["conv1", "pool2", "last_conv"]
    acts = E.activations(small, img, names)
    assert len(calls) == 1 and len(calls[0].outputs) == len(names) + 1  # one model, one pass
    assert real(small, names) is calls[0]  # built once, cached
    for name in names:
        expected = keras.Model(small.input, small.get_layer(name).output)(img[None].astype("float32"))
        assert acts[name].dtype == np.float32
        np.testing.assert_allclose(acts[name], np.asarray(expected)[0], rtol=1e-5, atol=1e-5)


def test_activations_inside_the_nested_base():
    model = _transfer()
    base = M.base_of(model)
    img = _image(96, 1)
    paths = ["base/conv1", "base/conv_pw_5_relu", "base/conv_pw_13_relu", "flatten"]
    acts = E.activations(model, img, paths)
    assert list(acts) == paths
    x = model.get_layer("preprocess")(img[None].astype("float32"))
    for path in paths[:3]:
        name = path.split("/")[1]
        expected = np.asarray(keras.Model(base.input, base.get_layer(name).output)(x))[0]
        assert acts[path].shape == expected.shape
        np.testing.assert_allclose(acts[path], expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(acts["flatten"], acts["base/conv_pw_13_relu"].reshape(-1), rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Channel display


def test_normalize_channel_is_the_seed_formula():
    rng = np.random.default_rng(0)
    a = (rng.normal(3, 2, (13, 17)) ** 2).astype(np.float32)
    seed = a.copy()  # the seed's lines, verbatim
    seed -= seed.mean()
    seed /= seed.std()
    seed *= 64
    seed += 128
    seed = np.clip(seed, 0, 255).astype("uint8")
    np.testing.assert_array_equal(E.normalize_channel(a), seed)
    flat = E.normalize_channel(np.full((5, 5), 0.7, np.float32))
    assert flat.dtype == np.uint8 and (flat == 128).all()
    assert (E.normalize_channel(np.zeros((4, 4))) == 128).all()


def test_channel_grid_layout_and_pages():
    act = np.random.default_rng(1).random((6, 5, 32)).astype(np.float32)
    grid = E.channel_grid(act)
    assert grid.shape == (2 * 6 + 1, 16 * 5 + 15, 3) and grid.dtype == np.uint8
    assert (grid[6] == 255).all()  # the white gap between the rows
    assert not np.array_equal(E.channel_grid(act, cmap="gray"), grid)
    gray = E.channel_grid(act, cmap="gray")
    np.testing.assert_array_equal(gray[:6, :5, 0], E.normalize_channel(act[..., 0]))  # gray LUT ~ identity
    assert E.channel_pages(32, None) == 1 and E.channel_pages(512, 64) == 8 and E.channel_pages(40, 16) == 3
    wide = np.random.default_rng(2).random((6, 5, 40)).astype(np.float32)
    last = E.channel_grid(wide, per_page=16, page=2)
    assert last.shape == (6, 16 * 5 + 15, 3)  # 8 channels, as wide as a full page
    with pytest.raises(ValueError, match="page"):
        E.channel_grid(act, per_page=16, page=2)
    with pytest.raises(ValueError, match="colormap"):
        E.channel_grid(act, cmap="no-such-map")


def test_upsample_overlay_and_heat_image():
    heat = np.zeros((4, 4), np.float32)
    heat[1, 2] = 1.0
    up = E.upsample(heat, (32, 48))
    assert up.shape == (32, 48) and up.dtype == np.float32 and up.min() >= 0 and up.max() <= 1
    image = np.full((32, 48, 3), 100, np.uint8)
    coloured = E.heat_image(np.zeros((4, 4)), size=(32, 48))
    assert coloured.shape == (32, 48, 3) and tuple(coloured[0, 0]) == (0, 0, 128)  # JET(0), as RGB
    out = E.overlay(image, np.zeros((4, 4)))
    assert out.dtype == np.uint8 and tuple(out[0, 0]) == (100, 100, round(100 + 0.4 * 128))
    hot = E.overlay(np.full((32, 48, 3), 250, np.uint8), np.ones((4, 4)))
    assert hot.max() == 255  # saturates instead of wrapping around


# --------------------------------------------------------------------------------------------------
# Scores


def test_class_scores_are_logits():
    keras.utils.set_random_seed(0)
    model = _small(2)
    out = model.get_layer("output")
    out.set_weights([np.linspace(-1, 1, 64, dtype=np.float32)[:, None], np.array([0.3], np.float32)])
    x = _images(3, 32)
    features = np.asarray(keras.Model(model.input, model.get_layer("dropout").output)(x.astype("float32")))
    z = features @ np.linspace(-1, 1, 64) + 0.3
    scores = E.class_scores(model, x)
    np.testing.assert_allclose(scores[:, 1], z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scores[:, 0], -z, rtol=1e-5, atol=1e-5)  # -z, not 1 - p
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(E.predict(model, x[0]), [1 - p[0], p[0]], rtol=1e-5)

    three = _small(3)
    logits = E.class_scores(three, x)
    probs = np.asarray(three(x.astype("float32")))
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(softmax, probs, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="reference written with tf.GradientTape")
def test_gradcam_matches_the_keras_io_recipe_on_logits():
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = _small(2)
    x = _images(2, 32).astype("float32")
    grad_model = keras.Model(
        model.input, [model.get_layer("last_conv").output, model.get_layer("dropout").output]
    )
    kernel, bias = model.get_layer("output").get_weights()
    for cls, sign in ((1, 1.0), (0, -1.0)):
        with tf.GradientTape() as tape:
            conv, features = grad_model(x)
            score = sign * (tf.matmul(features, kernel) + bias)[:, 0]
        grads = tape.gradient(score, conv).numpy()
        cam = np.maximum(np.einsum("nhwc,nc->nhw", conv.numpy(), grads.mean(axis=(1, 2))), 0)
        expected = cam / np.where(
            cam.max(axis=(1, 2), keepdims=True) > 0, cam.max(axis=(1, 2), keepdims=True), 1
        )
        np.testing.assert_allclose(E.gradcam(model, x, class_index=cls), expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Class activation maps


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcam_scratch_sigmoid(variant, tmp_path):
    model = _build(variant, _small, tmp_path)
    x = _images(4, 32)
    predicted = E.gradcam(model, x)
    _check_maps(predicted, (4, 8, 8))
    one, zero = E.gradcam(model, x, class_index=1), E.gradcam(model, x, class_index=0)
    assert not np.allclose(one, zero)
    # Class 0's score is -z, so its raw map is the negated class-1 map: after the ReLU they never overlap.
    assert (np.minimum(one, zero) == 0).all()
    mixed = E.gradcam(model, x, class_index=[0, 1, 0, 1])
    np.testing.assert_allclose(mixed[0], zero[0], atol=1e-6)
    np.testing.assert_allclose(mixed[1], one[1], atol=1e-6)
    assert E.gradcam(model, x[0]).shape == (1, 8, 8)  # a single (H, W, 3) image
    with pytest.raises(ValueError, match="class_index"):
        E.gradcam(model, x, class_index=2)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcam_transfer_nested_base(variant, tmp_path):
    model = _build(variant, _transfer, tmp_path)
    x = np.stack([_image(96, i) for i in range(2)])
    maps = E.gradcam(model, x, class_index=1)
    assert maps.shape == (2, 3, 3) and maps.min() >= 0 and maps.max() <= 1
    zero, one = (E.gradcam(model, x, layer="base/conv_pw_11_relu", class_index=k) for k in (0, 1))
    # With a random head either class may have no positive evidence; together they cover the map.
    _check_maps(np.maximum(zero, one), (2, 6, 6))
    assert (np.minimum(zero, one) == 0).all() and not np.allclose(zero, one)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcam_softmax_three_classes(variant, tmp_path):
    model = _build(variant, lambda: _small(3), tmp_path)
    x = _images(3, 32)
    maps = [E.gradcam(model, x, class_index=k) for k in range(3)]
    for m in maps:
        assert m.shape == (3, 8, 8) and m.min() >= 0 and m.max() <= 1
    assert not np.allclose(maps[0], maps[1]) and not np.allclose(maps[1], maps[2])
    predicted = np.asarray(model(x.astype("float32"))).argmax(1)
    np.testing.assert_allclose(E.gradcam(model, x), np.stack([maps[k][i] for i, k in enumerate(predicted)]))


def test_keras_file_round_trip_gives_the_same_heatmaps(tmp_path):
    keras.utils.set_random_seed(0)
    model = _transfer(3)
    x = np.stack([_image(96, i) for i in range(2)])
    methods = {**E.METHODS, "Score-CAM": functools.partial(E.scorecam, max_channels=8)}
    before = {name: f(model, x, layer="base/conv_pw_11_relu") for name, f in methods.items()}
    path = tmp_path / "model.keras"
    model.save(path)  # after the explainers replayed its graph
    loaded = modelfile.load_model(path)
    for name, f in methods.items():
        np.testing.assert_allclose(
            f(loaded, x, layer="base/conv_pw_11_relu"), before[name], atol=1e-4, err_msg=name
        )


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("method", ["Grad-CAM++", "Score-CAM"])
def test_gradcam_plus_plus_and_scorecam(method, variant, tmp_path):
    explain = functools.partial(E.scorecam, max_channels=8) if method == "Score-CAM" else E.METHODS[method]
    small = _build(variant, _small, tmp_path)
    _check_maps(explain(small, _images(3, 32), class_index=1), (3, 8, 8))
    transfer = _build(variant, lambda: _transfer(3), tmp_path)
    maps = explain(transfer, np.stack([_image(96, i) for i in range(2)]), layer="base/conv_pw_11_relu")
    _check_maps(maps, (2, 6, 6))


def test_scorecam_uses_at_most_max_channels(monkeypatch):
    model = _small()
    seen = []
    real = E._probabilities
    monkeypatch.setattr(E, "_probabilities", lambda m, x, batch_size=16: seen.append(len(x)) or real(m, x))
    E.scorecam(model, _images(2, 32), max_channels=5)
    assert seen == [5, 5]  # 5 masked images per image


# --------------------------------------------------------------------------------------------------
# JAX backend


_JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from core import explain as E, modelfile
    assert keras.backend.backend() == "jax"
    model = modelfile.load_model(sys.argv[1])
    x = np.load(sys.argv[2])
    out = {name: f(model, x, class_index=[0, 1]).tolist() for name, f in E.METHODS.items()}
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_backend_gives_the_same_heatmaps(tmp_path):
    keras.utils.set_random_seed(0)
    model = _small()
    x = _images(2, 32)
    expected = {name: f(model, x, class_index=[0, 1]) for name, f in E.METHODS.items()}
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT, str(tmp_path / "m.keras"), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    for name, maps in expected.items():
        _check_maps(np.asarray(got[name], np.float32), maps.shape)
        np.testing.assert_allclose(got[name], maps, atol=1e-4, err_msg=name)


# --------------------------------------------------------------------------------------------------
# Correctness on real objects


def _demo_images(root, size: int) -> tuple[list[str], dict, np.ndarray, np.ndarray]:
    """(relative paths, boxes at `size` px, images (N, size, size, 3) float32, labels) of a demo folder."""
    from core import demo
    from core.images import load_resized

    boxes = demo.load_boxes(root)
    rels = sorted(boxes)
    scale = size / json.loads((root / demo.BOXES_FILE).read_text())["image_size"][0]
    boxes = {rel: tuple(round(v * scale) for v in box) for rel, box in boxes.items()}
    images = np.stack([load_resized(root / rel, (size, size)) for rel in rels]).astype("float32")
    labels = np.array([demo.DEMO_CLASSES.index(rel.split("/")[0]) for rel in rels])
    return rels, boxes, images, labels


def _localisation(maps: np.ndarray, boxes: list, size: int) -> tuple[float, float, float]:
    """(peak-in-box rate, mean heat inside the boxes, mean heat outside) of heatmaps on size x size images.

    The peak is judged at the map's own resolution: a hit when the map's hottest cell overlaps the
    box. A 16x16 map of a 64 px image has 4 px cells, and a net that detects a shape by its outline
    puts the peak on the outline, which falls 1-3 px outside the tight box in about 1 case in 5
    when the peak is upsampled to pixels. The heat means use the bilinear upsampling the page shows.
    """
    hits, inside, outside = [], [], []
    for heat, (x0, y0, x1, y1) in zip(maps, boxes):  # box = [x0, x1) x [y0, y1)
        cell_h, cell_w = size / heat.shape[0], size / heat.shape[1]
        row, col = np.unravel_index(np.argmax(heat), heat.shape)
        hits.append(
            col * cell_w < x1 and (col + 1) * cell_w > x0 and row * cell_h < y1 and (row + 1) * cell_h > y0
        )
        up = E.upsample(heat, (size, size))
        box = np.zeros((size, size), bool)
        box[y0:y1, x0:x1] = True
        inside.append(up[box].mean())
        outside.append(up[~box].mean())
    return float(np.mean(hits)), float(np.mean(inside)), float(np.mean(outside))


def _check_localisation(name: str, maps: np.ndarray, boxes: list, size: int) -> None:
    """Peak in the box for >= 80% of the images and more heat inside than outside; and both beat a
    control that pairs every map with another image's box (the demo shapes are big, so a box
    catches many peaks by chance: ~58% for the small net's 16x16 map, ~84% for MobileNet's 7x7)."""
    hit, inside, outside = _localisation(maps, boxes, size)
    control_hit, control_inside, _ = _localisation(maps, boxes[1:] + boxes[:1], size)
    print(
        f"{name}: peak in box {hit:.3f}, heat in {inside:.3f} / out {outside:.3f}; "
        f"with another image's box: peak {control_hit:.3f}, heat in {control_inside:.3f}"
    )
    assert hit >= 0.8 and inside > outside, (hit, inside, outside)
    assert hit >= control_hit + 0.05 and inside >= 1.15 * control_inside, (control_hit, control_inside)


@pytest.mark.slow
def test_quick_demo_learns_the_shapes_and_gradcam_finds_them(workspace):
    """The demo story end to end: the Data page's default split of the demo (0.6/0.2/0.2, seed 0),
    "Quick demo settings" (core.config.QUICK_DEMO) trained by a real run process, >= 95% on the
    800 unseen test pictures; then Grad-CAM's peak lies in the object's box for >= 80% of the
    correctly classified ones, beating a wrong-box control. Time is reported, not asserted."""
    import time

    from core import data, demo, evaluate, rundir, runs
    from core.config import QUICK_DEMO, TrainConfig
    from core.train import finalize

    root = demo.ensure_demo(workspace)
    split = data.make_split(data.scan(root), data.SplitSpec("fractions", 0.6, 0.2, 0.2, seed=0))
    data.save_split(split, name="demo")
    run_id = runs.submit(finalize(TrainConfig(split="demo", **QUICK_DEMO), workspace).to_dict())
    deadline = time.time() + 900
    while runs.status(run_id)["state"] in runs.ACTIVE_STATES and time.time() < deadline:
        time.sleep(1)
    status = runs.status(run_id)
    assert status["state"] == "done", (rundir.run_dir(run_id) / "log.txt").read_text()[-3000:]
    result = evaluate.evaluate_run(run_id, "best", "test")
    print(
        f"\nquick demo: test accuracy {result.accuracy:.3f} on {result.n} pictures, "
        f"{status['ended'] - status['started']:.0f} s from start to end of training"
    )
    assert result.n == 800 and result.accuracy >= 0.95

    size = QUICK_DEMO["image_size"]
    _, all_boxes, _, _ = _demo_images(root, size)
    rels = split.files("test")
    x = np.stack([load_resized(root / rel, (size, size)) for rel in rels]).astype("float32")
    model = modelfile.load_model(rundir.run_dir(run_id) / "best.keras")
    correct = np.asarray(model.predict(x, verbose=0)).argmax(axis=1) == split.labels("test")
    ok = [all_boxes[rel] for rel, right in zip(rels, correct) if right]
    _check_localisation("Grad-CAM", E.gradcam(model, x[correct]), ok, size)


@pytest.mark.slow
@pytest.mark.skipif(not MOBILENET_025.is_file(), reason="no shared MobileNet weights in ../shared/weights")
def test_gradcam_finds_the_demo_shapes_through_a_nested_pretrained_base(tmp_path):
    """The same check through a nested keras.applications base with real ImageNet weights: MobileNet
    (alpha 0.25) at 224 px with a GAP head trained on its features (~95% held-out accuracy, 30 s).
    Its last feature map (base/conv_pw_13_relu) is 7x7 at 224 px.
    """
    from core import demo

    root = demo.generate(tmp_path / "demo", per_class=150, size=64, seed=0)
    rels, boxes, images, labels = _demo_images(root, 224)
    held_out = np.arange(len(rels)) % 5 == 0

    keras.utils.set_random_seed(0)
    base = M.build_base("mobilenet_0.25", 224, MOBILENET_025)
    features = base.predict(np.asarray(M.Preprocess("tf")(images)), batch_size=64, verbose=0)
    classes = len(demo.DEMO_CLASSES)
    head = M.build_head(features.shape[1:], classes, pooling="avg", units=0, dropout=0.3)
    head.compile(keras.optimizers.Adam(1e-3), M.loss_for(classes), metrics=["accuracy"])
    head.fit(features[~held_out], labels[~held_out], epochs=30, batch_size=32, verbose=0)
    model = M.build_transfer("mobilenet_0.25", 224, classes, base=base, head=head)

    x, y = images[held_out], labels[held_out]
    correct = np.asarray(model.predict(x, verbose=0)).argmax(axis=1) == y
    assert correct.mean() >= 0.85, f"held-out accuracy {correct.mean():.3f}"
    ok = [boxes[rel] for rel in np.array(rels)[held_out][correct]]
    _check_localisation("Grad-CAM", E.gradcam(model, x[correct]), ok, 224)
    _check_localisation("Grad-CAM++", E.gradcam_plus_plus(model, x[correct]), ok, 224)
