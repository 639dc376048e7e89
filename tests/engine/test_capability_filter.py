"""Capability filtering end to end: a runtime leaves alone executions pinned to an engine
version outside its ``supported_replay_versions``; a compatible runtime finishes them."""

from __future__ import annotations

import pytest

from duraflow import RuntimeOptions, __version__
from duraflow.core.events import ORCHESTRATION_STARTED, HistoryEvent
from duraflow.core.version import pack
from duraflow.runtime.capability import replayable

from .support import TIMEOUT_MS, completed, poll_until, uid


def _register(ran: list[str]):
    def register(rt):
        rt.register_activity("Step", lambda ctx, n: ran.append(ctx.worker_id) or n + 1)

        @rt.register_orchestration("Pinned")
        def pinned(ctx, n):
            return (yield ctx.schedule_activity("Step", n))

    return register


def test_an_old_runtime_leaves_newer_histories_to_a_compatible_one(start_runtime, client):
    ran: list[str] = []
    start_runtime(_register(ran), supported_replay_versions=("0.0.0", "0.0.9"))
    iid = uid("pinned")
    client.start_orchestration(iid, "Pinned", 1)  # unpinned: any runtime starts it
    poll_until(lambda: ran, "the activity to run")
    # The completion waits, untouched, for a runtime that can replay this engine's history.
    poll_until(lambda: client.get_queue_depths().orchestrator_queue == 1, "the completion")
    assert client.get_status(iid).status == "Running"
    start_runtime(_register(ran))
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 2


def test_replay_versions_are_validated():
    assert RuntimeOptions().replay_range == (0, pack(__version__))
    assert RuntimeOptions(supported_replay_versions=("0.1.0", "0.3.2")).replay_range == (
        1_000,
        3_002,
    )
    with pytest.raises(ValueError, match="above"):
        RuntimeOptions(supported_replay_versions=("0.3.0", "0.1.0"))
    with pytest.raises(ValueError, match="semantic version"):
        RuntimeOptions(supported_replay_versions=("0.1", "0.3.0"))
    with pytest.raises(TypeError, match="pair"):
        RuntimeOptions(supported_replay_versions="0.1.0")


def test_the_runtime_rechecks_the_pin_of_what_it_fetched():
    def history(engine: str) -> list[HistoryEvent]:
        return [HistoryEvent(1, ORCHESTRATION_STARTED, {}, engine_version=engine)]

    assert replayable(history("0.2.0"), (1_000, 2_000))
    assert not replayable(history("0.2.1"), (1_000, 2_000))
    assert not replayable(history("0.0.9"), (1_000, 2_000))
    assert replayable([], (1_000, 2_000))  # a new instance pins nothing yet
