"""Pure pieces of schedules and lifecycle: the spec of an OrchestrationSchedule, the names of
its runs, a CR's TTL, and a WorkerPool's retention reaching its workers."""

from __future__ import annotations

from typing import Any

import pytest
from duraflow_operator.manifests import stateful_set
from duraflow_operator.schedule_spec import (
    CONCURRENCY_POLICIES,
    parse_schedule,
    run_name,
    run_schedule_id,
    schedule_id,
)
from duraflow_operator.spec import SpecError, parse_worker_pool
from duraflow_operator.state import CrView, slim

POOL = {"image": "i", "app": "m:f", "databaseSecretRef": {"name": "s", "key": "k"}}


def test_a_schedule_spec_maps_onto_the_engines_fields_with_cronjobs_defaults() -> None:
    spec = parse_schedule({"schedule": "0  9 * * MON-FRI", "orchestration": "Report"},
                          max_input_bytes=100)
    assert spec.engine_fields() == {
        "orchestration": "Report", "input": None, "cron": "0  9 * * MON-FRI",
        "timezone": "UTC", "overlap": "skip", "catchup_window_ms": 60_000, "version": None}
    assert (spec.suspend, spec.successful_limit, spec.failed_limit) == (False, 3, 1)
    assert CONCURRENCY_POLICIES == {"Forbid": "skip", "Allow": "allow_all",
                                    "Replace": "cancel_other", "BufferOne": "buffer_one"}
    replace = parse_schedule({"schedule": "@daily", "orchestration": "R",
                              "concurrencyPolicy": "Replace", "startingDeadlineSeconds": 5},
                             max_input_bytes=100)
    assert replace.engine_fields()["overlap"] == "cancel_other"
    assert replace.engine_fields()["catchup_window_ms"] == 5_000


@pytest.mark.parametrize(("spec", "reason"), [
    (None, "InvalidSpec"),
    ({"orchestration": "R"}, "InvalidSchedule"),
    ({"schedule": "@daily"}, "MissingOrchestration"),
    ({"schedule": "@daily", "orchestration": "R", "concurrencyPolicy": "Never"}, "InvalidSpec"),
    ({"schedule": "@daily", "orchestration": "R", "startingDeadlineSeconds": 0}, "InvalidSpec"),
    ({"schedule": "@daily", "orchestration": "R", "successfulRunsHistoryLimit": -1},
     "InvalidSpec"),
    ({"schedule": "@daily", "orchestration": "R", "input": "x" * 200}, "InputTooLarge"),
    ({"schedule": "@daily", "orchestration": "R",
      "runTemplate": {"spec": {"deletionPolicy": "Keep"}}}, "InvalidDeletionPolicy"),
    ({"schedule": "@daily", "orchestration": "R",
      "runTemplate": {"metadata": {"labels": {"a": 1}}}}, "InvalidSpec"),
])
def test_bad_schedule_specs_have_specific_reasons(spec: Any, reason: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_schedule(spec, max_input_bytes=100)
    assert caught.value.reason == reason


def test_runs_are_named_after_their_tick_and_only_this_schedules_ticks_count() -> None:
    sid = schedule_id("ns1", "nightly")
    assert sid == "ns1/nightly"
    assert run_name("nightly", sid, "ns1/nightly-20261206T020000Z") == "nightly-20261206t020000z"
    assert run_schedule_id("ns1/nightly-20261206T020000Z") == sid
    # Another schedule whose name extends this one's, a plain CR's id, a foreign namespace:
    assert run_name("nightly", sid, "ns1/nightly-x-20261206T020000Z") is None
    assert run_name("nightly", sid, "ns1/nightly") is None
    assert run_name("nightly", sid, "ns2/nightly-20261206T020000Z") is None
    assert run_schedule_id("ns1/hello") is None


def test_an_ended_cr_expires_its_ttl_after_completed_at() -> None:
    body = {"metadata": {"name": "a", "namespace": "n"},
            "spec": {"orchestration": "A", "ttlSecondsAfterFinished": 30},
            "status": {"instanceId": "n/a", "startedAt": "2026-01-01T00:00:00Z",
                       "phase": "Completed", "completedAt": "2026-01-01T00:00:10Z"}}
    view = CrView(slim(body))
    assert view.body["spec"] == {"ttlSecondsAfterFinished": 30}  # kept once started
    assert view.expires_at() == 1767225610 + 30
    running = CrView(slim({**body, "status": {**body["status"], "phase": "Running"}}))
    assert running.expires_at() is None
    no_ttl = CrView(slim({**body, "spec": {"orchestration": "A"}}))
    assert no_ttl.expires_at() is None


def test_a_pools_retention_reaches_its_workers_and_a_bad_one_is_refused() -> None:
    body = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    pod = stateful_set(body, parse_worker_pool({**POOL, "retention": "30d"}))
    env = {e["name"]: e.get("value") for e in pod["spec"]["template"]["spec"]["containers"][0]
           ["env"]}
    assert env["DURAFLOW_RETENTION"] == "30d"
    plain = stateful_set(body, parse_worker_pool(POOL))["spec"]["template"]["spec"]
    assert "DURAFLOW_RETENTION" not in {e["name"] for e in plain["containers"][0]["env"]}
    for bad in ("30 days", "500ms", 7):
        with pytest.raises(SpecError) as caught:
            parse_worker_pool({**POOL, "retention": bad})
        assert caught.value.reason == "InvalidRetention"
