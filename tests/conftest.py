"""Shared fixtures: a temporary workspace, small image folders made on the fly, ../shared paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import imagefiles

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CONVNET_SHARED", REPO.parent / "shared"))
CATSDOGS = SHARED / "data" / "catsdogs"
WEIGHTS = SHARED / "weights"


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """An empty workspace, also set as $CONVNET_WORKSPACE for code that reads it."""
    ws = tmp_path / "workspace"
    ws.mkdir()
    monkeypatch.setenv("CONVNET_WORKSPACE", str(ws))
    return ws


def make_class_folders(root: Path, counts: dict[str, int], size=(48, 40)) -> Path:
    """root/<class>/<class>_<i>.png with distinct noisy images."""
    seed = 0
    for name, n in counts.items():
        for i in range(n):
            imagefiles.noisy(root / name / f"{name}_{i:03d}.png", size=size, seed=seed)
            seed += 1
    return root


def zipped_class_folders(root: Path, counts: dict[str, int]) -> bytes:
    """A zip of make_class_folders(root, counts), inside a top folder named like root."""
    import io
    import zipfile

    make_class_folders(root, counts)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in root.rglob("*.png"):
            z.write(f, f"{root.name}/{f.relative_to(root)}")
    return buf.getvalue()


@pytest.fixture
def class_folders(tmp_path) -> Path:
    """Three classes (a: 30, b: 20, c: 10 images), plus one hidden file and one text file."""
    root = make_class_folders(tmp_path / "shapes", {"a": 30, "b": 20, "c": 10})
    (root / "a" / ".DS_Store").write_bytes(b"junk")
    (root / "b" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def messy_folder(tmp_path) -> Path:
    """Two classes of good images, plus every kind of bad and odd file in class 'cats'."""
    root = make_class_folders(tmp_path / "messy", {"cats": 6, "dogs": 6})
    for name, make in {**imagefiles.BAD_MAKERS, **imagefiles.ODD_MAKERS}.items():
        make(root / "cats" / name)
    return root
