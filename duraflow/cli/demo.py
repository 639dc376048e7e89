"""``duraflow demo``: sample workflows on embedded SQLite, printed as a table."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run sample workflows on embedded SQLite")
    demo.add_argument("--db", help="SQLite file to use (default: a fresh temporary file)")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from duraflow.demo import run_demo

    return run_demo(args.db)
