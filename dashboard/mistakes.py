"""Evaluate's mistakes: the class pairs the model mixes up most, and the most confident mistakes
(of all, or of one pair), each picture with a mark widget for cleaning the split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import data, evaluate, metrics
from core.images import ImageError, load_resized
from dashboard import marks

SHOWN = 12
COLUMNS = 4


def confused_pair_ui(result: evaluate.EvalResult) -> tuple[int, int] | None:
    """The most-confused table (true class, predicted as, pictures); the picked row's class indices."""
    pairs = metrics.most_confused(result.confusion, result.classes)
    if len(pairs) < 2:
        return None  # one pair is what the grid shows anyway
    st.markdown("**Classes the model mixes up most**")
    event = st.dataframe(
        pd.DataFrame(pairs, columns=["labelled", "model says", "pictures"]),
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key="eval_confused",
    )
    st.caption(
        "Pick a row to see only those mistakes; without a pick, the most confident ones of all are shown."
    )
    if not (event and event.selection.rows):
        return None
    true, pred, _ = pairs[event.selection.rows[0]]
    return result.classes.index(true), result.classes.index(pred)


def mistakes_ui(result: evaluate.EvalResult, split: data.Split | None) -> None:
    """The pictures the model got most confidently wrong, each with a mark widget when `split`
    (the split the run trained on) is still saved."""
    st.subheader("Mistakes")
    if not result.top_losses:
        st.success("No mistakes on the test pictures.")
        return
    st.caption(
        "The pictures the model got wrong while being most sure of itself: often mislabelled pictures, "
        "odd crops, or what the model has not learned yet. A wrong label or a picture that does not "
        "belong can be marked under it, and the marks saved as a cleaned version of the split."
    )
    pair = confused_pair_ui(result)
    if pair is None:
        indices = [int(item["index"]) for item in result.top_losses[:SHOWN]]
    else:
        indices = metrics.pair_mistakes(result.labels, result.probs, *pair, SHOWN)
    if split is None:
        st.caption(
            "The split this model was trained on is no longer saved, so its pictures cannot be marked."
        )
    cols = st.columns(COLUMNS)
    for n, i in enumerate(indices):
        path = result.paths[i]
        true, pred = result.classes[int(result.labels[i])], result.classes[int(result.probs[i].argmax())]
        try:
            thumb = load_resized(Path(result.dataset_root, path), (160, 160), "crop")
        except (ImageError, OSError):
            continue
        with cols[n % COLUMNS]:
            st.image(thumb, caption=f"labelled {true}, model says {pred} ({result.probs[i].max():.0%} sure)")
            if split is not None:
                marks.mark_widget(split, path, key=f"mark:mistakes:{split.name}:{path}")
