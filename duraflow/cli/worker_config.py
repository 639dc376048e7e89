"""``duraflow worker`` configuration: flags over ``DURAFLOW_*`` environment variables.

A pod is configured through env (the operator's StatefulSet sets them), a developer through
flags; a flag wins over its variable. The settings, their flags, defaults and parsing are
rows of ``duraflow.config.SETTINGS``; this module adds what only a worker needs: importing
the app and turning the tag settings into a ``WorkerTagFilter``. Every value is checked before
anything starts, and a bad one stops the worker with ONE line naming the flag or variable it
came from and what is wrong with it (``ConfigError``; the command exits 2), because a pod log
is read by someone who did not write the configuration and a traceback would hide the one
fact that matters.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from duraflow.config import ConfigError, add_flags, given_flags, read_settings
from duraflow.providers.items import WorkerTagFilter

__all__ = ["ConfigError", "WorkerConfig", "add_arguments", "load_app", "load_config"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, "worker")


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    database_url: str
    schema: str | None
    pg_pool_max: int
    app: str
    register: Callable[[Any], Any]
    worker_node_id: str | None
    build_id: str | None
    build_auto_promote: bool
    tag_filter: WorkerTagFilter
    orchestration_concurrency: int
    worker_concurrency: int
    max_sessions: int
    session_idle_timeout_ms: int
    orchestrator_lock_timeout_ms: int
    worker_lock_timeout_ms: int
    heartbeat_interval_ms: int
    retention_ms: int | None
    grace_ms: int
    metrics_port: int
    metrics_host: str
    log_level: str
    log_format: str


def load_app(spec: str, source: str) -> Callable[[Any], Any]:
    """Import ``module:attr`` (``attr`` defaults to ``register``) and check it is callable."""
    module_name, _, attr = spec.partition(":")
    attr = attr or "register"
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise ConfigError(f"{source} must be module:callable, got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:  # as `python -m` would
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"{source}: cannot import module {module_name!r}: "
                          f"{type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{source}: module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{source}: {spec!r} is a {type(target).__name__}, not a callable "
                          "that registers on the runtime")
    return target  # type: ignore[no-any-return]


def load_config(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> WorkerConfig:
    """Read and check every setting; ``ConfigError`` on the first bad one."""
    values = read_settings("worker", os.environ if env is None else env,
                           given_flags(args, "worker"))
    if values["database_url"] is None:
        raise ConfigError("no database: set DURAFLOW_DATABASE_URL or pass --database-url")
    if values["app"] is None:
        raise ConfigError("no app: set DURAFLOW_APP or pass --app module:callable")
    tags = values["tags"]
    mode = "default_and" if values["include_untagged"] else "tags"
    return WorkerConfig(
        database_url=values["database_url"],
        schema=values["schema"] or None,
        pg_pool_max=values["pg_pool_max"],
        app=values["app"],
        register=load_app(values["app"], values.source("app")),
        worker_node_id=values["worker_node_id"],
        build_id=values["build_id"] or None,
        build_auto_promote=values["build_auto_promote"],
        tag_filter=WorkerTagFilter(mode, tags) if tags else WorkerTagFilter("default_only"),
        orchestration_concurrency=values["orchestration_concurrency"],
        worker_concurrency=values["worker_concurrency"],
        max_sessions=values["max_sessions"],
        session_idle_timeout_ms=values["session_idle_timeout_ms"],
        orchestrator_lock_timeout_ms=values["orchestrator_lock_timeout_ms"],
        worker_lock_timeout_ms=values["worker_lock_timeout_ms"],
        heartbeat_interval_ms=values["heartbeat_interval_ms"],
        retention_ms=values["retention"],
        grace_ms=values["grace_ms"],
        metrics_port=values["metrics_port"],
        metrics_host=values["metrics_host"],
        log_level=values["log_level"],
        log_format=values["log_format"],
    )
