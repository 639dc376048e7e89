"""``duraflow worker``: what a worker pod runs.

It loads the user's app (``--app module:callable``, called with the runtime to register
orchestrations and activities), connects, serves ``/metrics``, ``/healthz`` and ``/readyz``
on one port, and runs until SIGTERM or SIGINT. Configuration and its checks live in
``worker_config``; see docs/worker.md for the table, the probes and the shutdown semantics.

Shutdown, in order: ``/readyz`` turns 503 and both dispatchers stop fetching; work in
flight gets ``--grace-ms`` to finish; what is still running then is released to the other
workers at once (abandoned without counting an attempt, so nobody waits for a lock
timeout); the database connections close; the process exits 0 — without waiting for a sync
activity still running in a thread (see ``_exit``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Any

from duraflow.cli.worker_config import ConfigError, WorkerConfig, add_arguments, load_config
from duraflow.runtime.activity_threads import busy_threads

log = logging.getLogger("duraflow.worker")
#: Time allowed after the grace period to release leftover work and close connections.
SHUTDOWN_MARGIN_S = 3.0
CONFIG_ERROR = 2


def add_parser(sub: Any) -> None:
    worker = sub.add_parser(
        "worker", help="run a worker (what a pod runs) until SIGTERM",
        description="Run a Duraflow worker. Every flag can also be set by the environment "
                    "variable shown; a flag wins.")
    add_arguments(worker)
    worker.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args)
        options = _options(config)
    except ConfigError as exc:
        print(f"duraflow worker: error: {exc}", file=sys.stderr, flush=True)
        return CONFIG_ERROR
    configure_logging(config.log_level, config.log_format)
    code = asyncio.run(_serve(config, options))
    return _exit(code)


def _options(config: WorkerConfig) -> Any:
    from duraflow.runtime.options import RuntimeOptions

    try:
        return RuntimeOptions(
            orchestration_concurrency=config.orchestration_concurrency,
            worker_concurrency=config.worker_concurrency,
            worker_node_id=config.worker_node_id,
            build_id=config.build_id,
            build_auto_promote=config.build_auto_promote,
            worker_tag_filter=config.tag_filter,
            max_sessions_per_runtime=config.max_sessions,
            session_idle_timeout_ms=config.session_idle_timeout_ms,
            orchestrator_lock_timeout_ms=config.orchestrator_lock_timeout_ms,
            worker_lock_timeout_ms=config.worker_lock_timeout_ms,
            worker_heartbeat_interval_ms=config.heartbeat_interval_ms,
            retention_ms=config.retention_ms,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def configure_logging(level: str, fmt: str) -> None:
    """Everything to stderr, one record per line: plain text, or one JSON object per line
    (``--log-format json``) for log collectors that parse fields."""
    from duraflow.runtime.tracing import FieldsFormatter, JsonFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         FieldsFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    if level != "debug":
        # asyncpg's pool warns (with a traceback) on every failed reconnect while the
        # database is down; the runtime's database health reports the outage once instead.
        logging.getLogger("asyncpg").setLevel(logging.ERROR)


async def _serve(config: WorkerConfig, options: Any) -> int:
    from duraflow.cli.worker_service import WorkerService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    service = WorkerService(config, options)
    try:
        await service.start()
    except ConfigError as exc:
        log.error("%s", exc)
        await service.close(0)
        return CONFIG_ERROR
    await stop.wait()
    log.info("%s received: stopping; running work has %.1f s to finish",
             received[0], config.grace_ms / 1000)
    try:
        await asyncio.wait_for(service.close(config.grace_ms),
                               config.grace_ms / 1000 + SHUTDOWN_MARGIN_S)
    except TimeoutError:
        log.warning("shutdown did not finish within the grace period plus %.0f s; exiting "
                    "anyway (what was not released resumes after its lock timeout)",
                    SHUTDOWN_MARGIN_S)
    log.info("duraflow worker %s stopped", service.worker_node_id)
    return 0


def _exit(code: int) -> int:
    """Return ``code``, or end the process at once if activity threads are still running.

    A sync activity runs in a worker thread, which Python cannot interrupt. Activity threads
    are daemon threads, so they do not hold up the exit, but a thread an application started
    itself may be joined at exit, and Kubernetes kills a pod that overruns its termination
    grace period. By the time we get here the activity's work item has been released to the
    other workers and the database connections are closed, so nothing durable depends on the
    thread: its result would be dropped anyway. So after saying so and flushing the logs we
    leave with ``os._exit``, which does not wait for any of them.
    """
    stuck = [t for t in threading.enumerate()
             if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    running = busy_threads() + len(stuck)
    if not running:
        return code
    log.info("exiting with %d activity thread(s) still running; their work was released "
             "to other workers", running)
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
