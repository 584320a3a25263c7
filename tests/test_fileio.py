"""core.fileio: writing through a temp file beside the target."""

from __future__ import annotations

import pytest

from core.fileio import replacing
from core.workspace import TEMP_PREFIX


def test_replacing_renames_the_temp_file_over_the_target(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("old")
    with replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(TEMP_PREFIX) and tmp.suffix == ".keras"
        tmp.write_text("new")
        assert target.read_text() == "old"  # readers see the old file until the block ends
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_replacing_leaves_the_target_alone_and_removes_the_temp_file_on_failure(tmp_path):
    target = tmp_path / "features.npy"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="half"), replacing(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("half way")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["features.npy"]
    with pytest.raises(FileNotFoundError), replacing(tmp_path / "new.npy"):
        pass  # a writer that made no file is an error, not an empty target
    assert not (tmp_path / "new.npy").exists()
