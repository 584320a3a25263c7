"""Every figure of the app: the Plotly ones (training curves (raw faint, smoothed bold), comparisons,
class probabilities, the learning-rate sweep, confusion matrix, ROC curves) and the embedding map, a
Vega-Lite chart (Altair) so its hover can show each picture."""

from __future__ import annotations

import altair as alt
import numpy as np
import plotly.graph_objects as go

from core import metrics
from core.curves import Table, smooth

TRAIN_COLOR, VAL_COLOR = "#3b6ef5", "#e8710a"
PALETTE = ["#3b6ef5", "#e8710a", "#1a9e77", "#d6336c", "#7048e8", "#868e96", "#f59f00", "#0c8599"]


def _faint(color: str) -> str:
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.25)"


def _layout(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title=title,
        height=330,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend=dict(orientation="h", y=-0.25),
        hovermode="x unified",
    )
    return fig


def add_series(
    fig: go.Figure,
    x: list,
    y: list,
    name: str,
    color: str,
    smoothing: float,
    dash: str | None = None,
    group: str | None = None,
) -> None:
    """Raw points faint and thin, the smoothed line bold, under one legend entry."""
    group = group or name
    if smoothing > 0:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines",
                name=f"{name} (raw)",
                legendgroup=group,
                showlegend=False,
                line=dict(color=_faint(color), width=1, dash=dash),
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=smooth(y, smoothing),
            mode="lines+markers" if len(x) < 40 else "lines",
            name=name,
            legendgroup=group,
            line=dict(color=color, width=2.5, dash=dash),
            marker=dict(size=5),
        )
    )


def curves(table: Table, metric: str, smoothing: float, x_title: str, best: int | None = None) -> go.Figure:
    """Training and validation `metric` ("loss" or "accuracy") over epochs or steps."""
    fig = go.Figure()
    if table.has(metric):
        add_series(fig, table.x, getattr(table, metric), "training", TRAIN_COLOR, smoothing)
    val = getattr(table, f"val_{metric}", None)
    if val is not None and table.has(f"val_{metric}"):
        add_series(fig, table.x, val, "validation", VAL_COLOR, smoothing)
    if best is not None:
        fig.add_vline(
            x=best,
            line=dict(color="#1a9e77", dash="dot"),
            annotation_text=f"best epoch {best}",
            annotation_position="top left",
        )
    return _layout(fig, metric.capitalize(), x_title, metric)


def compare(tables: dict[str, Table], metric: str, smoothing: float, x_title: str) -> go.Figure:
    """One colour per run; training solid, validation dashed."""
    fig = go.Figure()
    for i, (name, table) in enumerate(tables.items()):
        color = PALETTE[i % len(PALETTE)]
        if table.has(metric):
            add_series(fig, table.x, getattr(table, metric), f"{name} training", color, smoothing, group=name)
        if table.has(f"val_{metric}"):
            add_series(
                fig,
                table.x,
                getattr(table, f"val_{metric}"),
                f"{name} validation",
                color,
                smoothing,
                dash="dash",
                group=name,
            )
    return _layout(fig, f"{metric.capitalize()}: runs compared", x_title, metric)


def probability_bars(probs: dict[str, float]) -> go.Figure:
    """Horizontal bars of class probabilities, 0-100%."""
    names = list(probs)
    fig = go.Figure(
        go.Bar(
            x=[probs[n] for n in names],
            y=names,
            orientation="h",
            text=[f"{probs[n]:.1%}" for n in names],
            textposition="auto",
            marker_color=TRAIN_COLOR,
        )
    )
    fig.update_layout(
        height=60 + 28 * len(names),
        margin=dict(l=10, r=10, t=10, b=10),
        xaxis_range=[0, 1],
        xaxis_tickformat=".0%",
    )
    return fig


def lr_sweep(lrs: list[float], losses: list[float], smoothed: list[float], suggestion: float) -> go.Figure:
    """Loss against learning rate (log axis): raw faint, smoothed bold, the suggestion marked."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=lrs, y=losses, mode="lines", name="loss (raw)", line=dict(color=_faint(TRAIN_COLOR)))
    )
    fig.add_trace(
        go.Scatter(x=lrs, y=smoothed, mode="lines", name="loss", line=dict(color=TRAIN_COLOR, width=3))
    )
    fig.add_vline(
        x=suggestion,
        line=dict(color=VAL_COLOR, dash="dash"),
        annotation_text=f"suggested {suggestion:.1e}",
        annotation_position="top left",
    )
    _layout(fig, "Loss while the learning rate rises", "learning rate", "loss")
    fig.update_xaxes(type="log", exponentformat="e")
    finite = [v for v in smoothed if v == v]
    if finite:  # past divergence the loss explodes: keep the interesting part in view
        fig.update_yaxes(range=[min(finite) * 0.9, min(max(finite), 3 * min(finite)) * 1.1])
    return fig


def confusion(counts: np.ndarray, classes: list[str], normalized: bool) -> go.Figure:
    """(C, C) counts, rows true and columns predicted, as a heatmap; normalized: shares of each row."""
    cm = metrics.normalize_rows(counts) if normalized else counts
    text = [[f"{v:.0%}" if normalized else f"{int(v)}" for v in row] for row in cm]
    fig = go.Figure(
        go.Heatmap(
            z=cm,
            x=classes,
            y=classes,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="true %{y}, predicted %{x}: %{text}",
        )
    )
    fig.update_layout(
        title="Confusion matrix",
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title="predicted",
        yaxis_title="true",
        yaxis_autorange="reversed",
    )
    return fig


def roc(curves: metrics.RocOneVsRest, classes: list[str]) -> go.Figure:
    """ROC curves: for the second class when there are two, else one per class against the rest."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line=dict(dash="dot", color="#adb5bd"),
            name="guessing",
            hoverinfo="skip",
        )
    )
    shown = [1] if len(classes) == 2 else range(len(classes))
    for k in shown:
        fpr, tpr, area = curves[k]
        if area is None:
            continue
        label = f"{classes[k]} (AUC {area:.3f})" if len(classes) > 2 else f"AUC {area:.3f}"
        fig.add_trace(go.Scatter(x=list(fpr), y=list(tpr), mode="lines", name=label))
    title = "ROC curve" + (
        f", one class vs the rest (macro AUC {curves.macro_auc:.3f})"
        if len(classes) > 2 and curves.macro_auc is not None
        else f" for '{classes[1]}'"
        if len(classes) == 2
        else ""
    )
    fig.update_layout(
        title=title,
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
    )
    return fig


def class_counts(counts: dict[str, int], title: str = "Images per class") -> go.Figure:
    """Bars of images per class, the counts written above them."""
    fig = go.Figure(
        go.Bar(
            x=list(counts),
            y=list(counts.values()),
            text=list(counts.values()),
            textposition="outside",
            marker_color=TRAIN_COLOR,
        )
    )
    fig.update_layout(
        title=title, height=300, margin=dict(l=10, r=10, t=40, b=10), yaxis_title="images", xaxis_title=None
    )
    return fig


def answer_bars(probs: dict[str, float], large: bool = False) -> go.Figure:
    """probability_bars for the Try it page: the top class in colour, the others grey, in classes'
    order (bars do not jump between pictures); large: bigger type and bars for a projector."""
    fig = probability_bars(probs)
    top = max(probs, key=probs.get)
    font = 26 if large else 18
    fig.update_traces(
        marker_color=[TRAIN_COLOR if n == top else "#adb5bd" for n in probs],
        textfont_size=font,
        textposition=["inside" if probs[n] > 0.25 else "outside" for n in probs],
        insidetextanchor="end",
        cliponaxis=False,
    )
    fig.update_layout(
        height=80 + (70 if large else 48) * len(probs),
        font_size=font,
        yaxis=dict(autorange="reversed", tickfont_size=font),
        xaxis_tickfont_size=font * 2 // 3,
        bargap=0.25,
    )
    return fig


# A filled x (Vega's "cross" is a plus), in Vega's unit symbol coordinates.
X_SHAPE = "M-1,-0.6L-0.6,-1L0,-0.4L0.6,-1L1,-0.6L0.4,0L1,0.6L0.6,1L0,0.4L-0.6,1L-1,0.6L-0.4,0Z"
MAP_SELECTION = "picked"  # the map's click selection: [{"index": i}] of the clicked point


def embedding_map(
    xy: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    names: list[str],
    thumbs: list[str] | None = None,
) -> alt.Chart:
    """The map of what the network sees (a Vega-Lite chart, since Plotly's hover cannot show
    pictures): one point per picture at its (N, 2) t-SNE position xy, coloured by true class
    (PALETTE, in classes' order), a circle when the prediction (argmax of probs (N, C)) is right
    and an x when wrong. The hover shows the picture's thumbnail (thumbs: data URIs, one per point;
    vega-tooltip draws the field `image`), file name, truth and answer. A click selects one point:
    the selection MAP_SELECTION holds its `index` in xy."""
    import pandas as pd

    predicted = probs.argmax(axis=1)
    right = predicted == labels
    n = len(xy)
    df = pd.DataFrame(
        {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "index": np.arange(n),
            "file": list(names),
            "truth": [classes[k] for k in labels],
            "outcome": np.where(right, "right", "wrong"),
            "answer": [f"{classes[predicted[i]]} ({probs[i, predicted[i]]:.0%})" for i in range(n)],
        }
    )
    if thumbs is not None and len(thumbs) == n:
        df["image"] = list(thumbs)
    picked = alt.selection_point(name=MAP_SELECTION, fields=["index"], on="click", toggle=False)
    view = alt.selection_interval(name="view", bind="scales")  # pan and zoom
    tooltip = alt.ExprRef(
        "{title: datum.file, image: datum.image, 'really': datum.truth, 'the model says': datum.answer}"
    )
    hidden = alt.Axis(title=None, labels=False, ticks=False, domain=False, grid=False)
    return (
        alt.Chart(df, title="Map of what the network sees", height=560)
        .mark_point(filled=True, tooltip=tooltip)
        .encode(
            # t-SNE's axes mean nothing: no scale, no equal aspect
            x=alt.X("x:Q", axis=hidden, scale=alt.Scale(zero=False)),
            y=alt.Y("y:Q", axis=hidden, scale=alt.Scale(zero=False)),
            color=alt.Color(
                "truth:N",
                title="Really",
                scale=alt.Scale(
                    domain=list(classes), range=[PALETTE[k % len(PALETTE)] for k in range(len(classes))]
                ),
                legend=alt.Legend(orient="bottom"),
            ),
            shape=alt.Shape(
                "outcome:N",
                title="The model is",
                scale=alt.Scale(domain=["right", "wrong"], range=["circle", X_SHAPE]),
                legend=alt.Legend(orient="bottom"),
            ),
            # the clicked point grows; crosses are a little bigger than circles, to be seen
            size=alt.SizeValue(
                50,
                condition=[
                    {"param": MAP_SELECTION, "empty": False, "value": 300},
                    {"test": "datum.outcome == 'wrong'", "value": 90},
                ],
            ),
            opacity=alt.condition("datum.outcome == 'right'", alt.value(0.75), alt.value(1.0)),
        )
        .add_params(picked, view)
        .configure_view(fill="#f8f9fa", stroke=None)
    )
