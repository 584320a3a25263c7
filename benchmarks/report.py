"""Shared by the benchmark scripts: machine facts and writing a section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
from collections.abc import Callable
from pathlib import Path

from core.devices import cpu_name

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\nSpeed measured side by side in one run. Re-run with the command shown in each section.\n"
)


def machine() -> str:
    """One line: CPU model, cores, memory, Python and library versions, date."""
    cpu = cpu_name()
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024**2:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = []
    for mod in ("tensorflow", "keras", "numpy"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}, no GPU; Python {platform.python_version()}, "
        f"{', '.join(versions)}; {_dt.date.today().isoformat()}"
    )


def write_section(title: str, body: str, doc: Path = DOC) -> Path:
    """Insert or replace the section `## title` (up to the next `## `) in docs/benchmarks.md."""
    text = doc.read_text() if doc.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text.rstrip() + "\n")
    return doc


def machine_and_load() -> str:
    """The closing "Machine: ..." line of a section, with the 1-minute load average at the end."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"Machine: {machine()}; 1-min load average at the end {load:.2f}."


def print_or_write(doc: str | None, title: str, measure: Callable[[], str]) -> None:
    """The command line of a benchmark that writes one section: run `measure` (the section body),
    print it, and with --write put it in docs/benchmarks.md under `## title`."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = ap.parse_args()
    section = measure()
    print(section)
    if args.write:
        print(f"wrote {write_section(title, section)}")
