"""Is a process still the one we started? Pids with their start times, and the workers this process started.

A pid alone can be given to another process once its owner ends; the start time recorded beside it
(process_start) tells them apart. Worker processes started here are tracked (remember_child), so
their exit is noticed and they are reaped, not left as zombies, even where /proc is missing.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from core.workspace import pid_alive

# Several threads (browser tabs) may launch workers at once.
_children: dict[int, subprocess.Popen] = {}
_children_lock = threading.Lock()
_boot_id: str | None = None


def process_start(pid: int | None) -> str | None:
    """What tells process `pid` from a later one given the same pid: the boot id and its start
    time in clock ticks after boot (/proc/<pid>/stat field 22). None where /proc cannot tell."""
    global _boot_id
    if not pid:
        return None
    try:
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
    if _boot_id is None:
        try:
            _boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            _boot_id = ""
    return f"{_boot_id}:{start}" if _boot_id else start


def process_alive(pid: int | None, start: str | None = None) -> bool:
    """The process `pid` runs (not a zombie) and, when its start time was recorded, is that process."""
    if not pid:
        return False
    with _children_lock:
        child = _children.get(pid)
        if child is not None:
            return child.poll() is None  # also reaps it
    if not pid_alive(pid):
        return False
    if start:
        now = process_start(pid)
        if now is not None and now != start:
            return False  # the pid was given to another process since
    return True


def remember_child(proc: subprocess.Popen) -> None:
    """Track a process started here (forgetting those that have ended)."""
    with _children_lock:
        for pid, child in list(_children.items()):
            if child.poll() is not None:
                del _children[pid]
        _children[proc.pid] = proc


def forget_child(pid: int) -> None:
    """Stop tracking a process started here (one that was never really started, in tests)."""
    with _children_lock:
        _children.pop(pid, None)
