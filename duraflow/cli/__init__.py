"""The ``duraflow`` command. Each subcommand lives in its own module and adds its parser here.

Subcommand modules expose ``add_parser(subparsers)``, which registers the subcommand and sets
``func`` (``args -> exit code``) on it, so this module stays a thin dispatcher and importing it
never loads the operator, the admin client or the runtime before they are needed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from duraflow.cli import control, demo, instances, operator, prune, system, worker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="duraflow", description="Durable workflows for Python")
    parser.add_argument("--log-level", default=os.environ.get("DURAFLOW_LOG_LEVEL", "warning"))
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo, worker, operator, instances, control, prune, system):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
