"""Where the workspace lives, its standard sub-folders, the names things are saved under, and
clearing what killed processes left."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.errors import DataError

ENV_VAR = "CONVNET_WORKSPACE"
SUBDIRS = ("datasets", "splits", "cache", "features", "runs", "augment", "uploads", "downloads")
# Every temporary file or folder in the workspace is named TEMP_PREFIX + "<pid>-...", so the
# next process to open the workspace can tell a dead writer's leftovers from a live one's.
TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".deleted-"
# Names of saved things (datasets, splits, augmentation settings): they become file names, so
# no slashes, no leading dot or space (hidden files, temporaries), at most 64 characters.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")

_cleaned: set[Path] = set()


def workspace_dir(override: str | os.PathLike | None = None) -> Path:
    """The workspace root: `override`, else $CONVNET_WORKSPACE, else ./workspace (created).

    The first time a process opens a workspace, temporaries left by killed processes go."""
    root = Path(override or os.environ.get(ENV_VAR) or "workspace").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    if root not in _cleaned:
        _cleaned.add(root)
        clean_leftovers(root)
    return root


def subdir(name: str, workspace: str | os.PathLike | None = None) -> Path:
    """One of the standard sub-folders (see SUBDIRS), created on first use."""
    if name not in SUBDIRS:
        raise ValueError(f"unknown workspace folder {name!r}; expected one of {SUBDIRS}")
    path = workspace_dir(workspace) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_name(name: str, what: str = "name") -> str:
    """`name` without surrounding spaces when it is allowed: letters, digits, space, - _ . (at most
    64, starting with a letter or digit); DataError naming `what` otherwise."""
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise DataError(
            f"{what} {name!r} is not allowed: use letters, digits, spaces, - _ . "
            "(max 64, starting with a letter or digit)"
        )
    return name


def pid_alive(pid: int | None) -> bool:
    """True when a process with this pid exists and is not a zombie."""
    if not pid or pid < 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (dead, not yet reaped by its parent) still answers signal 0.
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    return True


def temp_name(label: str) -> str:
    """A temporary name owned by this process: '.tmp-<pid>-<label>'."""
    return f"{TEMP_PREFIX}{os.getpid()}-{label}"


def make_temp_dir(parent: str | os.PathLike, label: str) -> Path:
    """A new hidden folder in `parent` owned by this process (readable by all, like its result)."""
    path = Path(tempfile.mkdtemp(prefix=temp_name(label) + "-", dir=parent))
    path.chmod(0o755)  # mkdtemp makes it owner-only; what is built in it is not private
    return path


@contextlib.contextmanager
def temp_file(data: bytes, suffix: str, workspace: str | os.PathLike | None = None) -> Iterator[Path]:
    """`data` written to a new temporary file in the workspace's uploads folder, removed on exit
    (or by the next process to open the workspace, should this one be killed)."""
    fd, name = tempfile.mkstemp(prefix=temp_name("upload-"), suffix=suffix, dir=subdir("uploads", workspace))
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        path.unlink(missing_ok=True)


def temp_owner(name: str) -> int | None:
    """The pid in a temporary's name, or None when the name is not one of ours."""
    if not name.startswith(TEMP_PREFIX):
        return None
    pid = name[len(TEMP_PREFIX) :].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def clean_leftovers(root: str | os.PathLike) -> list[Path]:
    """Remove temporaries whose process is gone (half-written models, features, cache entries,
    unpacked zips, demo generations) and half-deleted runs; returns what was removed."""
    root = Path(root)
    folders = [root / name for name in SUBDIRS]
    runs = root / "runs"
    with contextlib.suppress(OSError):
        folders += [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    removed = []
    for folder in folders:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for path in entries:
            owner = temp_owner(path.name)
            dead_temp = owner is not None and owner != os.getpid() and not pid_alive(owner)
            if dead_temp or (folder == runs and path.name.startswith(TRASH_PREFIX)):
                _remove(path)
                removed.append(path)
    return removed
