"""The autoscaler's decisions with a fake clock: demand to replicas, up fast within the
per-minute limit, down only after the delay and to the peak of the window (no flapping),
bounds, and the checks of ``spec.autoscaling``."""

from __future__ import annotations

import pytest
from duraflow_operator import autoscaling as a
from duraflow_operator.spec import SpecError

from duraflow import TagDemand, WorkDemand

SPEC = a.AutoscalingSpec(min_replicas=0, max_replicas=5, target_per_replica=4,
                         scale_down_delay_s=30, scale_up_limit_per_minute=None)


def test_desired_is_demand_over_target_rounded_up_and_clamped() -> None:
    memory = a.ScalerMemory(first_seen=0.0)
    assert a.decide(SPEC, 0, 0, memory, 1.0).replicas == 0
    assert a.decide(SPEC, 0, 1, memory, 2.0).replicas == 1
    assert a.decide(SPEC, 1, 9, memory, 3.0).replicas == 3
    capped = a.decide(SPEC, 3, 200, memory, 4.0)
    assert (capped.replicas, capped.reason) == (5, a.AT_MAX)
    floor = a.decide(a.AutoscalingSpec(2, 5, 4, 30), 2, 1, a.ScalerMemory(0.0), 1.0)
    assert (floor.replicas, floor.reason) == (2, a.BELOW_MIN)


def test_scale_up_is_limited_per_minute_and_the_limit_refills() -> None:
    spec = a.AutoscalingSpec(0, 50, 1, 30, scale_up_limit_per_minute=4)
    memory = a.ScalerMemory(first_seen=0.0)
    first = a.decide(spec, 0, 20, memory, 1.0)
    assert (first.replicas, first.desired, first.reason) == (4, 20, a.UP_LIMITED)
    memory.record_up(1.0, 4)
    assert a.decide(spec, 4, 20, memory, 30.0).replicas == 4  # the minute is used up
    assert a.decide(spec, 4, 20, memory, 61.5).replicas == 8  # the window moved on


def test_a_pool_below_its_minimum_grows_at_once_whatever_the_limit() -> None:
    spec = a.AutoscalingSpec(3, 10, 1, 30, scale_up_limit_per_minute=1)
    assert a.decide(spec, 0, 0, a.ScalerMemory(0.0), 1.0).replicas == 3


def test_scale_down_waits_for_the_delay_then_goes_to_the_peak_of_the_window() -> None:
    memory = a.ScalerMemory(first_seen=0.0)
    assert a.decide(SPEC, 3, 12, memory, 0.0).replicas == 3
    held = a.decide(SPEC, 3, 4, memory, 10.0)
    assert (held.replicas, held.desired, held.reason) == (3, 1, a.DOWN_DELAYED)
    assert a.decide(SPEC, 3, 4, memory, 29.0).replicas == 3
    assert a.decide(SPEC, 3, 4, memory, 31.0).replicas == 1  # 12 left the window
    zero = a.decide(SPEC, 1, 0, memory, 70.0)
    assert (zero.replicas, zero.reason) == (0, a.SCALED_TO_ZERO)


def test_demand_oscillating_faster_than_the_delay_does_not_flap() -> None:
    memory = a.ScalerMemory(first_seen=0.0)
    current, changes = 0, 0
    for second in range(0, 300):
        demand = 8 if (second // 5) % 2 == 0 else 0  # 5 s on, 5 s off
        replicas = a.decide(SPEC, current, demand, memory, float(second)).replicas
        if replicas != current:
            changes += 1
            current = replicas
    assert changes == 1 and current == 2  # up once, then held at the peak


def test_no_scale_down_before_the_pool_was_watched_for_the_delay() -> None:
    memory = a.ScalerMemory(first_seen=100.0)  # e.g. the operator just restarted
    assert a.decide(SPEC, 4, 0, memory, 110.0).replicas == 4
    assert a.decide(SPEC, 4, 0, memory, 131.0).replicas == 0


def test_a_lowered_maximum_applies_at_once() -> None:
    memory = a.ScalerMemory(first_seen=0.0)
    assert a.decide(a.AutoscalingSpec(0, 2, 4, 300), 5, 100, memory, 1.0).replicas == 2


def test_pool_demand_counts_its_tags_turns_and_its_pods_sessions() -> None:
    demand = WorkDemand({None: TagDemand(2, 1), "gpu": TagDemand(3, 4), "cpu": TagDemand(9, 0)},
                        turns=5, sessions={"gpu-0": 2, "other-0": 7})
    gpu = a.PoolWork.of({"tags": ["gpu"]})
    assert (gpu.untagged, gpu.turns) == (False, False)
    assert gpu.demand(demand, ["gpu-0", "gpu-1"]) == 7 + 2
    main = a.PoolWork.of({})
    assert main.demand(demand, []) == 3 + 5
    assert a.PoolWork.of({"orchestrationConcurrency": 0}).demand(demand, []) == 3
    both = a.PoolWork.of({"tags": ["gpu"], "includeUntagged": True})
    assert both.demand(demand, []) == 3 + 7 + 5


def test_the_spec_is_parsed_with_its_defaults() -> None:
    assert a.parse_autoscaling({}) is None
    parsed = a.parse_autoscaling({"workerConcurrency": 3, "autoscaling": {"maxReplicas": 4}})
    assert parsed == a.AutoscalingSpec(0, 4, 3, 300, None)
    parsed = a.parse_autoscaling({"autoscaling": {"minReplicas": 1, "maxReplicas": 4,
                                                  "targetPerReplica": 2,
                                                  "scaleDownDelaySeconds": 0,
                                                  "scaleUpLimitPerMinute": 10}})
    assert parsed == a.AutoscalingSpec(1, 4, 2, 0, 10)
    assert a.parse_autoscaling({"autoscaling": {"maxReplicas": 1}}) is not None


@pytest.mark.parametrize("bad, words", [
    ({"minReplicas": 3, "maxReplicas": 2}, "above maxReplicas"),
    ({"maxReplicas": -1}, "maxReplicas must be an integer >= 1"),
    ({"minReplicas": -1, "maxReplicas": 2}, "minReplicas must be an integer >= 0"),
    ({"maxReplicas": 2, "targetPerReplica": 0}, "targetPerReplica"),
    ({"maxReplicas": 2, "scaleDownDelaySeconds": -5}, "scaleDownDelaySeconds"),
    ({"maxReplicas": 2, "scaleUpLimitPerMinute": True}, "scaleUpLimitPerMinute"),
    ({}, "maxReplicas is required"),
    ({"maxReplicas": 5000}, "at most 1000"),
    ("big", "must be an object"),
])
def test_a_bad_spec_is_refused_with_a_specific_message(bad: object, words: str) -> None:
    with pytest.raises(SpecError, match=words) as error:
        a.parse_autoscaling({"autoscaling": bad})
    assert error.value.reason == "InvalidAutoscaling"
