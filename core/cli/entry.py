"""The whole command line: the parser made of every command group, and main() with its exit codes
(0 ok, 1 the work failed or the set-up is broken, 2 bad input, 130 interrupted)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import data, demo, doctor, predict, runs, train
from core.cli import report as report_command
from core.cli.args import Parser
from core.cli.console import SetupError, one_line
from core.data import DataError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m core", description="Convnet Workbench command line")
    parser.add_argument("--workspace", help="workspace folder (default: $CONVNET_WORKSPACE or ./workspace)")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (demo, data, train, runs, predict, doctor):  # the order --help lists them in
        group.register(sub)
    report_command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, ValueError, OSError, KeyError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 2
    except SetupError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
