"""The Data page's check for copied pictures: validation or test pictures that copy a training
picture (leakage), copies inside one subset, copies filed under two classes; the pictures side by
side, and leaving the later copies out of the split to save."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import streamlit as st

from core import data, dupes
from dashboard import marks, ui

SHOWN = 8  # pairs and groups shown as pictures; the table lists them all
THUMB = 128
PER_ROW = 6  # pictures per row when each has its mark under it
SUBSET_NAMES = {"train": "training", "val": "validation", "test": "test"}


def split_key(split: data.Split) -> str:
    """Which split a report belongs to: its folder and its files per subset."""
    return hashlib.sha1(json.dumps([split.dataset_root, split.subsets]).encode()).hexdigest()


def match_words(c: dupes.Copy) -> str:
    if c.identical:
        return "identical"
    if c.distance <= 6:
        return "the same picture, saved differently"
    return "a close copy (resized, cropped or edited)"


def caption(p: dupes.Picture, classes: list[str]) -> str:
    return f"{SUBSET_NAMES[p.subset]} · {classes[p.label]} · {p.path}"


def pictures_row(
    root: str, pictures: list[dupes.Picture], classes: list[str], saved: data.Split | None, where: str
) -> None:
    """The pictures side by side, each captioned with its subset, class and file; with a saved
    split, each with its mark (wrong label / leave out) for a cleaned version."""
    images = ui.pictures(root, tuple(p.path for p in pictures), THUMB)
    if len(images) != len(pictures):  # an unreadable file would shift the captions
        return
    if saved is None:
        st.image(images, caption=[caption(p, classes) for p in pictures], width=THUMB)
        return
    cols = st.columns(min(len(pictures), PER_ROW))
    for i, (image, p) in enumerate(zip(images, pictures)):
        with cols[i % len(cols)]:
            st.image(image, caption=caption(p, classes), width=THUMB)
            marks.mark_widget(saved, p.path, key=f"dupes_mark_{where}_{p.path}")


def copies_table(report: dupes.DupesReport) -> pd.DataFrame:
    """One row per copy: leakage first, then copies inside each subset."""
    classes, rows = report.classes, []
    copies = [("leakage", c) for c in report.leaks()]
    copies += [
        (f"inside {SUBSET_NAMES[s]}", c) for s in report.checked for g in report.within(s) for c in g.copies()
    ]
    for kind, c in copies:
        rows.append(
            {
                "kind": kind,
                "picture": c.picture.path,
                "in": SUBSET_NAMES[c.picture.subset],
                "class": classes[c.picture.label],
                "copy of": c.original.path,
                "which is in": SUBSET_NAMES[c.original.subset],
                "its class": classes[c.original.label],
                "match": match_words(c),
                "difference": c.distance,
            }
        )
    return pd.DataFrame(rows)


def show_report(report: dupes.DupesReport, root: str, saved: data.Split | None) -> None:
    leaks, conflicts = report.leaks(), report.label_conflicts()
    inside = {s: report.within(s) for s in report.checked}
    a, b, c, d = st.columns(4)
    a.metric("Pictures checked", f"{sum(report.checked.values()):,}")
    b.metric(
        "Copies of training pictures",
        len(leaks),
        help="Validation or test pictures that copy a picture the model trains on (or, for test, a validation picture).",
    )
    c.metric("Copies inside a set", sum(len(g.pictures) - 1 for groups in inside.values() for g in groups))
    d.metric(
        "Copies with two classes", len(conflicts), help="The same picture filed under different classes."
    )
    if report.failed:
        st.warning(f"{len(report.failed)} pictures could not be read and were not checked.")
    if not leaks and not any(inside.values()):
        st.success("No copies found: every picture differs from every other.")
        return
    if leaks:
        st.warning(
            f"{len(leaks)} validation or test pictures are copies of pictures used earlier. The model "
            "has seen them, so its score on them says little: leave them out when you save the split."
        )
        for n, leak in enumerate(leaks[:SHOWN]):
            flag = (
                " The classes differ: one of the two is probably filed in the wrong class."
                * leak.labels_differ
            )
            st.markdown(
                f"**{SUBSET_NAMES[leak.picture.subset].capitalize()}** `{leak.picture.path}` and "
                f"**{SUBSET_NAMES[leak.original.subset]}** `{leak.original.path}`: {match_words(leak)}.{flag}"
            )
            pictures_row(root, [leak.picture, leak.original], report.classes, saved, f"leak{n}")
    for subset, groups in inside.items():
        if groups:
            some = f"{len(groups)} group{'s' * (len(groups) > 1)}"
            with st.expander(f"{some} of copies inside the {SUBSET_NAMES[subset]} set"):
                for n, g in enumerate(groups[:SHOWN]):
                    if g.labels_differ:
                        st.caption("Filed under different classes: one of them is probably wrong.")
                    pictures_row(root, g.pictures, report.classes, saved, f"{subset}{n}")
    with st.expander("Every copy as a table"):
        st.dataframe(copies_table(report), hide_index=True, key="dupes_table")


def run_check(split: data.Split) -> dupes.DupesReport:
    bar = st.progress(0.0, text="Looking for copies...")

    def report(stage: str, done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{stage}: {done:,} of {total:,}")

    try:
        return dupes.check(split, progress=report)
    finally:
        bar.empty()


def dupes_ui(split: data.Split) -> data.Split:
    """Look for copied pictures in `split` on request; returns the split to save (without the
    later copies in validation and test when the user asks)."""
    st.subheader("Copies and leakage")
    st.caption(
        "Photo collections often hold the same picture twice, resized, re-saved or slightly cropped. "
        "A test picture that copies a training picture makes the test score look better than it is."
    )
    key = split_key(split)
    if st.button("Look for copies", key="dupes_go", icon=":material/content_copy:"):
        with ui.writing("store the decoded pictures"):
            st.session_state["dupes_reports"] = {key: run_check(split)}
    report = st.session_state.get("dupes_reports", {}).get(key)
    if report is None:
        st.caption(
            f"Decodes every picture once at {dupes.CHECK_SIZE[0]}x{dupes.CHECK_SIZE[1]} (kept for training "
            "at that size) and compares them all: a few seconds per thousand pictures."
        )
        return split
    saved = data.saved_twin(split)
    show_report(report, split.dataset_root, saved)
    if saved is not None:
        marks.pending_ui(saved)
    elif report.leaks() or report.label_conflicts():
        st.caption(
            "Save the split to mark copies with a wrong label or to leave them out: the marks "
            "make a cleaned version of it, and your files stay as they are."
        )
    drop = report.to_drop()
    if not drop:
        return split
    counts = " and ".join(f"{len(v)} {SUBSET_NAMES[s]}" for s, v in drop.items())
    if not st.checkbox(
        f"Leave the later copies out when saving: {counts} pictures",
        key="dupes_drop",
        help="Training stays as it is; of each copied picture the first is kept. No file is deleted.",
    ):
        return split
    cleaned = data.drop_files(split, drop)
    sizes = ", ".join(f"{SUBSET_NAMES[s]} {len(cleaned.files(s)):,}" for s in data.SUBSETS)
    st.caption(f"The saved split will hold {sizes} pictures.")
    return cleaned
