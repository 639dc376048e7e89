"""An ``OrchestrationSchedule`` as a Python value, and how its runs are named.

The CRD schema rejects most bad input; these checks repeat what an older CRD (Helm never
upgrades CRDs) would let through. The cron expression and the time zone are NOT checked
here: the engine's own validation (``create_schedule`` / ``update_schedule`` raise
``InvalidScheduleError``) is the one truth, so the operator and ``duraflow schedules create``
accept exactly the same schedules.

Names. The engine schedule of the CR ``<namespace>/<name>`` has the id
``<namespace>/<name>``, the convention of Orchestration instance ids (``spec.py``): a
Kubernetes name cannot contain '/', so ids of different namespaces never meet. A tick's
instance id is then ``<namespace>/<name>-<YYYYMMDDTHHMMSSZ>`` (the engine's form), which no
Orchestration CR's default id ``<namespace>/<its name>`` can equal: a CR name has no
uppercase letters. The run's CR is ``<name>-<yyyymmddthhmmssz>`` (the same tick, in the
lowercase a name allows), so runs sort by name in the order of their ticks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from duraflow_operator.spec import DELETION_POLICIES, SpecError

#: The label every run CR carries: ``kubectl get orch -l duraflow.io/schedule=<name>``.
SCHEDULE_LABEL = "duraflow.io/schedule"
#: concurrencyPolicy (CronJob's names, plus BufferOne) -> the engine's overlap policy.
CONCURRENCY_POLICIES = {"Forbid": "skip", "Allow": "allow_all", "Replace": "cancel_other",
                        "BufferOne": "buffer_one"}
DEFAULT_STARTING_DEADLINE_S = 60
#: The engine's tick suffix of a run's instance id: ``-YYYYMMDDTHHMMSSZ``.
_RUN_SUFFIX = re.compile(r"-(\d{8}T\d{6}Z)$")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$")


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    schedule: str
    time_zone: str
    orchestration: str
    version: str | None
    input: Any
    concurrency_policy: str
    starting_deadline_s: int
    suspend: bool
    successful_limit: int
    failed_limit: int
    run_labels: Mapping[str, str]
    run_annotations: Mapping[str, str]
    run_deletion_policy: str | None
    run_ttl_s: int | None

    def engine_fields(self) -> dict[str, Any]:
        """What ``create_schedule`` / ``update_schedule`` take, by their names."""
        return {"orchestration": self.orchestration, "input": self.input,
                "cron": self.schedule, "timezone": self.time_zone,
                "overlap": CONCURRENCY_POLICIES[self.concurrency_policy],
                "catchup_window_ms": self.starting_deadline_s * 1000,
                "version": self.version}


def schedule_id(namespace: str, name: str) -> str:
    """The engine schedule of the CR (see the module docstring)."""
    return f"{namespace}/{name}"


def run_name(schedule_name: str, schedule_id_: str, instance_id: str) -> str | None:
    """The run CR's name for a tick's instance id; None for an id that is not one of this
    schedule's ticks."""
    stem = schedule_id_ + "-"
    match = _RUN_SUFFIX.search(instance_id)
    if not instance_id.startswith(stem) or match is None or match.start() != len(stem) - 1:
        return None
    return f"{schedule_name}-{match.group(1).lower()}"


def run_schedule_id(instance_id: str) -> str | None:
    """The schedule id a tick's instance id names (None if it is no tick's id)."""
    match = _RUN_SUFFIX.search(instance_id)
    return instance_id[:match.start()] if match is not None and match.start() > 0 else None


def _int(spec: Mapping[str, Any], key: str, default: int | None, minimum: int,
         where: str = "spec") -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError("InvalidSpec", f"{where}.{key} must be an integer >= {minimum}, got "
                                       f"{value!r}")
    return value


def _string_map(value: Any, what: str) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SpecError("InvalidSpec", f"{what} must map strings to strings")
    return dict(value)


def parse_schedule(spec: Mapping[str, Any] | None, *, max_input_bytes: int) -> ScheduleSpec:
    if not isinstance(spec, Mapping):
        raise SpecError("InvalidSpec", "spec is missing: spec.schedule and spec.orchestration "
                                       "are required")
    schedule = spec.get("schedule")
    if not isinstance(schedule, str) or not schedule.strip():
        raise SpecError("InvalidSchedule", "spec.schedule is required: five cron fields, an "
                                           "alias such as @daily, or @every <duration>")
    orchestration = spec.get("orchestration")
    if not isinstance(orchestration, str) or not orchestration:
        raise SpecError("MissingOrchestration", "spec.orchestration is required")
    version = spec.get("version")
    if version is not None and (not isinstance(version, str) or not _SEMVER.match(version)):
        raise SpecError("InvalidVersion", f"spec.version {version!r} is not a semantic version")
    zone = spec.get("timeZone", "UTC")
    if not isinstance(zone, str) or not zone:
        raise SpecError("InvalidSchedule", f"spec.timeZone must be an IANA zone name, got "
                                           f"{zone!r}")
    policy = spec.get("concurrencyPolicy", "Forbid")
    if policy not in CONCURRENCY_POLICIES:
        raise SpecError("InvalidSpec", f"spec.concurrencyPolicy {policy!r} is not one of "
                                       f"{', '.join(CONCURRENCY_POLICIES)}")
    suspend = spec.get("suspend", False)
    if not isinstance(suspend, bool):
        raise SpecError("InvalidSpec", f"spec.suspend must be true or false, got {suspend!r}")
    input_value = spec.get("input")
    size = len(json.dumps(input_value).encode())
    if size > max_input_bytes:
        raise SpecError("InputTooLarge", f"spec.input is {size} bytes encoded, over the limit "
                                         f"of {max_input_bytes} bytes")
    template = spec.get("runTemplate") or {}
    if not isinstance(template, Mapping):
        raise SpecError("InvalidSpec", "spec.runTemplate must be {metadata, spec}")
    meta = template.get("metadata") or {}
    run_spec = template.get("spec") or {}
    if not isinstance(meta, Mapping) or not isinstance(run_spec, Mapping):
        raise SpecError("InvalidSpec", "spec.runTemplate must be {metadata, spec}")
    deletion = run_spec.get("deletionPolicy")
    if deletion is not None and deletion not in DELETION_POLICIES:
        raise SpecError("InvalidDeletionPolicy", f"spec.runTemplate.spec.deletionPolicy "
                                                 f"{deletion!r} is not one of "
                                                 f"{', '.join(DELETION_POLICIES)}")
    deadline = _int(spec, "startingDeadlineSeconds", DEFAULT_STARTING_DEADLINE_S, 1)
    assert deadline is not None
    successful = _int(spec, "successfulRunsHistoryLimit", 3, 0)
    failed = _int(spec, "failedRunsHistoryLimit", 1, 0)
    assert successful is not None and failed is not None
    return ScheduleSpec(
        schedule=schedule, time_zone=zone, orchestration=orchestration, version=version,
        input=input_value, concurrency_policy=policy, starting_deadline_s=deadline,
        suspend=suspend, successful_limit=successful, failed_limit=failed,
        run_labels=_string_map(meta.get("labels"), "spec.runTemplate.metadata.labels"),
        run_annotations=_string_map(meta.get("annotations"),
                                    "spec.runTemplate.metadata.annotations"),
        run_deletion_policy=deletion,
        run_ttl_s=_int(run_spec, "ttlSecondsAfterFinished", None, 0, "spec.runTemplate.spec"),
    )
