"""AppTest for the Train page: defaults per mode, summary before launch, launch and stop."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core import data, demo, runs
from core.config import TrainConfig
from tests.pages.conftest import open_page


@pytest.fixture
def tiny_split(workspace):
    root = demo.generate(workspace / "datasets" / "shapes", per_class=24, size=48)
    split = data.make_split(data.scan(root), data.SplitSpec("counts", 12, 6, 6))
    data.save_split(split, name="shapes")
    return split


@pytest.fixture
def app(tiny_split) -> AppTest:
    at = open_page("train.py")
    assert not at.exception, at.exception
    return at


def test_no_split_points_to_data_page(workspace):
    at = open_page("train.py")
    assert not at.exception
    assert any("Data" in i.value for i in at.info)


def test_defaults_follow_the_mode_and_the_network(app):
    assert app.selectbox(key="train_model").value == "resnet"  # today's recipe from scratch
    assert app.selectbox(key="train_optimizer").value == "adamw"
    assert app.number_input(key="train_size").value == 128
    app.selectbox(key="train_model").set_value("compact").run()
    assert app.number_input(key="train_size").value == 32  # the net's own size
    app.radio(key="train_mode").set_value("features").run()
    assert app.selectbox(key="train_model").value == "vgg16"
    assert app.number_input(key="train_size").value == 224  # the size VGG16 learned ImageNet at
    assert app.selectbox(key="train_head_pooling").value == "avg"
    assert app.selectbox(key="train_optimizer").value == "adam"
    assert app.number_input(key="train_lr").value == pytest.approx(3e-4)
    assert not any("learned ImageNet from" in c.value for c in app.caption)
    app.selectbox(key="train_model").set_value("xception").run()
    assert app.number_input(key="train_size").value == 299
    app.number_input(key="train_size").set_value(150).run()
    assert any("learned ImageNet from 299-pixel pictures" in c.value for c in app.caption)
    assert not app.exception, app.exception


def test_resnet_brings_its_recipe_and_another_net_takes_it_away(app):
    app.selectbox(key="train_model").set_value("compact").run()
    app.selectbox(key="train_model").set_value("resnet").run()
    assert app.number_input(key="train_size").value == 128
    assert app.selectbox(key="train_optimizer").value == "adamw"
    assert app.selectbox(key="train_schedule").value == "cosine"
    assert app.number_input(key="train_warmup").value == 3
    assert app.number_input(key="train_label_smoothing").value == pytest.approx(0.1)
    assert app.number_input(key="train_weight_decay").value == pytest.approx(0.05)
    assert app.selectbox(key="train_augment").value == "photos"
    metrics = {m.label: m.value for m in app.metric}
    # 4 classes: 3 more outputs; BatchNorm's moving means and variances (2 x 1,440) do not learn.
    assert metrics["Weights that learn"] == f"{1_229_537 + 3 * 257 - 2 * 1440:,}"
    app.selectbox(key="train_model").set_value("seed000").run()
    assert app.selectbox(key="train_optimizer").value == "rmsprop"
    assert app.number_input(key="train_warmup").value == 0
    assert app.number_input(key="train_label_smoothing").value == 0
    assert not any(n.key == "train_weight_decay" for n in app.number_input)  # AdamW only
    assert not app.exception, app.exception


def test_seed_recipe_is_one_click_away(app):
    app.radio(key="train_mode").set_value("features").run()
    app.button(key="train_seed_recipe").click().run()
    assert app.selectbox(key="train_model").value == "vgg16"
    assert app.number_input(key="train_size").value == 150
    assert app.number_input(key="train_lr").value == pytest.approx(2e-5)
    assert app.selectbox(key="train_optimizer").value == "rmsprop"
    assert app.selectbox(key="train_head_pooling").value == "flatten"
    assert app.number_input(key="train_batch").value == 20
    assert any("learned ImageNet from 224-pixel pictures" in c.value for c in app.caption)


def test_summary_shows_exact_counts_before_launch(app):
    app.selectbox(key="train_model").set_value("seed000").run()
    metrics = {m.label: m.value for m in app.metric}
    # seed000 for 4 demo classes: 3,453,121 for 2 classes + 3 more outputs x 513 weights each.
    assert metrics["Weights that learn"] == f"{3_453_121 + 3 * 513:,}"
    assert metrics["Frozen weights"] == "0"
    app.radio(key="train_mode").set_value("features").run()
    metrics = {m.label: m.value for m in app.metric}
    assert int(metrics["Frozen weights"].replace(",", "")) == 14_714_688  # VGG16's convolutional base


def test_launch_quick_demo_then_stop(app, workspace):
    app.button(key="train_quick").click().run()
    app.number_input(key="train_epochs").set_value(50).run()
    app.button(key="train_launch").click().run()
    assert not app.exception, app.exception
    assert any("Started run" in s.value for s in app.success)
    [run] = runs.list_runs()
    assert run["config"]["model"] == "compact" and run["config"]["image_size"] == 32
    assert run["config"]["lr_schedule"] == "cosine" and run["config"]["batch_size"] == 64
    assert run["config"]["augment"] is not None  # the snapshot that makes the run repeatable
    deadline = time.time() + 120
    while runs.status(run["id"])["state"] != "running" and time.time() < deadline:
        time.sleep(0.5)
    app.run()
    app.button(key=f"stop_{run['id']}").click().run()
    while runs.status(run["id"])["state"] in runs.ACTIVE_STATES and time.time() < deadline:
        time.sleep(0.5)
    assert runs.status(run["id"])["state"] == "stopped"


def test_find_a_learning_rate_charts_the_sweep_and_puts_the_suggestion_in_the_form(app, workspace):
    app.button(key="train_quick").click().run()
    app.button(key="train_lr_find").click().run()
    assert not app.exception, app.exception
    chart = next(c for c in app.get("plotly_chart") if "learning rate rises" in c.proto.spec)
    assert '"type":"log"' in chart.proto.spec.replace(" ", "")
    use = app.button(key="train_lr_use")
    suggested = float(use.label.split()[-1])
    assert 1e-7 <= suggested <= 1
    use.click().run()
    assert not app.exception, app.exception
    assert app.number_input(key="train_lr").value == pytest.approx(suggested)
    assert not any((workspace / "runs").iterdir())  # nothing was saved as a run


def test_finetune_lists_runs_with_a_pretrained_model_and_their_base_s_last_block(app, workspace):
    app.radio(key="train_mode").set_value("finetune").run()
    assert any("Train one first" in i.value for i in app.info)
    config = TrainConfig(split="shapes", mode="features", model="vgg16", weights="none")
    run_id = runs.create_run(config.to_dict())
    (workspace / "runs" / run_id / "best.keras").write_bytes(b"")
    app.run()
    source = app.selectbox(key="train_from_run")
    assert source.value == run_id and source.format_func(run_id) == f"{run_id} (vgg16, queued)"
    assert app.text_input(key="train_unfreeze_from").value == "block5_conv1"
    assert not app.exception, app.exception
