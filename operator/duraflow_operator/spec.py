"""The custom resources as Python values, and the checks the API server cannot make.

The CRD schemas reject most bad input at ``kubectl apply``; these checks repeat them (an
older CRD, which Helm never upgrades, lets them through) and add the ones a schema cannot
express: the input size in bytes, an ``instanceId`` changed after the instance started.
A rejected spec becomes a ``SpecError`` with a specific ``reason`` (a condition reason and
the reason of a Warning Event), never an exception that kopf would retry forever.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from duraflow import read_settings

DELETION_POLICIES = ("Cancel", "Purge", "Orphan")
MAX_NAME_BYTES = 256
MAX_INSTANCE_ID_BYTES = 512
MAX_TAGS = 5
#: A WorkerPool's name names its Service (a DNS-1035 label) and StatefulSet, whose pods get
#: ``controller-revision-hash: <statefulset>-<hash of <= 10 chars>`` (a label value, <= 63).
#: 40 leaves room for the per-build StatefulSets ``<pool>-<build>`` (build ids <= 11 chars).
MAX_POOL_NAME = 40
_POOL_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$")
_APP = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?$")
_TAG = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
#: A pool's build names its StatefulSet ``<pool>-<build>`` (a DNS-1123 label, and at most 52
#: characters so the controller can name pods) and is a build id of the engine: lowercase
#: letters, digits and '-', at most 11.
MAX_POOL_BUILD = 11
_POOL_BUILD = re.compile(r"^[a-z0-9]([-a-z0-9]{0,9}[a-z0-9])?$")
ROLLOUT_STRATEGIES = ("AllAtOnce", "Manual")


class SpecError(ValueError):
    """A spec the operator will not act on until it is changed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class OrchestrationEvent:
    name: str
    data: Any


@dataclass(frozen=True, slots=True)
class OrchestrationSpec:
    orchestration: str
    version: str | None
    input: Any
    instance_id: str
    events: tuple[OrchestrationEvent, ...]
    cancel: bool
    deletion_policy: str


def default_instance_id(namespace: str, name: str) -> str:
    """Stable, readable and unique per CR: namespace and name cannot contain '.' and '/'
    together ambiguously ('.' is allowed in names, so '/' separates)."""
    return f"{namespace}/{name}"


def _name(value: object, what: str, limit: int = MAX_NAME_BYTES) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError("InvalidSpec", f"{what} must be a non-empty string")
    if len(value.encode()) > limit:
        raise SpecError("InvalidSpec", f"{what} is over {limit} bytes")
    return value


def parse_orchestration(
    spec: Mapping[str, Any] | None,
    namespace: str,
    name: str,
    *,
    max_input_bytes: int,
    started_instance_id: str | None = None,
) -> OrchestrationSpec:
    """Validate an Orchestration spec; ``started_instance_id``: the id the instance was
    started with (from the status), which the spec may no longer change."""
    if not isinstance(spec, Mapping):
        raise SpecError("MissingOrchestration", "spec is missing: spec.orchestration is required")
    orchestration = spec.get("orchestration")
    if orchestration is None or orchestration == "":
        raise SpecError("MissingOrchestration", "spec.orchestration is required")
    orchestration = _name(orchestration, "spec.orchestration")
    version = spec.get("version")
    if version is not None and (not isinstance(version, str) or not _SEMVER.match(version)):
        raise SpecError("InvalidVersion", f"spec.version {version!r} is not a semantic version")
    policy = spec.get("deletionPolicy", "Cancel")
    if policy not in DELETION_POLICIES:
        raise SpecError(
            "InvalidDeletionPolicy",
            f"spec.deletionPolicy {policy!r} is not one of {', '.join(DELETION_POLICIES)}",
        )
    cancel = spec.get("cancel", False)
    if not isinstance(cancel, bool):
        raise SpecError("InvalidSpec", f"spec.cancel must be true or false, got {cancel!r}")
    input_value = spec.get("input")
    try:
        size = len(json.dumps(input_value).encode())
    except (TypeError, ValueError) as exc:
        raise SpecError("InvalidInput", f"spec.input is not JSON: {exc}") from exc
    if size > max_input_bytes:
        raise SpecError(
            "InputTooLarge",
            f"spec.input is {size} bytes encoded, over the limit of {max_input_bytes} bytes; "
            "pass a reference (e.g. an object-store URL) instead",
        )
    instance_id = spec.get("instanceId") or default_instance_id(namespace, name)
    instance_id = _name(instance_id, "spec.instanceId", MAX_INSTANCE_ID_BYTES)
    if started_instance_id is not None and instance_id != started_instance_id:
        raise SpecError(
            "InstanceIdChanged",
            f"spec.instanceId is immutable: the instance was started as "
            f"{started_instance_id!r}, the spec now says {instance_id!r}",
        )
    raw_events = spec.get("events") or []
    if not isinstance(raw_events, list):
        raise SpecError("InvalidEvents", "spec.events must be a list of {name, data}")
    events = []
    for index, entry in enumerate(raw_events):
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise SpecError("InvalidEvents", f"spec.events[{index}] needs a name")
        events.append(OrchestrationEvent(_name(entry["name"], f"spec.events[{index}].name"),
                                         entry.get("data")))
    return OrchestrationSpec(orchestration, version, input_value, instance_id, tuple(events),
                             cancel, policy)


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    """``spec.rollout``: when a new revision's build becomes current, and how long the
    revisions of the builds before it stay (docs/rollouts.md)."""

    strategy: str = "AllAtOnce"
    #: With ``Manual``: the build to make current (the others wait for it).
    promote: str | None = None
    #: Pods a draining revision keeps while executions are pinned to its build.
    draining_replicas: int = 1
    #: How long a revision with nothing pinned to it stays before it is deleted.
    drain_grace_s: int = 60


@dataclass(frozen=True, slots=True)
class WorkerPoolSpec:
    image: str
    replicas: int
    app: str
    secret_name: str
    secret_key: str
    schema: str | None
    tags: tuple[str, ...]
    include_untagged: bool
    orchestration_concurrency: int | None
    worker_concurrency: int | None
    max_sessions: int | None
    session_idle_timeout_s: int | None
    max_unavailable: int
    image_pull_policy: str | None
    service_account: str | None
    resources: Mapping[str, Any] | None
    env: tuple[Mapping[str, Any], ...]
    scheduling: Mapping[str, Any]
    #: ``duraflow worker --retention`` (``30d``): ended instances older than this are deleted.
    retention: str | None = None
    #: ``spec.buildId``; None: the build is a hash of image and app (``pool_build``).
    build_id: str | None = None
    rollout: RolloutSpec = RolloutSpec()

    @property
    def build(self) -> str:
        return self.build_id or code_build(self.image, self.app)


def code_build(image: str, app: str) -> str:
    """The default build of a pool: a hash of what defines its code, the image and the app,
    and of nothing else (resources, scheduling fields and replicas change in place). Pools
    of one app on one image share it, so a tagged activity of a pinned execution finds the
    pool of its tag. 10 hex digits: 40 bits, no collision in any real set of images."""
    return hashlib.sha256(f"{image}\n{app}".encode()).hexdigest()[:10]


def _pool_build(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _POOL_BUILD.match(value):
        raise SpecError("InvalidBuildId", (
            f"{what} {value!r} must be 1-{MAX_POOL_BUILD} lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (it names the StatefulSet "
            "<pool>-<build>)"))
    return value


def _rollout(value: object) -> RolloutSpec:
    if value is None:
        return RolloutSpec()
    if not isinstance(value, Mapping):
        raise SpecError("InvalidRollout", "spec.rollout must be an object")
    strategy = value.get("strategy", "AllAtOnce")
    if strategy not in ROLLOUT_STRATEGIES:
        raise SpecError("InvalidRollout", f"spec.rollout.strategy {strategy!r} is not one of "
                                          f"{', '.join(ROLLOUT_STRATEGIES)}")
    draining = _optional_int(value, "drainingReplicas", 0, "spec.rollout.")
    grace = _optional_int(value, "drainGraceSeconds", 0, "spec.rollout.")
    return RolloutSpec(strategy=str(strategy),
                       promote=_pool_build(value.get("promote"), "spec.rollout.promote"),
                       draining_replicas=_default(draining, 1), drain_grace_s=_default(grace, 60))


SCHEDULING_FIELDS = ("nodeSelector", "affinity", "tolerations", "topologySpreadConstraints",
                     "priorityClassName")


def _optional_int(spec: Mapping[str, Any], key: str, minimum: int,
                  prefix: str = "spec.") -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError("InvalidSpec", f"{prefix}{key} must be an integer >= {minimum}")
    return value


def _default(value: int | None, default: int) -> int:
    return default if value is None else value


def check_pool_name(name: str) -> None:
    """The CRD refuses such names; an API server with an older CRD (Helm never upgrades
    CRDs) lets them through, and the children would then fail half-way."""
    if len(name) > MAX_POOL_NAME or not _POOL_NAME.match(name):
        raise SpecError(
            "InvalidName",
            f"WorkerPool name {name!r} must be at most {MAX_POOL_NAME} characters of "
            "lowercase letters, digits and '-', starting with a letter and ending with a "
            "letter or digit (it names the pool's Service and StatefulSet)",
        )


def parse_worker_pool(spec: Mapping[str, Any] | None) -> WorkerPoolSpec:
    if not isinstance(spec, Mapping):
        raise SpecError("InvalidSpec", "spec is missing")
    image = spec.get("image")
    if not isinstance(image, str) or not image:
        raise SpecError("MissingImage", "spec.image is required")
    app = spec.get("app")
    if not isinstance(app, str) or not _APP.match(app):
        raise SpecError("InvalidApp", f"spec.app must be 'module:attr', got {app!r}")
    ref = spec.get("databaseSecretRef")
    if not isinstance(ref, Mapping) or not ref.get("name") or not ref.get("key"):
        raise SpecError("MissingDatabaseSecret", "spec.databaseSecretRef {name, key} is required")
    tags = spec.get("tags") or []
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise SpecError("TooManyTags", f"spec.tags takes at most {MAX_TAGS} tags")
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise SpecError("InvalidTag", f"spec.tags entry {tag!r} is not a valid tag")
    replicas = _optional_int(spec, "replicas", 0)
    env = spec.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, Mapping) and e.get("name") for e in env):
        raise SpecError("InvalidSpec", "spec.env must be a list of {name, value|valueFrom}")
    resources = spec.get("resources")
    return WorkerPoolSpec(
        image=image,
        replicas=1 if replicas is None else replicas,
        app=app,
        secret_name=str(ref["name"]),
        secret_key=str(ref["key"]),
        schema=spec.get("schema") or None,
        tags=tuple(tags),
        include_untagged=bool(spec.get("includeUntagged", False)),
        orchestration_concurrency=_optional_int(spec, "orchestrationConcurrency", 1),
        worker_concurrency=_optional_int(spec, "workerConcurrency", 1),
        max_sessions=_optional_int(spec, "maxSessions", 1),
        session_idle_timeout_s=_optional_int(spec, "sessionIdleTimeoutSeconds", 1),
        max_unavailable=_default(_optional_int(spec, "maxUnavailable", 0), 1),
        image_pull_policy=spec.get("imagePullPolicy"),
        service_account=spec.get("serviceAccountName"),
        resources=resources if isinstance(resources, Mapping) else None,
        env=tuple(env),
        scheduling={k: spec[k] for k in SCHEDULING_FIELDS if spec.get(k) is not None},
        retention=_retention(spec.get("retention")),
        build_id=_pool_build(spec.get("buildId"), "spec.buildId"),
        rollout=_rollout(spec.get("rollout")),
    )


def _retention(value: Any) -> str | None:
    """The worker reads it (``DURAFLOW_RETENTION``); a value it would refuse must not
    crash-loop every pod of the pool, so it is read here by the worker's own settings table."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError("InvalidRetention", f"spec.retention must be a duration such as 30d, "
                                            f"got {value!r}")
    try:
        read_settings("worker", env={"DURAFLOW_RETENTION": value})
    except ValueError as error:
        raise SpecError("InvalidRetention", f"spec.retention: {error}") from error
    return value
