"""Draining a runtime in place (what the operator asks of a pod before removing it): it takes
no new work and no new session, lets what runs finish, releases its sessions, reports
``drained``; a withdrawn request makes it take work again (docs/autoscaling.md)."""

from __future__ import annotations

import threading

from duraflow import TagFilter

from .support import poll_until, uid

BEAT_MS = 100


def test_a_drained_runtime_finishes_what_runs_takes_nothing_new_and_resumes_when_undrained(
    start_runtime, client
):
    release = threading.Event()
    ran: list[str] = []

    def gpu_pod(rt):
        def slow(ctx, x):
            ran.append(x)
            release.wait(30)
            return x

        rt.register_activity("Slow", slow)

    def orchestrations(rt):
        @rt.register_orchestration("Job")
        def job(ctx, x):
            return (yield ctx.schedule_activity_on_session("Slow", x, "s-" + x).with_tag("gpu"))

    # Turns run elsewhere (a drained pod takes no turn either): the gpu pod runs activities.
    start_runtime(orchestrations, worker_node_id="main-0", worker_concurrency=0)
    start_runtime(gpu_pod, worker_node_id="gpu-1", worker_heartbeat_interval_ms=BEAT_MS,
                  worker_tag_filter=TagFilter.tags(["gpu"]), orchestration_concurrency=0)
    first = uid("first")
    client.start_orchestration(first, "Job", "a")
    poll_until(lambda: ran == ["a"], "the first activity running")
    client.drain_workers(["gpu-1"])
    poll_until(lambda: _state(client) == "draining", "the runtime draining")
    assert client.get_drained_workers() == {"gpu-1": False}  # an activity still runs

    second = uid("second")
    client.start_orchestration(second, "Job", "b")
    poll_until(lambda: client.get_work_demand().activities.get("gpu"), "the second activity")
    release.set()
    assert client.wait_for_orchestration(first, 10_000).output == "a"
    poll_until(lambda: client.get_drained_workers() == {"gpu-1": True}, "the node idle")
    assert _state(client) == "drained"
    assert client.get_work_demand().sessions == {}  # its session was handed over
    assert ran == ["a"]  # the second activity waited
    demand = client.get_work_demand().activities["gpu"]
    assert (demand.waiting, demand.running) == (1, 0)

    client.undrain_workers(["gpu-1"])
    assert client.wait_for_orchestration(second, 10_000).output == "b"
    assert ran == ["a", "b"] and _state(client) is None


def _state(client):
    """gpu-1's drain state in the registry ("absent" before its first heartbeat)."""
    states = {w.worker_node_id: w.drain_state for w in client.list_workers()}
    return states.get("gpu-1", "absent")
