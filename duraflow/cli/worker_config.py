"""``duraflow worker`` configuration: flags over ``DURAFLOW_*`` environment variables.

A pod is configured through env (the operator's StatefulSet sets them), a developer through
flags; a flag wins over its variable. Every value is checked before anything starts, and a
bad one stops the worker with ONE line naming the flag or variable it came from and what is
wrong with it (``ConfigError``; the command exits 2), because a pod log is read by someone
who did not write the configuration and a traceback would hide the one fact that matters.

The parser takes every value as text (no argparse ``type=``) so that a flag and its env
variable are validated by the same code and produce the same message.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from duraflow.core.limits import MAX_TAG_NAME_BYTES, MAX_WORKER_TAGS
from duraflow.providers.items import WorkerTagFilter

DEFAULT_METRICS_PORT = 9464
DEFAULT_GRACE_MS = 25_000
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class ConfigError(ValueError):
    """A configuration value the worker cannot run with; ``str()`` is the one-line reason."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its flag, its env variable, and the ``dest`` argparse stores it in."""

    flag: str
    env: str
    help: str

    @property
    def dest(self) -> str:
        return "worker_" + self.flag.lstrip("-").replace("-", "_")


SETTINGS = (
    Setting("--database-url", "DURAFLOW_DATABASE_URL",
            "postgresql://user@host:5432/db, or a SQLite file path"),
    Setting("--schema", "DURAFLOW_SCHEMA", "PostgreSQL schema (default: public)"),
    Setting("--app", "DURAFLOW_APP",
            "module:callable that receives the runtime and registers on it"),
    Setting("--worker-node-id", "DURAFLOW_WORKER_NODE_ID",
            "this worker's identity (default: $POD_NAME, then $HOSTNAME)"),
    Setting("--tags", "DURAFLOW_TAGS",
            f"comma-separated activity tags to take (at most {MAX_WORKER_TAGS})"),
    Setting("--include-untagged", "DURAFLOW_INCLUDE_UNTAGGED",
            "with --tags: also take untagged activities (true/false)"),
    Setting("--orchestration-concurrency", "DURAFLOW_ORCHESTRATION_CONCURRENCY",
            "turns run at once (0: run no orchestrations)"),
    Setting("--worker-concurrency", "DURAFLOW_WORKER_CONCURRENCY",
            "activities run at once (0: run no activities)"),
    Setting("--max-sessions", "DURAFLOW_MAX_SESSIONS", "activity sessions held at most"),
    Setting("--session-idle-timeout-ms", "DURAFLOW_SESSION_IDLE_TIMEOUT_MS",
            "release a session idle this long"),
    Setting("--orchestrator-lock-timeout-ms", "DURAFLOW_ORCHESTRATOR_LOCK_TIMEOUT_MS",
            "instance lock timeout (a crashed worker's turns resume after it)"),
    Setting("--worker-lock-timeout-ms", "DURAFLOW_WORKER_LOCK_TIMEOUT_MS",
            "activity lock timeout (a crashed worker's activities resume after it)"),
    Setting("--grace-ms", "DURAFLOW_GRACE_MS",
            f"on SIGTERM, let running work finish this long (default {DEFAULT_GRACE_MS})"),
    Setting("--metrics-port", "DURAFLOW_METRICS_PORT",
            f"port of /metrics, /healthz, /readyz (default {DEFAULT_METRICS_PORT}; 0: off)"),
    Setting("--metrics-host", "DURAFLOW_METRICS_HOST",
            "address the metrics port binds (default 0.0.0.0)"),
    Setting("--log-level", "DURAFLOW_LOG_LEVEL", f"{' | '.join(LOG_LEVELS)} (default info)"),
    Setting("--log-format", "DURAFLOW_LOG_FORMAT", "text | json (default text)"),
)
_BY_FLAG = {s.flag: s for s in SETTINGS}


SWITCHES = ("--include-untagged",)  # given alone they mean "true"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for setting in SETTINGS:
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if setting.flag in SWITCHES else {}
        parser.add_argument(setting.flag, dest=setting.dest, default=None, metavar="VALUE",
                            help=f"{setting.help} [env {setting.env}]", **extra)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    database_url: str
    schema: str | None
    app: str
    register: Callable[[Any], Any]
    worker_node_id: str | None
    tag_filter: WorkerTagFilter
    orchestration_concurrency: int | None
    worker_concurrency: int | None
    max_sessions: int | None
    session_idle_timeout_ms: int | None
    orchestrator_lock_timeout_ms: int | None
    worker_lock_timeout_ms: int | None
    grace_ms: int
    metrics_port: int
    metrics_host: str
    log_level: str
    log_format: str


class _Reader:
    """Looks a setting up (flag, then env) and says where it came from in errors."""

    def __init__(self, args: argparse.Namespace, env: Mapping[str, str]) -> None:
        self._args = args
        self._env = env

    def raw(self, flag: str) -> tuple[str | None, str]:
        setting = _BY_FLAG[flag]
        value = getattr(self._args, setting.dest, None)
        if value is not None:
            return str(value), flag
        if setting.env in self._env:
            return self._env[setting.env], setting.env
        return None, flag

    def text(self, flag: str) -> str | None:
        value, _ = self.raw(flag)
        value = value.strip() if value is not None else None
        return value or None

    def integer(self, flag: str, minimum: int, maximum: int | None = None) -> int | None:
        value, source = self.raw(flag)
        if value is None or not value.strip():
            return None
        try:
            number = int(value.strip())
        except ValueError:
            raise ConfigError(f"{source} must be a whole number, got {value!r}") from None
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{source} must be {bound}, got {number}")
        return number

    def boolean(self, flag: str) -> bool:
        value, source = self.raw(flag)
        text = (value or "").strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{source} must be true or false, got {value!r}")

    def choice(self, flag: str, choices: tuple[str, ...], default: str) -> str:
        value, source = self.raw(flag)
        text = (value or "").strip().lower() or default
        text = {"warn": "warning"}.get(text, text)
        if text not in choices:
            raise ConfigError(f"{source} must be one of {', '.join(choices)}, got {value!r}")
        return text


def parse_tags(value: str | None, source: str, include_untagged: bool) -> WorkerTagFilter:
    """``a,b`` → ``WorkerTagFilter("tags", ("a", "b"))`` (``default_and`` with untagged)."""
    if value is None or not value.strip():
        return WorkerTagFilter("default_only")
    tags = [t.strip() for t in value.split(",")]
    if any(not t for t in tags):
        raise ConfigError(f"{source} has an empty tag in {value!r} (tags are comma-separated)")
    if len(tags) > MAX_WORKER_TAGS:
        raise ConfigError(f"{source} lists {len(tags)} tags; a worker takes at most "
                          f"{MAX_WORKER_TAGS}")
    duplicates = sorted({t for t in tags if tags.count(t) > 1})
    if duplicates:
        raise ConfigError(f"{source} lists {', '.join(duplicates)} more than once")
    for tag in tags:
        if len(tag.encode()) > MAX_TAG_NAME_BYTES:
            raise ConfigError(f"{source}: tag {tag[:40]!r}... is longer than "
                              f"{MAX_TAG_NAME_BYTES} bytes")
    return WorkerTagFilter("default_and" if include_untagged else "tags", tuple(tags))


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
    env = os.environ if env is None else env
    r = _Reader(args, env)
    database_url = r.text("--database-url")
    if database_url is None:
        raise ConfigError("no database: set DURAFLOW_DATABASE_URL or pass --database-url")
    app, app_source = r.raw("--app")
    if app is None or not app.strip():
        raise ConfigError("no app: set DURAFLOW_APP or pass --app module:callable")
    node_id = r.text("--worker-node-id") or env.get("POD_NAME") or env.get("HOSTNAME") or None
    tags, tags_source = r.raw("--tags")
    return WorkerConfig(
        database_url=database_url,
        schema=r.text("--schema"),
        app=app.strip(),
        register=load_app(app.strip(), app_source),
        worker_node_id=node_id,
        tag_filter=parse_tags(tags, tags_source, r.boolean("--include-untagged")),
        orchestration_concurrency=r.integer("--orchestration-concurrency", 0),
        worker_concurrency=r.integer("--worker-concurrency", 0),
        max_sessions=r.integer("--max-sessions", 1),
        session_idle_timeout_ms=r.integer("--session-idle-timeout-ms", 1),
        orchestrator_lock_timeout_ms=r.integer("--orchestrator-lock-timeout-ms", 1),
        worker_lock_timeout_ms=r.integer("--worker-lock-timeout-ms", 1),
        grace_ms=_default(r.integer("--grace-ms", 0), DEFAULT_GRACE_MS),
        metrics_port=_default(r.integer("--metrics-port", 0, 65535), DEFAULT_METRICS_PORT),
        metrics_host=r.text("--metrics-host") or "0.0.0.0",
        log_level=r.choice("--log-level", LOG_LEVELS, "info"),
        log_format=r.choice("--log-format", LOG_FORMATS, "text"),
    )


def _default(value: int | None, default: int) -> int:
    return default if value is None else value
