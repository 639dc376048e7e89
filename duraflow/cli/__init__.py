"""The ``duraflow`` command. Each subcommand lives in its own module and adds its parser here.

Subcommand modules expose ``add_parser(subparsers)``, which registers the subcommand and sets
``func`` (``args -> exit code``) on it, so this module stays a thin dispatcher and importing it
never loads the operator, the admin client or the runtime before they are needed. Flags that
are settings come from ``duraflow.config``, which the command feeds with its environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from duraflow.cli import (
    builds,
    control,
    demo,
    instances,
    operator,
    prune,
    replay_check,
    schedules,
    system,
    worker,
)
from duraflow.config import ConfigError, add_flags, given_flags, read_settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="duraflow", description="Durable workflows for Python")
    add_flags(parser, "duraflow")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (demo, worker, operator, instances, control, prune, schedules, system, builds,
                   replay_check):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = read_settings("duraflow", os.environ, given_flags(args, "duraflow"))
    except ConfigError as exc:
        print(f"duraflow: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings["log_level"].upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
