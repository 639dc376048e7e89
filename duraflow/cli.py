"""The ``duraflow`` command: ``demo`` and ``worker``.

``worker`` runs a runtime in the foreground until SIGTERM/SIGINT, with orchestrations and
activities registered by the user's ``module:function`` (called with the runtime). It is
what a worker pod runs; a graceful stop lets in-flight work finish within the grace period.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any


def _load_registrar(spec: str) -> Callable[[Any], None]:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    registrar = getattr(module, attr or "register", None)
    if not callable(registrar):
        raise SystemExit(f"duraflow worker: {spec!r} does not name a callable register(runtime)")
    return registrar  # type: ignore[no-any-return]


async def _run_worker(args: argparse.Namespace) -> int:
    from duraflow.providers.factory import open_provider
    from duraflow.runtime.options import RuntimeOptions
    from duraflow.runtime.runtime import AsyncRuntime

    registrar = _load_registrar(args.app)
    provider = await open_provider(args.database_url, args.schema)
    options = RuntimeOptions(
        orchestration_concurrency=args.orchestration_concurrency,
        worker_concurrency=args.worker_concurrency,
        worker_node_id=args.worker_node_id or os.environ.get("POD_NAME"),
        orchestrator_lock_timeout_ms=args.orchestrator_lock_timeout_ms,
        worker_lock_timeout_ms=args.worker_lock_timeout_ms,
    )
    runtime = AsyncRuntime(provider, options)
    registrar(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    print(f"duraflow worker {runtime.worker_node_id} ready", flush=True)
    await stop.wait()
    await runtime.shutdown(args.grace_ms)
    await provider.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="duraflow", description="Durable workflows for Python")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run sample workflows on embedded SQLite")
    demo.add_argument("--db", help="SQLite file to use (default: a fresh temporary file)")
    worker = sub.add_parser("worker", help="run a worker until SIGTERM")
    worker.add_argument("--database-url", default=os.environ.get("DURAFLOW_DATABASE_URL"),
                        required="DURAFLOW_DATABASE_URL" not in os.environ)
    worker.add_argument("--schema", default=os.environ.get("DURAFLOW_SCHEMA"))
    worker.add_argument("--app", required=True, help="module:function that registers handlers")
    worker.add_argument("--orchestration-concurrency", type=int, default=None)
    worker.add_argument("--worker-concurrency", type=int, default=None)
    worker.add_argument("--worker-node-id", default=None)
    worker.add_argument("--orchestrator-lock-timeout-ms", type=int, default=None)
    worker.add_argument("--worker-lock-timeout-ms", type=int, default=None)
    worker.add_argument("--grace-ms", type=int, default=10_000)
    parser.add_argument("--log-level", default=os.environ.get("DURAFLOW_LOG_LEVEL", "warning"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "demo":
        from duraflow.demo import run_demo

        return run_demo(args.db)
    return asyncio.run(_run_worker(args))


if __name__ == "__main__":
    sys.exit(main())
