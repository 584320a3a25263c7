"""Where the workspace lives and its standard sub-folders."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "CONVNET_WORKSPACE"
SUBDIRS = ("datasets", "splits", "cache", "features", "runs", "augment", "uploads")


def workspace_dir(override: str | os.PathLike | None = None) -> Path:
    """The workspace root: `override`, else $CONVNET_WORKSPACE, else ./workspace (created)."""
    root = Path(override or os.environ.get(ENV_VAR) or "workspace").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str, workspace: str | os.PathLike | None = None) -> Path:
    """One of the standard sub-folders (see SUBDIRS), created on first use."""
    if name not in SUBDIRS:
        raise ValueError(f"unknown workspace folder {name!r}; expected one of {SUBDIRS}")
    path = workspace_dir(workspace) / name
    path.mkdir(parents=True, exist_ok=True)
    return path
