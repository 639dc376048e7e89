"""``duraflow worker``: runs a runtime in the foreground until SIGTERM/SIGINT, with
orchestrations and activities registered by the user's ``module:function`` (called with the
runtime). It is what a worker pod runs; a graceful stop lets in-flight work finish within
the grace period.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
from collections.abc import Callable
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


def add_parser(sub: Any) -> None:
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
    worker.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run_worker(args))
