"""The operator's configuration, read from the environment (``duraflow operator`` flags override).

Kept in one frozen value so every loop and handler reads the same numbers, and tests build
one directly instead of patching the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

GROUP = "duraflow.io"
VERSION = "v1alpha1"
FINALIZER = "duraflow.io/finalizer"
MANAGED_BY = "duraflow-operator"
DEFAULT_METRICS_PORT = 9465


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _namespaces(value: str | None) -> tuple[str, ...]:
    return tuple(ns.strip() for ns in (value or "").split(",") if ns.strip())


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """Everything the operator can be told. Times in seconds."""

    database_url: str
    schema: str | None = None
    #: Namespaces to watch; empty = all namespaces (cluster-wide).
    namespaces: tuple[str, ...] = ()
    metrics_port: int = DEFAULT_METRICS_PORT  # 0 = no metrics/health server
    metrics_host: str = "0.0.0.0"
    #: API server URL to use instead of in-cluster config or KUBECONFIG (tests, local runs).
    kube_url: str | None = None
    leader_election: bool = True
    lease_name: str = "duraflow-operator"
    lease_namespace: str = "default"
    lease_duration_s: float = 15.0
    lease_renew_s: float = 5.0
    identity: str = field(default_factory=lambda: os.environ.get("HOSTNAME")
                          or f"pid-{os.getpid()}")
    #: At most one status write per CR per this interval (terminal phases go at once).
    status_min_interval_s: float = 2.0
    #: How often the worker registry is read (live workers, registered orchestrations).
    registry_interval_s: float = 2.0
    #: Parallel database reads/API writes of the status sync.
    sync_concurrency: int = 16
    #: Bounds of what is copied into a CR (etcd objects must stay small).
    max_output_bytes: int = 4096
    max_error_bytes: int = 4096
    max_custom_status_bytes: int = 1024
    max_input_bytes: int = 256 * 1024

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, **overrides: object
    ) -> OperatorSettings:
        """Settings from ``DURAFLOW_*`` variables; ``overrides`` (not None) win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {
            "database_url": env.get("DURAFLOW_DATABASE_URL", ""),
            "schema": env.get("DURAFLOW_SCHEMA") or None,
            "namespaces": _namespaces(env.get("DURAFLOW_WATCH_NAMESPACES")),
            "metrics_port": int(env.get("DURAFLOW_OPERATOR_METRICS_PORT") or DEFAULT_METRICS_PORT),
            "kube_url": env.get("DURAFLOW_KUBE_URL") or None,
            "leader_election": _bool(env.get("DURAFLOW_LEADER_ELECTION"), True),
            "lease_namespace": env.get("POD_NAMESPACE") or env.get("DURAFLOW_LEASE_NAMESPACE")
            or "default",
        }
        if env.get("POD_NAME"):
            values["identity"] = env["POD_NAME"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if not settings.database_url:
            raise ValueError(
                "duraflow operator: set DURAFLOW_DATABASE_URL or --database-url "
                "(postgresql://... or a SQLite file path)"
            )
        return settings
