"""python -m core demo: generate the demo dataset into the workspace if missing."""

from __future__ import annotations

import argparse


def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import ensure_demo

    path = ensure_demo(args.workspace)
    print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="generate the demo dataset into the workspace if missing")
    demo.set_defaults(func=cmd_demo)
