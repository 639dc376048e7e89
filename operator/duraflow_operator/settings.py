"""The operator's configuration, read from the environment (``duraflow operator`` flags override).

Kept in one frozen value so every loop and handler reads the same numbers, and tests build
one directly instead of patching the environment. Which variables and flags exist, their
defaults and how their text is read are rows of Duraflow's one settings table
(``duraflow.read_settings("operator", ...)``), shared with ``duraflow worker`` and the admin
commands: a boolean or a list means the same thing to all of them, and docs/operator.md shows
the same table. Only tuning knobs that no variable sets (intervals, size bounds) are written
here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from duraflow import read_settings

GROUP = "duraflow.io"
VERSION = "v1alpha1"
FINALIZER = "duraflow.io/finalizer"
MANAGED_BY = "duraflow-operator"
#: The table's defaults for the operator's rows (no environment: nothing is read here).
_DEFAULTS = read_settings("operator", env={})
DEFAULT_METRICS_PORT: int = _DEFAULTS["metrics_port"]


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """Everything the operator can be told. Times in seconds."""

    database_url: str
    schema: str | None = _DEFAULTS["schema"]
    #: PostgreSQL connections of the operator's pool (plus one for LISTEN).
    pg_pool_max: int = _DEFAULTS["pg_pool_max"]
    #: Namespaces to watch; empty = all namespaces (cluster-wide).
    namespaces: tuple[str, ...] = _DEFAULTS["namespaces"]
    metrics_port: int = DEFAULT_METRICS_PORT  # 0 = no metrics/health server
    metrics_host: str = "0.0.0.0"
    #: API server URL to use instead of in-cluster config or KUBECONFIG (tests, local runs).
    kube_url: str | None = _DEFAULTS["kube_url"]
    #: A bearer token file to send with ``kube_url`` (re-read as it changes).
    kube_token_file: str | None = _DEFAULTS["kube_token_file"]
    #: How often a token file (the ServiceAccount's projected token) is re-read.
    kube_token_reread_s: float = 60.0
    leader_election: bool = _DEFAULTS["leader_election"]
    lease_name: str = "duraflow-operator"
    lease_namespace: str = _DEFAULTS["lease_namespace"]
    #: client-go's leaseDuration / renewDeadline / retryPeriod: a leader that has not
    #: renewed within the deadline steps down before anyone may take over (the duration).
    lease_duration_s: float = 15.0
    lease_renew_deadline_s: float = 10.0
    lease_renew_s: float = 2.0
    #: The Lease holder's name: ``$POD_NAME`` or ``$HOSTNAME`` when read from the environment.
    identity: str = field(default_factory=lambda: f"pid-{os.getpid()}")
    #: At most one status write per CR per this interval (terminal phases go at once).
    status_min_interval_s: float = 2.0
    #: How often the worker registry is read (live workers, registered orchestrations).
    registry_interval_s: float = 2.0
    #: Backoff of a WorkerPool whose child the API server refused (4xx), or that hit an
    #: API error: the first retry after ``child_retry_min_s``, doubling up to the max.
    child_retry_min_s: float = 5.0
    child_retry_max_s: float = 300.0
    #: How often the WorkerPools are listed to forget those deleted unseen (a watch that
    #: was down delivers no DELETED event for them).
    pool_resync_s: float = 60.0
    #: Parallel database reads/API writes of the status sync.
    sync_concurrency: int = 16
    #: Bounds of what is copied into a CR (etcd objects must stay small).
    max_output_bytes: int = 4096
    max_error_bytes: int = 4096
    max_custom_status_bytes: int = 1024
    max_input_bytes: int = 256 * 1024

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        flags: Mapping[str, str] | None = None,
        **overrides: object,
    ) -> OperatorSettings:
        """Settings from the environment and ``flags`` (setting name → the flag's text, as
        ``duraflow operator`` passes them); ``overrides`` (typed, not None) win over both.
        A bad value raises ``duraflow.ConfigError`` (a ``ValueError``) naming its source."""
        env = os.environ if env is None else env
        values: dict[str, object] = dict(read_settings("operator", env, flags))
        if values["identity"] is None:
            del values["identity"]  # the field's default
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if not settings.database_url:
            raise ValueError(
                "duraflow operator: set DURAFLOW_DATABASE_URL or --database-url "
                "(postgresql://... or a SQLite file path)"
            )
        return settings
