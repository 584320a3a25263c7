"""The Evaluate page's map of what the network sees: choose the pictures, draw the map (kept in the
run's folder), click a point to see the picture, where the network looked, and what it said.

Session state: ``map_open`` (the expander), ``map_subset`` (the radio) and one chart selection per
map, ``chart_key(...)``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import charts, data, embedding, tryit
from core.images import ImageError
from dashboard import marks, ui

OPEN_KEY = "map_open"
SUBSETS = {"test": "Test pictures", "all": "Every picture of the split"}
LAYOUT_SECONDS_PER_PICTURE = 0.006  # t-SNE on a 2-core CPU: about 18 s for 3,000 pictures
STAGES = {
    "decoding": "Reading the pictures",
    "predicting": "Scoring the pictures",
    "features": "Looking at the pictures through the network",
}
HOW_TO_READ = (
    "Each point is a picture, placed by what the network sees in it: pictures it finds alike sit close "
    "together. Colour is the real class; a cross marks a picture the model got wrong. A tight island per "
    "colour means the network tells the classes apart; crosses inside another colour's island are "
    "pictures it mistakes for that class, often mislabelled or unusual ones. Only closeness means "
    "something: the axes and the distances between islands do not."
)


def chart_key(run_id: str, which: str, subset: str) -> str:
    """The chart's widget key: one selection per map, so another map never shows a stale click."""
    return f"map_chart_{run_id}_{which}_{subset}"


def _draw(run: dict, which: str, subset: str, split: data.Split | None) -> embedding.EmbeddingMap | None:
    """The compute button and its progress; the new map, or None (not asked, or a sentence shown)."""
    if split is not None:
        count = sum(len(split.subsets.get(s, [])) for s in embedding.SUBSETS[subset])
        seconds = 5 + count * LAYOUT_SECONDS_PER_PICTURE
        st.caption(
            f"Drawing the map of {count:,} pictures takes about {seconds:.0f} seconds on a 2-core computer, "
            "plus a look at each picture through the network (longer for big networks). The map is kept, "
            "so it is drawn only once for this model."
        )
    if not st.button("Draw the map", key="map_go", type="primary", icon=":material/scatter_plot:"):
        return None
    bar = st.progress(0.0)

    def report(stage: str, done: int, total: int) -> None:
        if stage == "layout":
            bar.progress(1.0, text="Laying the pictures out on the map (t-SNE)...")
        else:
            bar.progress(done / max(total, 1), text=f"{STAGES.get(stage, stage)}: {done:,} of {total:,}")

    try:
        found = embedding.embed_run(run["id"], which, subset, progress=report)
    except ValueError as e:
        ui.show_error(e)
        return None
    except OSError as e:
        st.error(ui.write_error_text(e, "draw the map"))
        return None
    finally:
        bar.empty()
    return found


def _clicked(event) -> int | None:
    """The map index of the clicked point, from the chart's selection ({"picked": [{"index": i}]})."""
    selection = event.get("selection", {}) if event else {}
    for point in reversed(selection.get(charts.MAP_SELECTION) or []):
        index = point.get("index") if isinstance(point, dict) else None
        if isinstance(index, list):
            index = index[0] if index else None
        if index is not None:
            return int(index)
    return None


def picture_ui(
    found: embedding.EmbeddingMap, i: int, run: dict, which: str, split: data.Split | None = None
) -> None:
    """Picture i of the map beside its Grad-CAM overlay, with the truth and the model's answer;
    with the run's saved split, its mark (wrong label / leave out) for a cleaned version."""
    true, pred = found.classes[found.labels[i]], found.classes[found.predicted[i]]
    prob = found.probs[i, found.predicted[i]]
    name = Path(found.paths[i]).name
    verdict = "right" if true == pred else "wrong"
    st.markdown(
        f"**{name}**: really **{true}**; the model says **{pred}** ({prob:.0%} sure), so it is {verdict}."
    )
    loaded = ui.run_model(run, which)
    if loaded is None:
        return
    try:
        answer = tryit.answer(loaded, found.file(i))
    except (ImageError, OSError) as e:
        st.warning(f"{name} could not be read any more: {getattr(e, 'strerror', None) or e}")
        return
    left, right = st.columns(2)
    left.image(answer.picture, caption="The picture as the model sees it")
    right.image(answer.overlay, caption=f"Where the network looked to say '{answer.label}': warm colours")
    if split is not None:
        marks.mark_widget(split, found.paths[i], key=f"map_mark_{found.paths[i]}")


def map_ui(run: dict, which: str, split: data.Split | None) -> None:
    """The expander "Map of what the network sees" for one run and model file (`split`: the run's
    saved split, None when it is gone: its size for the time estimate, its pictures to mark)."""
    # A keyed expander that tracks its state: it stays open when the page above it changes (scores
    # appear after the map scored the model), and nothing is read or computed while it is closed.
    box = st.expander(
        "Map of what the network sees", icon=":material/scatter_plot:", key=OPEN_KEY, on_change="rerun"
    )
    with box:
        if not box.open:
            return
        st.caption(HOW_TO_READ)
        subset = st.radio(
            "Pictures", list(SUBSETS), format_func=SUBSETS.get, horizontal=True, key="map_subset"
        )
        try:
            found = embedding.cached_map(run["id"], which, subset)
        except (ValueError, OSError):
            found = None  # the split or model is gone: _draw says why when asked
        if found is None:
            found = _draw(run, which, subset, split)
            if found is None:
                return
        took = sum(found.seconds.values())
        st.caption(
            f"{len(found.paths):,} pictures ({int((~found.right).sum()):,} wrong), drawn in {took:.0f} s. "
            "Hover over a point for its picture, file and answer; click it to see the picture larger "
            "with where the network looked. Drag to move, scroll to zoom, double-click to reset."
        )
        event = st.altair_chart(
            charts.embedding_map(
                found.xy,
                found.labels,
                found.probs,
                found.classes,
                [Path(p).name for p in found.paths],
                found.thumbs,
            ),
            key=chart_key(run["id"], which, subset),
            on_select="rerun",
            selection_mode=charts.MAP_SELECTION,
            width="stretch",
        )
        i = _clicked(event)
        if i is not None and 0 <= i < len(found.paths):
            picture_ui(found, i, run, which, split)
