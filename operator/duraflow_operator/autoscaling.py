"""Elastic WorkerPools: from the demand for a pool's work to the replicas it should have.

Pure decision logic (no I/O, the clock passed in) so every rule is unit-tested with a fake
clock; ``autoscaler.py`` reads the demand, applies the decisions and drains pods.

The rules (docs/autoscaling.md):

- **Demand** of a pool: activities waiting plus running for its tags (untagged ones too when
  it takes them), the idle sessions its pods hold (a session with work counts by its
  activities), and for a pool that runs orchestrations and
  takes untagged work, the instances with turns waiting. ``desired = ceil(demand /
  targetPerReplica)`` clamped to ``[minReplicas, maxReplicas]``.
- **Up fast**: at once, at most ``scaleUpLimitPerMinute`` pods added in any 60 s.
- **Down slowly**: to the highest ``desired`` seen during the last ``scaleDownDelaySeconds``
  (Kubernetes' HPA stabilisation window), and never before the pool has been watched for
  that long: an operator that just restarted has no history, and shrinking on one reading
  is exactly the flapping this prevents. Demand oscillating faster than the delay keeps the
  pool at its peak.
- Bounds changed by the user apply at once (a pool over ``maxReplicas`` shrinks, under
  ``minReplicas`` grows), still through the drain for a shrink.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from duraflow import WorkDemand
from duraflow_operator.spec import SpecError

DEFAULT_SCALE_DOWN_DELAY_S = 300
#: ``duraflow worker``'s default worker concurrency: the target when the pool sets none.
DEFAULT_WORKER_CONCURRENCY = 8
MAX_REPLICAS = 1000
WINDOW_S = 60.0  # scaleUpLimitPerMinute's window

# ScalingActive reasons
SCALED_TO_ZERO = "ScaledToZero"
AT_MAX = "AtMaxReplicas"
BELOW_MIN = "DemandBelowMinimum"
DOWN_DELAYED = "ScaleDownDelayed"
UP_LIMITED = "ScaleUpLimited"
WITHIN_RANGE = "DemandWithinRange"


@dataclass(frozen=True, slots=True)
class AutoscalingSpec:
    min_replicas: int
    max_replicas: int
    target_per_replica: int
    scale_down_delay_s: int = DEFAULT_SCALE_DOWN_DELAY_S
    #: None: no limit.
    scale_up_limit_per_minute: int | None = None


def _int(raw: Mapping[str, Any], key: str, minimum: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError("InvalidAutoscaling",
                        f"spec.autoscaling.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def parse_autoscaling(spec: Mapping[str, Any] | None) -> AutoscalingSpec | None:
    """``spec.autoscaling`` checked (the CRD refuses the same; an older CRD may not), None
    when absent."""
    raw = (spec or {}).get("autoscaling")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SpecError("InvalidAutoscaling", "spec.autoscaling must be an object")
    high = _int(raw, "maxReplicas", 1)
    if high is None:
        raise SpecError("InvalidAutoscaling", "spec.autoscaling.maxReplicas is required")
    if high > MAX_REPLICAS:
        raise SpecError("InvalidAutoscaling",
                        f"spec.autoscaling.maxReplicas must be at most {MAX_REPLICAS}")
    low = _int(raw, "minReplicas", 0) or 0
    if low > high:
        raise SpecError("InvalidAutoscaling",
                        f"spec.autoscaling.minReplicas ({low}) is above maxReplicas ({high})")
    concurrency = (spec or {}).get("workerConcurrency")
    default_target = (concurrency if isinstance(concurrency, int) and concurrency > 0
                      else DEFAULT_WORKER_CONCURRENCY)
    target = _int(raw, "targetPerReplica", 1) or default_target
    delay = _int(raw, "scaleDownDelaySeconds", 0)
    limit = _int(raw, "scaleUpLimitPerMinute", 1)
    return AutoscalingSpec(low, high, target,
                           DEFAULT_SCALE_DOWN_DELAY_S if delay is None else delay, limit)


@dataclass(frozen=True, slots=True)
class PoolWork:
    """What of the demand is a pool's: its tags, whether it takes untagged activities and
    runs turns, and the names of its pods (whose sessions count)."""

    tags: tuple[str, ...]
    untagged: bool
    turns: bool

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> PoolWork:
        tags = tuple(t for t in spec.get("tags") or [] if isinstance(t, str))
        untagged = not tags or bool(spec.get("includeUntagged"))
        return cls(tags, untagged, untagged and spec.get("orchestrationConcurrency") != 0)

    def demand(self, demand: WorkDemand, pods: Sequence[str]) -> int:
        total = demand.activities_for(self.tags, self.untagged)
        if self.turns:
            total += demand.turns
        return total + sum(demand.sessions.get(pod, 0) for pod in pods)


@dataclass(slots=True)
class ScalerMemory:
    """What the decisions of one pool remember (in memory: rebuilt after a restart, which
    only delays the first scale-down by one delay)."""

    first_seen: float
    #: (time, desired) of recent decisions: the scale-down stabilisation window.
    recent: deque[tuple[float, int]] = field(default_factory=deque)
    #: (time, pods added) of recent scale-ups: the per-minute limit's window.
    ups: deque[tuple[float, int]] = field(default_factory=deque)

    def record_up(self, now: float, added: int) -> None:
        self.ups.append((now, added))


@dataclass(frozen=True, slots=True)
class Decision:
    replicas: int  # what the pool should have now
    desired: int  # ceil(demand / target) clamped: where it is heading
    reason: str
    message: str


def decide(spec: AutoscalingSpec, current: int, demand: int, memory: ScalerMemory,
           now: float) -> Decision:
    raw = math.ceil(demand / spec.target_per_replica) if demand > 0 else 0
    desired = min(max(raw, spec.min_replicas), spec.max_replicas)
    memory.recent.append((now, desired))
    while memory.recent and memory.recent[0][0] < now - spec.scale_down_delay_s:
        memory.recent.popleft()
    while memory.ups and memory.ups[0][0] <= now - WINDOW_S:
        memory.ups.popleft()
    if raw > spec.max_replicas:
        reason, why = AT_MAX, (f"demand {demand} wants {raw} pods; maxReplicas is "
                               f"{spec.max_replicas}")
    elif desired == 0:
        reason, why = SCALED_TO_ZERO, "nothing waits or runs for this pool"
    elif raw < spec.min_replicas:
        reason, why = BELOW_MIN, (f"demand {demand} wants {raw} pods; minReplicas is "
                                  f"{spec.min_replicas}")
    else:
        reason, why = WITHIN_RANGE, (f"demand {demand} at {spec.target_per_replica} per pod "
                                     f"wants {desired} pods")
    if desired > current:
        target = desired
        if spec.scale_up_limit_per_minute is not None and current >= spec.min_replicas:
            room = spec.scale_up_limit_per_minute - sum(n for _, n in memory.ups)
            target = min(desired, current + max(room, 0))
            if target < desired:
                reason, why = UP_LIMITED, (f"{why}; scaleUpLimitPerMinute "
                                           f"({spec.scale_up_limit_per_minute}) reached")
        return Decision(target, desired, reason, why)
    if desired < current:
        if current > spec.max_replicas:  # the bound was lowered: no stabilisation
            return Decision(spec.max_replicas, desired, reason, why)
        if now - memory.first_seen < spec.scale_down_delay_s:
            stable = current  # no history yet: never shrink on one reading
        else:
            stable = max(d for _, d in memory.recent)
        if stable >= current:
            return Decision(current, desired, DOWN_DELAYED,
                            f"{why}; shrinking after {spec.scale_down_delay_s}s below")
        return Decision(stable, desired, reason, why)
    return Decision(current, desired, reason, why)
