"""What the commands share at run time: starting Keras quietly, progress on the terminal, errors as one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable


class SetupError(Exception):
    """This machine's set-up, not the input, is wrong (e.g. the Keras backend cannot start): exit 1."""


def start_keras(args: argparse.Namespace) -> None:
    """Import Keras and TensorFlow set up to share the GPU (memory growth), quietly unless --verbose."""
    from core.devices import configure_tensorflow

    try:
        configure_tensorflow(quiet=not getattr(args, "verbose", False))
    except (ImportError, ValueError) as e:  # ValueError: Keras does not know the backend
        backend = os.environ.get("KERAS_BACKEND")
        raise SetupError(
            f"Keras cannot start{f' its {backend} backend' if backend else ''}: {e}"
            + ("" if getattr(args, "verbose", False) else " (--verbose shows more)")
        ) from None


def progress_counter(label: str) -> Callable[[int, int], None] | None:
    """A one-line progress counter on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label}: {done}/{total}", end=end, file=sys.stderr, flush=True)

    return report


def progress_line(message: str) -> None:
    """A progress message on stderr, rewritten in place, only when stderr is a terminal."""
    if sys.stderr.isatty():
        print(f"\r{message}", end="", file=sys.stderr, flush=True)


def one_line(e: BaseException) -> str:
    """An exception as one line for people."""
    if isinstance(e, OSError) and e.strerror:
        text = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    elif isinstance(e, KeyError) and e.args:
        text = str(e.args[0])
    else:
        text = str(e)
    return " ".join(text.split()) or type(e).__name__
