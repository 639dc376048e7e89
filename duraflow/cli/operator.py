"""``duraflow operator``: the Kubernetes operator (``duraflow_operator``, built on kopf).

Configured from the environment (``DURAFLOW_DATABASE_URL``, ``DURAFLOW_SCHEMA``,
``DURAFLOW_WATCH_NAMESPACES``, ``DURAFLOW_OPERATOR_METRICS_PORT``); flags override. The
Kubernetes API comes from the in-cluster service account or ``KUBECONFIG``. The operator
package is imported only when this subcommand runs, so other subcommands never load kopf.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("operator", help="run the Kubernetes operator until SIGTERM")
    parser.add_argument("--database-url", default=None,
                        help="postgresql://... (default: $DURAFLOW_DATABASE_URL)")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema ($DURAFLOW_SCHEMA)")
    parser.add_argument("--namespaces", default=None,
                        help="comma-separated namespaces to watch; empty = all "
                             "($DURAFLOW_WATCH_NAMESPACES)")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="/metrics and /healthz port, 0 = off "
                             "($DURAFLOW_OPERATOR_METRICS_PORT, default 9465)")
    parser.add_argument("--kube-url", default=None,
                        help="API server URL instead of in-cluster config or KUBECONFIG")
    parser.add_argument("--no-leader-election", action="store_true",
                        help="act without holding the Lease (one replica only!)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from duraflow_operator import OperatorSettings, run_operator

    overrides: dict[str, object] = {
        "database_url": args.database_url,
        "schema": args.schema,
        "metrics_port": args.metrics_port,
        "kube_url": args.kube_url,
    }
    if args.namespaces is not None:
        overrides["namespaces"] = tuple(n.strip() for n in args.namespaces.split(",") if n.strip())
    if args.no_leader_election:
        overrides["leader_election"] = False
    try:
        settings = OperatorSettings.from_env(os.environ, **overrides)
    except ValueError as error:
        raise SystemExit(str(error)) from error

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_operator(settings, stop_flag=stop)

    asyncio.run(main())
    return 0
