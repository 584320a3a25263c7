"""Command line: python -m core {demo,data,train,lr-find,runs,predict,doctor} ... (see README for every command).

Bad input ends in one line, ``error: ...``, and exit code 2: argparse's own errors included, and
checked before anything slow happens (a folder scan, the TensorFlow import) or anything is created
(a run). TensorFlow's start-up lines stay off the terminal unless --verbose is given.

One module per command group (demo, data, train and lr-find, runs, predict, doctor), each with a
``register(sub)`` that adds its sub-commands; core.cli.entry puts them together and runs them.
"""

from core.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
