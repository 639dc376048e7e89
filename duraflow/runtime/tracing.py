"""``init_tracing``: send Duraflow's orchestration and activity logs to a file.

Mirrors duroxide-python's function: the first call wins, a second raises, a bad path raises
naming the path. Logs are ordinary ``logging`` records under the ``duraflow`` logger, so an
application that configures logging itself does not need this at all.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

_FIELDS = ("instance_id", "execution_id", "orchestration_name", "orchestration_version",
           "activity_name", "activity_id", "worker_id")
_lock = threading.Lock()
_installed: logging.Handler | None = None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: UTC timestamp with milliseconds, level, logger (``target``),
    message, the instance/activity fields when the record has them, and any exception as
    one string (so a traceback never spans lines a log collector would split)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, tz=UTC)
        body = {
            "timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "target": record.name,
            "message": record.getMessage(),
        }
        body.update({f: getattr(record, f) for f in _FIELDS if hasattr(record, f)})
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body)


class FieldsFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{f}={getattr(record, f)}" for f in _FIELDS if hasattr(record, f))
        text = super().format(record)
        return f"{text} {fields}" if fields else text


def init_tracing(
    log_file: str, log_level: str | None = None, log_format: str | None = None
) -> None:
    global _installed
    with _lock:
        try:
            handler: logging.Handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        except OSError as exc:
            raise RuntimeError(f"Failed to open log file '{log_file}': {exc}") from None
        if _installed is not None:
            handler.close()
            raise RuntimeError("Failed to init tracing: tracing is already initialised")
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        level = logging.getLevelName((log_level or "info").upper())
        if not isinstance(level, int):
            handler.close()
            raise RuntimeError(f"Failed to init tracing: unknown log level {log_level!r}")
        root = logging.getLogger("duraflow")
        root.addHandler(handler)
        root.setLevel(level)
        _installed = handler


def configure_runtime_logging(log_level: str | None, log_format: str | None) -> None:
    """Apply ``RuntimeOptions(log_level=..., log_format=...)``: when the application has not
    configured the ``duraflow`` logger itself (no handler, and no ``init_tracing``), log to
    stderr at that level and format ("json", "pretty", else compact)."""
    root = logging.getLogger("duraflow")
    if log_level is not None:
        name = {"trace": "DEBUG", "warn": "WARNING"}.get(log_level.lower(), log_level.upper())
        level = logging.getLevelName(name)
        if not isinstance(level, int):
            raise ValueError(f"RuntimeOptions.log_level {log_level!r} is not a log level")
        root.setLevel(level)
    if log_format is None or root.handlers:
        return
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    elif log_format == "pretty":
        handler.setFormatter(FieldsFormatter(
            "%(asctime)s  %(levelname)-7s %(name)s\n    %(message)s"))
    else:
        handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
