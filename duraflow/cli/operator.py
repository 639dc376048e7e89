"""``duraflow operator``: the Kubernetes operator (``duraflow_operator``, built on kopf).

Configured from the environment (``DURAFLOW_DATABASE_URL``, ``DURAFLOW_WATCH_NAMESPACES``,
...: the operator's rows of ``duraflow.config.SETTINGS``); flags override. The Kubernetes API
comes from the in-cluster service account or ``KUBECONFIG``. The operator package is imported
only when this subcommand runs, so other subcommands never load kopf.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

from duraflow.config import add_flags, given_flags


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "operator", help="run the Kubernetes operator until SIGTERM",
        description="Run the Duraflow operator. Every flag can also be set by the environment "
                    "variable shown; a flag wins.")
    add_flags(parser, "operator")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from duraflow_operator import LeaseLost, OperatorSettings, run_operator

    try:
        settings = OperatorSettings.from_env(os.environ, given_flags(args, "operator"))
    except ValueError as error:
        raise SystemExit(str(error)) from error

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_operator(settings, stop_flag=stop)

    try:
        asyncio.run(main())
    except LeaseLost as lost:  # stopped acting; Kubernetes restarts it as a follower
        raise SystemExit(f"duraflow operator: {lost}") from lost
    return 0
