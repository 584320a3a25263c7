"""core.report and `python -m core report`: one self-contained HTML page per run, built from a real
run trained in this process (worker code, no subprocess) on demo shapes whose class folders have
hostile names."""

from __future__ import annotations

import base64
import html
import io
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from core import config as config_module
from core import data, demo, evaluate, report, rundir, runs, train, worker
from tests.conftest import run_cli

# Class folder names are anything a file system allows: they must show as text, never run.
HOSTILE = {
    "circle": "<script>window.pwned=1<",
    "square": 'square "&" co',
    "triangle": "<img src=x onerror=alert(1)>",
    "star": "star",
}
RUN_NAME = "</title><script>window.pwned=2</script>"


def train_small_run(ws: Path, root: Path, split_name: str, **overrides) -> str:
    """A real run (worker code in this process, float32) of the small net at 32 px on `root`,
    with the 'seed-001' augmentation, for 3 epochs unless overrides say otherwise; returns its id."""
    split = data.make_split(data.scan(root), data.SplitSpec("fractions", 0.6, 0.2, 0.2), name=split_name)
    data.save_split(split, workspace=ws)
    settings = dict(
        split=split_name, mode="scratch", model="small", image_size=32, epochs=3, batch_size=16,
        optimizer="adam", learning_rate=3e-3, augment_name="seed-001", precision="float32",
    )  # fmt: skip
    config = train.finalize(config_module.TrainConfig(**{**settings, **overrides}), ws)
    run_id = runs.create_run(config.to_dict(), ws)
    worker.worker_main(rundir.run_dir(run_id, ws), resume=False)
    assert runs.status(run_id, ws)["state"] == "done", (rundir.run_dir(run_id, ws) / "log.txt").read_text()
    return run_id


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> tuple[Path, str]:
    """(workspace, run id): demo shapes (20 per class at 64 px) in folders named as in HOSTILE,
    trained 3 epochs; the run's name and notes are HTML too."""
    ws = tmp_path_factory.mktemp("report-ws")
    shapes = demo.generate(ws / "datasets" / "shapes", per_class=20, size=64)
    root = ws / "datasets" / "hostile"
    for plain, hostile in HOSTILE.items():
        shutil.copytree(shapes / plain, root / hostile)
    run_id = train_small_run(ws, root, "hostile")
    runs.set_meta(run_id, ws, name=RUN_NAME, notes="<b>bold?</b> & more")
    return ws, run_id


@pytest.fixture(scope="module")
def page(hostile_run) -> str:
    ws, run_id = hostile_run
    return report.build_report(run_id, workspace=ws)


def test_the_report_has_every_section_in_plain_words(hostile_run, page):
    ws, run_id = hostile_run
    for heading in (
        "What was trained",
        "How it learned",
        "Test results",
        "Biggest mistakes",
        "The network, layer by layer",
        "Machine and time",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert "From scratch. A new network learns everything" in page  # the mode in words
    assert "Small quick net" in page  # the network's description
    assert "32 × 32 pixels: every picture stretched to a square." in page
    assert "Flip left-right" in page  # seed-001's augmentation, described
    assert "Adam with learning rate 0.003, kept the same throughout." in page
    assert "Batches of 16 pictures, up to 3 epochs." in page
    status = runs.status(run_id, ws)
    assert f"{status['train_images']:,} to learn from" in page
    result = evaluate.cached_evaluation(run_id, workspace=ws)  # build_report scored and stored it
    assert result is not None and f"<b>{result.accuracy:.1%}</b>" in page
    assert f"{result.n:,} kept apart for the final test" in page
    assert re.search(r"\d+ s of training for 3 epochs", page)
    assert "32-bit numbers (float32)" in page and "CPU" in page
    assert "last_conv" in page  # the layer table (the small net's Grad-CAM layer)


def test_charts_are_plotly_with_its_javascript_inlined_once_and_nothing_fetched(page):
    assert page.count('class="plotly-graph-div"') == 4  # loss, accuracy, confusion, ROC
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert len(scripts) == 1 + 4  # plotly.js in the head, one per figure
    assert not any("src=" in s for s in scripts)
    assert not re.search(r"<(?:link|iframe|img|script)\b[^>]*(?:src|href)=[\"']?(?:https?:)?//", page)
    assert len(page) < 6_000_000  # plotly.js is ~4.8 MB; the rest stays small


def test_mistakes_are_embedded_pictures_with_their_overlays(hostile_run, page):
    ws, run_id = hostile_run
    result = evaluate.cached_evaluation(run_id, workspace=ws)
    uris = re.findall(r'<img src="data:image/png;base64,([^"]+)" width="(\d+)" height="(\d+)"', page)
    shown = min(len(result.top_losses), report.MAX_MISTAKES)
    assert shown > 0, "the tiny model should make mistakes"
    assert len(uris) == 2 * shown  # the picture and its Grad-CAM overlay
    for data_b64, w, h in uris:
        picture = Image.open(io.BytesIO(base64.b64decode(data_b64)))
        assert picture.size == (int(w), int(h)) == (report.THUMB_SIZE, report.THUMB_SIZE)
    assert page.count("<figure>") == shown


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes, as a browser's parser sees them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def test_every_user_text_is_escaped(page):
    tags = Tags(page).tags
    assert [t for t, _ in tags].count("script") == 1 + 4  # plotly.js and the four figures, no other
    assert not [a for _, a in tags if any(k.startswith("on") for k in a)]  # no event handler
    assert all(a["src"].startswith("data:image/png;base64,") for t, a in tags if t == "img")
    assert [t for t, _ in tags].count("title") == 1
    assert "&lt;script&gt;window.pwned=1&lt;" in page  # the class name, shown as text
    assert html.escape(RUN_NAME) in page and "&lt;b&gt;bold?&lt;/b&gt; &amp; more" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "square &quot;&amp;&quot; co" in page
    assert "<script>window" not in page and "<img src=x" not in page  # Plotly's JSON escapes '<' too


def test_write_report_is_atomic_and_never_overwrites(hostile_run, tmp_path):
    ws, run_id = hostile_run
    out = report.write_report(run_id, tmp_path / "report.html", workspace=ws)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left
    before = out.stat().st_mtime_ns
    with pytest.raises(data.DataError, match="already exists"):
        report.write_report(run_id, out, workspace=ws)
    assert out.stat().st_mtime_ns == before
    with pytest.raises(data.DataError, match="no folder"):
        report.write_report(run_id, tmp_path / "nowhere" / "r.html", workspace=ws)


def test_a_run_without_a_model_is_refused(hostile_run):
    ws, _ = hostile_run
    run_id = runs.create_run({"mode": "scratch", "split": "hostile"}, ws)
    with pytest.raises(rundir.RunError, match="no saved model yet"):
        report.build_report(run_id, workspace=ws)
    with pytest.raises(rundir.RunError, match="no run with id"):
        report.build_report("nope", workspace=ws)


def test_cli_writes_the_report_and_says_when_it_scored_first(hostile_run, tmp_path):
    ws, run_id = hostile_run
    for file in rundir.run_dir(run_id, ws).glob("eval-*"):
        file.unlink()  # no test scores yet: the command scores first and says so
    out = tmp_path / "r.html"
    done = run_cli("report", run_id, "-o", str(out), workspace=ws)
    assert done.returncode == 0, done.stderr
    assert "scoring" in done.stdout and str(out) in done.stdout
    assert 'class="plotly-graph-div"' in out.read_text(encoding="utf-8")
    again = run_cli("report", run_id, "-o", str(out), workspace=ws)
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0
    assert "already exists" in again.stderr and "--overwrite" in again.stderr
    bad = run_cli("report", "no-such-run", "-o", str(tmp_path / "x.html"), workspace=ws)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: no run with id 'no-such-run'"
    assert not (tmp_path / "x.html").exists()
    untrained = runs.create_run({"mode": "scratch", "split": "hostile"}, ws)
    empty = run_cli("report", untrained, "-o", str(tmp_path / "y.html"), workspace=ws)
    assert (
        empty.returncode == 2 and empty.stderr.strip() == f"error: run '{untrained}' has no saved model yet"
    )


def test_settings_read_as_plain_sentences():
    from core import report_text

    assert [report_text.count(n, w) for n, w in ((1, "class"), (4, "class"), (1200, "epoch"))] == [
        "1 class",
        "4 classes",
        "1,200 epochs",
    ]
    assert [report_text.duration(s) for s in (0.42, 45, 200, 7500)] == [
        "0.4 s",
        "45 s",
        "3 min 20 s",
        "2 h 05 min",
    ]
    features = config_module.TrainConfig(
        split="s", mode="features", model="mobilenet_0.25", weights="imagenet", head_pooling="avg",
        head_units=0, head_dropout=0.2, optimizer="adamw", weight_decay=0.05, learning_rate=3e-4,
        lr_schedule="cosine", warmup_epochs=2, epochs=20, patience=4, label_smoothing=0.1,
    ).to_dict()  # fmt: skip
    words = dict(report_text.what_was_trained(features, {"train_images": 10, "val_images": 5}, ["a", "b"]))
    assert words["Pictures"] == (
        "The saved split 's': 10 to learn from, 5 to check progress after each epoch. 2 classes: a, b."
    )
    assert words["Way of training"].startswith("Pretrained features (fast). A network trained on ImageNet")
    assert words["Network"].startswith("MobileNet (alpha 0.25), starting from its ImageNet weights: ")
    assert words["Network"].endswith("On top, a new classifier: global average pooling, dropout 20%.")
    assert words["Augmentation"] == "None: this way of training looks at each picture only once."
    assert words["Learning"] == (
        "AdamW with learning rate 0.0003, lowered along a cosine curve towards 0, after rising from 0 over "
        "the first 2 epochs. Batches of 32 pictures, up to 20 epochs, stopping early after 4 epochs without "
        "progress. Weight decay 0.05. Label smoothing 0.1. Random seed 0."
    )
    plan = {"backend": "tensorflow", "device": "2 GPU(s)", "precision": "mixed_float16", "jit_compile": True}
    machine = dict(report_text.machine({"plan": {**plan, "replicas": 2}}, "Some CPU"))
    assert machine["Trained on"] == "2 GPU(s), the work spread over 2, with Keras on TensorFlow."
    assert machine["Numbers"] == "16-bit numbers where safe (mixed float16). XLA compiled the steps."
