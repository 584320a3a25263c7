"""The cleaning loop's widgets: mark a picture (keep it, its label is wrong, leave it out), the
pending marks with "Save as a new split version", and what a cleaned version changed.

Marks are saved on disk as soon as they are made (core.marks), so they outlive a reload. Session
state: ``marks_saved`` holds the last save's message until it is shown, ``marks_saves`` counts the
saves (part of the name box's key, so it starts afresh after each)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from core import data, marks
from core.data import cleaning
from dashboard import ui

KEEP = "Keep"
DROP = "Leave out"
RELABEL = "Label is wrong → "


def split_or_none(name: str | None) -> data.Split | None:
    """The saved split `name`, or None (with no message) when there is none by that name."""
    try:
        return data.load_split(name) if name else None
    except (data.DataError, OSError):
        return None


def _choice(mark: cleaning.Mark | None) -> str:
    if mark is None:
        return KEEP
    return DROP if mark.action == "drop" else RELABEL + mark.to


def _store(split: data.Split, file: str, key: str) -> None:
    """on_change of a mark widget: the new choice goes to disk at once."""
    choice = st.session_state[key]
    with ui.writing("save the mark"):
        if choice == KEEP:
            marks.keep(split.name, file)
        elif choice == DROP:
            marks.set_mark(split, cleaning.Mark(file, "drop"))
        else:
            marks.set_mark(split, cleaning.Mark(file, "relabel", choice.removeprefix(RELABEL)))


def mark_widget(split: data.Split, file: str, key: str) -> None:
    """Under a picture: Keep, 'Label is wrong → <class>' for each other class, or Leave out.

    `file` is relative to the split's dataset folder; `key` must be unique on the page (the same
    picture may be shown in two places: the widgets agree, the mark on disk is the truth)."""
    try:
        _, label = cleaning.locate(split, file)
    except data.DataError:
        st.caption(f"Not in split '{split.name}' any more.")
        return
    options = [KEEP, *(RELABEL + c for i, c in enumerate(split.classes) if i != label), DROP]
    current = _choice(marks.pending(split.name).get(file))
    st.session_state[key] = current if current in options else KEEP  # set before the widget is made
    st.selectbox(
        f"Mark {file}",
        options,
        key=key,
        on_change=_store,
        args=(split, file, key),
        label_visibility="collapsed",
    )


def _save(split: data.Split, name_key: str) -> None:
    """on_click of "Save as a new split version" (before the page is drawn, so the marks above
    show as saved)."""
    name = st.session_state.get(name_key) or ""
    try:
        path = marks.save(split.name, name)
    except (ValueError, OSError) as e:
        message = ui.write_error_text(e, "save the split") if isinstance(e, OSError) else str(e)
        st.session_state["marks_saved"] = ("error", message)
        return
    record = cleaning.read_record(path.stem)
    summary = record.summary() if record else ""
    st.session_state["marks_saved"] = (
        "success",
        f"Saved split '{path.stem}' ({summary}). Split '{split.name}' is unchanged. "
        "Choose the new one on the Train page to train on the cleaned pictures.",
    )
    # A new key: the name box starts again from the next free name.
    st.session_state["marks_saves"] = st.session_state.get("marks_saves", 0) + 1


def _forget(split: data.Split) -> None:
    with ui.writing("forget the marks"):
        marks.clear(split.name)


def pending_ui(split: data.Split) -> None:
    """The pictures marked so far in this split and "Save as a new split version"."""
    st.subheader("Marked pictures")
    kind, message = st.session_state.pop("marks_saved", (None, ""))
    if kind == "error":
        st.error(message)
    elif kind == "success":
        st.success(message, icon=":material/check_circle:")
        ui.link_to("Train", "Train on the cleaned split")
    changes = marks.changes(split.name)
    if not changes:
        st.caption(
            f"No pictures of split '{split.name}' are marked. Under a picture, choose "
            f"'{RELABEL.strip()} …' or '{DROP}'; the marks are kept until you save them here."
        )
        return
    st.dataframe(changes_table(changes), hide_index=True, key="marks_table")
    name_key = f"marks_name:{split.name}:{st.session_state.get('marks_saves', 0)}"
    left, middle, right = st.columns([3, 2, 1], vertical_alignment="bottom")
    left.text_input(
        "Name of the new split version",
        value=cleaning.default_name(split.name),
        key=name_key,
        help="A new split is saved under this name; the split the model was trained on stays as it is.",
    )
    middle.button(
        "Save as a new split version",
        key="marks_save",
        type="primary",
        icon=":material/save:",
        on_click=_save,
        args=(split, name_key),
    )
    right.button("Forget the marks", key="marks_clear", on_click=_forget, args=(split,))


def changes_table(changes: list[dict]) -> pd.DataFrame:
    """One row per change: picture, set, label now, what happens."""
    names = {"train": "training", "val": "validation", "test": "test"}
    return pd.DataFrame(
        [
            {
                "picture": c["file"],
                "set": names.get(c["subset"], c["subset"]),
                "labelled": c["from"],
                "change": "leave out" if c.get("dropped") else f"relabel as {c['to']}",
            }
            for c in changes
        ]
    )


def versions_ui() -> None:
    """On the Data page: a cleaned split version and what it changed, when there are any."""
    cleaned = [n for n in data.list_splits() if cleaning.read_record(n)]
    if not cleaned:
        return
    with st.expander(f"Cleaned split versions ({len(cleaned)})"):
        name = st.selectbox("Cleaned split", cleaned, format_func=cleaning.version_label, key="data_cleaned")
        record = cleaning.read_record(name)
        if record is None:
            return
        when = datetime.fromtimestamp(record.when).strftime("%Y-%m-%d %H:%M")
        st.caption(
            f"Made from split '{record.derived_from}' on {when}. Your picture files were not moved or changed."
        )
        st.dataframe(changes_table(record.changes), hide_index=True, key="data_cleaned_changes")
