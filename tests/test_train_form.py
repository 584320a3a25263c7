"""dashboard.train_form without a page: its choices agree with core, the "Runs on" line, and the
runs fine-tuning may start from."""

from __future__ import annotations

import dataclasses

import pytest

from core import config, models, runs
from dashboard import train_choices, train_form


def test_every_base_choice_is_a_known_base():
    for name in train_choices.BASE_CHOICES:
        assert models.parse_base_name(name)[0] in models.BASES, name
        models.base_spec(name)  # the variant (alpha) exists too


def test_the_form_offers_exactly_the_modes_and_heads_core_allows():
    assert tuple(train_choices.MODES) == config.MODES
    assert sorted(train_choices.POOLINGS) == sorted(config.POOLINGS)


def test_widgets_show_trainconfig_fields_and_unset_values_are_valid():
    fields = {f.name for f in dataclasses.fields(config.TrainConfig)}
    assert set(train_form.WIDGETS) <= fields
    assert set(train_form.UNSET) <= set(train_form.WIDGETS)
    config.TrainConfig(**train_form.UNSET)  # "off" values a recipe may leave out all run


CPU = {"device": "CPU", "gpus": 0, "precision": "float32", "jit_compile": False}


@pytest.mark.parametrize(
    "plan, setting, text",
    [
        (CPU, "auto", "Runs on: **CPU**, precision **float32** (no bfloat16 hardware here), XLA **off**."),
        (CPU, "float32", "Runs on: **CPU**, precision **float32**, XLA **off**."),
        (
            {**CPU, "precision": "mixed_bfloat16"},
            "auto",
            "Runs on: **CPU**, precision **mixed_bfloat16** (this processor has bfloat16 hardware), XLA **off**.",
        ),
        (
            {"device": "1 GPU(s)", "gpus": 1, "precision": "mixed_bfloat16", "jit_compile": True},
            "auto",
            "Runs on: **1 GPU(s)**, precision **mixed_bfloat16**, XLA **on**.",
        ),
        (
            {"device": "2 GPU(s)", "gpus": 2, "precision": "mixed_float16", "jit_compile": True},
            "auto",
            "Runs on: **2 GPU(s)** (each batch split across them, one copy of the model on each), "
            "precision **mixed_float16**, XLA **on**.",
        ),
    ],
)
def test_device_text_says_where_a_run_goes_and_why_auto_chose_its_precision(plan, setting, text):
    assert train_form.device_text(plan, setting) == text


def test_finetune_sources_are_runs_with_a_model_on_a_pretrained_base(workspace):
    def make(mode: str, model: str, saved: str | None) -> str:
        extra = {"from_run": "x"} if mode == "finetune" else {}
        run_id = runs.create_run(config.TrainConfig(split="s", mode=mode, model=model, **extra).to_dict())
        if saved:
            (workspace / "runs" / run_id / saved).write_bytes(b"")
        return run_id

    features = make("features", "vgg16", "best.keras")
    stopped_early = make("frozen", "mobilenet_0.5", "last.keras")
    make("features", "vgg16", None)  # no model saved yet
    make("scratch", "compact", "best.keras")  # no pretrained base
    sources = train_form.finetune_sources()
    assert set(sources) == {features, stopped_early}
    assert train_form.source_label(sources[features]) == f"{features} (vgg16, queued)"
