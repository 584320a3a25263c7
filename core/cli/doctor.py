"""python -m core doctor: backend, versions, devices, precision and XLA choices, a short speed test."""

from __future__ import annotations

import argparse
import sys

from core.cli.args import positive
from core.cli.console import start_keras
from core.config import JIT_CHOICES, PRECISIONS
from core.doctor import PRECISION_ALIASES


def cmd_doctor(args: argparse.Namespace) -> int:
    from core.doctor import doctor

    start_keras(args)
    problems = doctor(args.precision, args.xla, args.steps, out=lambda line: print(line, flush=True))
    if problems:
        print("error: " + " ".join("; ".join(problems).split()), file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    doc = sub.add_parser(
        "doctor",
        help="backend, versions, devices, precision and XLA choices, a short speed test; exit 1 if something is wrong",
    )
    doc.add_argument(
        "--precision",
        choices=[*PRECISIONS, *PRECISION_ALIASES],
        default="auto",
        help="the precision to check (default auto: what a run would pick)",
    )
    doc.add_argument("--xla", choices=JIT_CHOICES, default="auto")
    doc.add_argument(
        "--steps", type=positive, default=10, help="timed training steps per device (default 10)"
    )
    doc.set_defaults(func=cmd_doctor)
