"""A run report: one self-contained HTML file that opens offline in any browser, with no server.

It says in plain words what was trained (core.report_text), shows the loss and accuracy curves,
the test scores, confusion matrix and ROC (core.charts, Plotly's JavaScript inlined once in the
head), the biggest mistakes with their Grad-CAM overlays (PNG data URIs), the model's layers, the
machine and the time it took. Every text that comes from a user or a folder (run name, notes,
class and file names) is escaped; Plotly escapes what it puts in its JSON.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

import numpy as np

from core import charts, curves, evaluate, explain, modelfile, report_text, runs
from core.errors import DataError
from core.fileio import atomic_write_text
from core.images import ImageError, load_resized, png_data_uri
from core.rundir import RunError, read_config, run_dir

MAX_MISTAKES = 12
THUMB_SIZE = 160  # pixels on a side of each mistake's picture and overlay

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1100px; margin: 0 auto; padding: 24px; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #d0d7de; }
.muted { color: #59636e; font-size: 0.9em; }
.numbers { display: flex; gap: 16px; flex-wrap: wrap; margin: 1em 0; }
.number { border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 16px; min-width: 120px; }
.number b { display: block; font-size: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 4px 12px 4px 0; vertical-align: top; border-bottom: 1px solid #eaeef2; }
td.num, th.num { text-align: right; }
.words th { width: 150px; }
.pair { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
@media (max-width: 800px) { .pair { grid-template-columns: minmax(0, 1fr); } }
.mistakes { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 8px; padding: 8px; }
figure img { margin-right: 4px; border-radius: 4px; }
figcaption { font-size: 0.9em; overflow-wrap: anywhere; }
"""


def _text(value: object) -> str:
    return html.escape(str(value), quote=True)


def _words(rows: list[tuple[str, str]]) -> str:
    """(heading, sentence) rows as a two-column table."""
    body = "".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in rows)
    return f'<table class="words">{body}</table>'


def _figure(fig) -> str:
    """A Plotly figure as a div; the JavaScript is in the page's head, so none here."""
    fig.update_layout(template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _image(picture: np.ndarray, alt: str) -> str:
    """An (H, W, 3) uint8 picture as an <img> with a PNG data URI."""
    h, w = picture.shape[:2]
    return f'<img src="{png_data_uri(picture)}" width="{w}" height="{h}" alt="{_text(alt)}">'


def _numbers(items: list[tuple[str, str]]) -> str:
    boxes = "".join(f'<div class="number">{_text(k)}<b>{_text(v)}</b></div>' for k, v in items)
    return f'<div class="numbers">{boxes}</div>'


def _header(run_id: str, config: dict, status: dict, meta: dict) -> str:
    name = meta.get("name") or run_id
    notes = f"<p>{_text(meta['notes'])}</p>" if meta.get("notes") else ""
    return (
        f"<h1>Run report: {_text(name)}</h1>"
        f'<p class="muted">Run {_text(run_id)} · {_text(status.get("state", "?"))} · '
        f"report made {_text(report_text.when(time.time()))} by Convnet Workbench</p>{notes}"
    )


def _curves_section(rows: list[dict]) -> str:
    table = curves.epoch_table(rows)
    if len(table) == 0:
        return "<h2>How it learned</h2><p>This run logged no epochs, so there are no curves to show.</p>"
    best = curves.best_epoch(rows)
    note = ""
    if best is not None:
        i = table.x.index(best)
        note = (
            f"<p>The best epoch was <b>{best}</b> (validation loss {table.val_loss[i]:.4f}, "
            f"validation accuracy {table.val_accuracy[i]:.1%}); the best model is the one saved then.</p>"
        )
    return (
        "<h2>How it learned</h2>"
        "<p>Loss says how wrong the model is (lower is better); accuracy is the share of pictures it gets "
        "right. Training curves are measured on the pictures it learns from, validation curves on "
        "pictures it never learns from: when they drift apart, it is memorising rather than learning.</p>"
        f'<div class="pair">{_figure(charts.curves(table, "loss", 0.0, "epoch", best))}'
        f"{_figure(charts.curves(table, 'accuracy', 0.0, 'epoch', best))}</div>{note}"
    )


def _scores_section(result: evaluate.EvalResult) -> str:
    wrong = int((result.predicted != result.labels).sum())
    numbers = _numbers(
        [
            ("Test accuracy", f"{result.accuracy:.1%}"),
            ("Test loss", f"{result.loss:.4f}"),
            ("Test pictures", f"{result.n:,}"),
            ("Wrong", f"{wrong:,}"),
        ]
    )
    failed = (
        f"<p>{report_text.count(len(result.failed), 'test picture')} could not be read and were left out.</p>"
        if result.failed
        else ""
    )
    head = "".join(f'<th class="num">{k}</th>' for k in ("precision", "recall", "F1", "pictures"))
    body = "".join(
        f"<tr><td>{_text(r['class'] if r['kind'] == 'class' else r['kind'] + ' average')}</td>"
        f'<td class="num">{r["precision"]:.3f}</td><td class="num">{r["recall"]:.3f}</td>'
        f'<td class="num">{r["f1"]:.3f}</td><td class="num">{r["support"]:,}</td></tr>'
        for r in result.report
    )
    return (
        "<h2>Test results</h2>"
        f"<p>The {result.which} model scored on the {result.n:,} test pictures of its split, which it never "
        "saw while training.</p>"
        f"{numbers}{failed}"
        f'<div class="pair">{_figure(charts.confusion(result.confusion, result.classes, False))}'
        f"{_figure(charts.roc(result.roc, result.classes))}</div>"
        "<p>Per class: precision is the share right of the pictures it called that class; recall the "
        "share it found of the pictures of that class; F1 combines both.</p>"
        f"<table><tr><th>class</th>{head}</tr>{body}</table>"
    )


def _mistakes_section(result: evaluate.EvalResult, loaded: modelfile.LoadedModel) -> str:
    worst = result.top_losses[:MAX_MISTAKES]
    if not worst:
        return "<h2>Biggest mistakes</h2><p>No mistakes on the test pictures.</p>"
    size = (loaded.input_size, loaded.input_size)
    shown, inputs, thumbs = [], [], []
    for item in worst:
        try:
            inputs.append(load_resized(item["file"], size, loaded.resize_policy))
            thumbs.append(load_resized(item["file"], (THUMB_SIZE, THUMB_SIZE), loaded.resize_policy))
        except (ImageError, OSError):
            continue
        shown.append(item)
    gone = len(worst) - len(shown)
    missing = f"<p>{report_text.count(gone, 'picture')} could not be read any more.</p>" if gone else ""
    if not shown:
        return f"<h2>Biggest mistakes</h2>{missing}"
    said = [result.classes.index(item["pred"]) for item in shown]
    heatmaps = explain.gradcam(loaded.model, np.stack(inputs), class_index=said)
    figures = "".join(
        "<figure>"
        f"{_image(thumb, 'the picture')}{_image(explain.overlay(thumb, heat), 'where the network looked')}"
        f"<figcaption>Said <b>{_text(item['pred'])}</b> ({item['prob']:.0%} sure); it is "
        f"<b>{_text(item['true'])}</b><br>"
        f'<span class="muted">{_text(item["path"])}</span></figcaption></figure>'
        for item, thumb, heat in zip(shown, thumbs, heatmaps)
    )
    return (
        "<h2>Biggest mistakes</h2>"
        "<p>The test pictures the model got wrong while being most sure of itself: often mislabelled "
        "pictures, odd crops, or what it has not learned yet. Beside each picture, the warm colours show "
        "the parts that made the network give its wrong answer (Grad-CAM).</p>"
        f'{missing}<div class="mistakes">{figures}</div>'
    )


def _network_section(loaded: modelfile.LoadedModel) -> str:
    from core.models import param_counts, summary_rows

    trainable, frozen = param_counts(loaded.model)
    body = "".join(
        f"<tr><td>{_text(r['name'])}</td><td>{_text(r['type'])}</td><td>{_text(r['output_shape'])}</td>"
        f'<td class="num">{r["params"]:,}</td></tr>'
        for r in summary_rows(loaded.model)
    )
    learned = f"; training adjusts {trainable:,} of them" if frozen else ""
    return (
        "<h2>The network, layer by layer</h2>"
        f"<p>{trainable + frozen:,} numbers (weights) in all{learned}. Pictures go in at the top and the "
        f"class probabilities come out at the bottom.</p>"
        '<table><tr><th>layer</th><th>kind</th><th>output shape</th><th class="num">weights</th></tr>'
        f"{body}</table>"
    )


def _machine_section(status: dict, rows: list[dict]) -> str:
    from core.devices import cpu_name

    table = curves.epoch_table(rows)
    seconds = [s for s, done in zip(table.seconds, table.complete) if done and s is not None]
    speeds = [v for v in table.images_per_s if v is not None]
    words = report_text.machine(status, cpu_name()) + report_text.time_taken(status, seconds)
    if speeds:
        words.append(("Speed", f"About {np.median(speeds):,.0f} pictures a second while learning."))
    return f"<h2>Machine and time</h2>{_words(words)}"


def build_report(
    run_id: str,
    which: str = "best",
    workspace: str | os.PathLike | None = None,
    result: evaluate.EvalResult | None = None,
    loaded: modelfile.LoadedModel | None = None,
) -> str:
    """The run's report as one HTML page. result: its test evaluation (the cached one, else scored
    now with evaluate_run); loaded: its model, when the caller has it loaded already.
    RunError when the run is unknown or has no saved model yet."""
    path = run_dir(run_id, workspace)
    if modelfile.model_file(path, which) is None:
        raise RunError(f"run '{run_id}' has no saved model yet")
    config, status = read_config(path), runs.read_status(path)
    meta, rows = runs.meta(run_id, workspace), runs.metrics(run_id, workspace)
    if result is None:
        result = evaluate.cached_evaluation(run_id, which, workspace=workspace) or evaluate.evaluate_run(
            run_id, which, workspace=workspace
        )
    loaded = loaded or modelfile.from_run(run_id, result.which, workspace)
    trained = report_text.what_was_trained(config, status, result.classes, result.n)
    body = "".join(
        [
            _header(run_id, config, status, meta),
            "<h2>What was trained</h2>",
            _words(trained),
            _curves_section(rows),
            _scores_section(result),
            _mistakes_section(result, loaded),
            _network_section(loaded),
            _machine_section(status, rows),
        ]
    )
    return _page(f"Run report: {meta.get('name') or run_id}", body)


def _page(title: str, body: str) -> str:
    from plotly.offline import get_plotlyjs

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body>{body}</body></html>\n"
    )


def write_report(
    run_id: str,
    out: str | os.PathLike,
    which: str = "best",
    workspace: str | os.PathLike | None = None,
    result: evaluate.EvalResult | None = None,
    overwrite: bool = False,
) -> Path:
    """build_report written to `out` atomically; an existing file is kept unless overwrite."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; choose another file name")
    if not out.parent.is_dir():
        raise DataError(f"there is no folder {out.parent} to write the report in")
    text = build_report(run_id, which, workspace, result)
    return atomic_write_text(out, text, make_parents=False)
