"""Tests for core.explain.cams: Grad-CAM, Grad-CAM++, Score-CAM.

Every explainer test runs in float32, in mixed precision (mixed_bfloat16) and on a model that went
through a .keras save -> load round trip. The slow tests train a net on the demo shapes and check
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
from tests.modelkit import (  # noqa: E402
    VARIANTS,
    build_variant,
    check_maps,
    mobilenet_transfer,
    shape_image,
    shape_images,
    small_net,
)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="reference written with tf.GradientTape")
def test_gradcam_matches_the_keras_io_recipe_on_logits():
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = small_net(2)
    x = shape_images(2, 32).astype("float32")
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


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcam_scratch_sigmoid(variant, tmp_path):
    model = build_variant(variant, small_net, tmp_path)
    x = shape_images(4, 32)
    predicted = E.gradcam(model, x)
    check_maps(predicted, (4, 8, 8))
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
    model = build_variant(variant, mobilenet_transfer, tmp_path)
    x = np.stack([shape_image(96, i) for i in range(2)])
    maps = E.gradcam(model, x, class_index=1)
    assert maps.shape == (2, 3, 3) and maps.min() >= 0 and maps.max() <= 1
    zero, one = (E.gradcam(model, x, layer="base/conv_pw_11_relu", class_index=k) for k in (0, 1))
    # With a random head either class may have no positive evidence; together they cover the map.
    check_maps(np.maximum(zero, one), (2, 6, 6))
    assert (np.minimum(zero, one) == 0).all() and not np.allclose(zero, one)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcam_softmax_three_classes(variant, tmp_path):
    model = build_variant(variant, lambda: small_net(3), tmp_path)
    x = shape_images(3, 32)
    maps = [E.gradcam(model, x, class_index=k) for k in range(3)]
    for m in maps:
        assert m.shape == (3, 8, 8) and m.min() >= 0 and m.max() <= 1
    assert not np.allclose(maps[0], maps[1]) and not np.allclose(maps[1], maps[2])
    predicted = np.asarray(model(x.astype("float32"))).argmax(1)
    np.testing.assert_allclose(E.gradcam(model, x), np.stack([maps[k][i] for i, k in enumerate(predicted)]))


def test_keras_file_round_trip_gives_the_same_heatmaps(tmp_path):
    keras.utils.set_random_seed(0)
    model = mobilenet_transfer(3)
    x = np.stack([shape_image(96, i) for i in range(2)])
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
    small = build_variant(variant, small_net, tmp_path)
    check_maps(explain(small, shape_images(3, 32), class_index=1), (3, 8, 8))
    transfer = build_variant(variant, lambda: mobilenet_transfer(3), tmp_path)
    maps = explain(transfer, np.stack([shape_image(96, i) for i in range(2)]), layer="base/conv_pw_11_relu")
    check_maps(maps, (2, 6, 6))


def test_scorecam_uses_at_most_max_channels(monkeypatch):
    model = small_net()
    seen = []
    real = M.probabilities
    monkeypatch.setattr(M, "probabilities", lambda m, x, batch_size=32: seen.append(len(x)) or real(m, x))
    E.scorecam(model, shape_images(2, 32), max_channels=5)
    assert seen == [5, 5]  # 5 masked images per image


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
    model = small_net()
    x = shape_images(2, 32)
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
        check_maps(np.asarray(got[name], np.float32), maps.shape)
        np.testing.assert_allclose(got[name], maps, atol=1e-4, err_msg=name)


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
