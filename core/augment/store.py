"""Augmentation settings the user saved by name: workspace/augment/<name>.json, presets protected."""

from __future__ import annotations

import os
from pathlib import Path

from core.augment.presets import PRESETS
from core.augment.settings import AugmentConfig
from core.fileio import atomic_write_json, read_json
from core.workspace import NAME_PATTERN, check_name, subdir


def _is_preset(name: str) -> bool:
    """Preset names are protected case-insensitively (file systems may ignore case)."""
    return name.lower() in {p.lower() for p in PRESETS}


def _config_path(name: str, workspace: str | os.PathLike | None) -> Path:
    """workspace/augment/<name>.json."""
    return subdir("augment", workspace) / f"{check_name(name, 'config name')}.json"


def save_config(name: str, config: AugmentConfig, workspace: str | os.PathLike | None = None) -> Path:
    """Save `config` as workspace/augment/<name>.json (atomic; overwrites a saved config, never a preset)."""
    name = check_name(name, "config name")
    if _is_preset(name):
        raise ValueError(f"{name!r} is a built-in preset name; choose another name")
    return atomic_write_json(_config_path(name, workspace), {"name": name, "config": config.to_dict()})


def load_config(name: str, workspace: str | os.PathLike | None = None) -> AugmentConfig:
    """A preset or a saved config by name; KeyError if there is none."""
    if name in PRESETS:
        return PRESETS[name]
    path = _config_path(name, workspace)
    if not path.exists():
        raise KeyError(f"no augmentation config named {name!r}")
    data = read_json(path)
    return AugmentConfig.from_dict(data["config"] if isinstance(data, dict) and "config" in data else data)


def list_configs(workspace: str | os.PathLike | None = None) -> list[str]:
    """Preset names (in PRESETS order) then saved names, sorted."""
    saved = sorted(
        p.stem
        for p in subdir("augment", workspace).glob("*.json")
        if NAME_PATTERN.match(p.stem) and not _is_preset(p.stem)
    )
    return [*PRESETS, *saved]
