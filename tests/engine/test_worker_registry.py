"""The worker registry end to end: runtimes appear with their registrations and leave when
they stop; the backlog shows activities waiting for a tag no live worker serves."""

from __future__ import annotations

import os

import pytest

from duraflow import RuntimeOptions, TagFilter, WorkerInfo

from .support import poll_until, uid


def _by_node(client) -> dict[str, WorkerInfo]:
    return {w.worker_node_id: w for w in client.list_workers()}


def test_two_runtimes_show_up_with_their_registrations_and_one_leaves(start_runtime, client):
    def chat_pod(rt):
        rt.register_activity("Generate", lambda ctx, x: x)
        rt.register_orchestration_versioned("Chat", "1.0.0", lambda ctx, x: x)
        rt.register_orchestration_versioned("Chat", "2.0.0", lambda ctx, x: x)

    def gpu_pod(rt):
        rt.register_activity("Render", lambda ctx, x: x)
        rt.register_activity("Embed", lambda ctx, x: x)

    start_runtime(chat_pod, worker_node_id="chat-0", worker_heartbeat_interval_ms=200,
                  max_sessions_per_runtime=3)
    gpu = start_runtime(gpu_pod, worker_node_id="gpu-0", worker_heartbeat_interval_ms=200,
                        worker_tag_filter=TagFilter.tags(["gpu"]), orchestration_concurrency=0,
                        worker_concurrency=2)

    workers = poll_until(lambda: (w := _by_node(client)).keys() >= {"chat-0", "gpu-0"} and w,
                         "both runtimes in the registry")
    chat, pod = workers["chat-0"], workers["gpu-0"]
    assert chat.orchestrations == {"Chat": ("1.0.0", "2.0.0")}
    assert chat.activities == ("Generate",)
    assert (chat.tag_filter, chat.tags, chat.max_sessions) == ("default_only", (), 3)
    assert pod.orchestrations == {}
    assert pod.activities == ("Embed", "Render")
    assert (pod.tag_filter, pod.tags) == ("tags", ("gpu",))
    assert (pod.orchestration_concurrency, pod.worker_concurrency) == (0, 2)
    assert chat.pid == pod.pid == os.getpid()
    assert chat.alive and pod.alive and chat.heartbeat_interval_ms == 200
    assert chat.last_seen_at_ms >= chat.started_at_ms

    # The heartbeat keeps the row fresh.
    poll_until(lambda: _by_node(client)["chat-0"].last_seen_at_ms > chat.last_seen_at_ms,
               "a later heartbeat")

    gpu.shutdown(2000)
    assert set(_by_node(client)) == {"chat-0"}  # a graceful stop removes the row at once
    assert {w.worker_node_id for w in client.list_workers(include_gone=True)} == {"chat-0"}


def test_backlog_shows_activities_waiting_for_a_tag(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("NeedsGpu")
        def needs_gpu(ctx, _):
            return (yield ctx.schedule_activity("Render", 1).with_tag("gpu"))

    start_runtime(register)
    iid = uid("gpu")
    client.start_orchestration(iid, "NeedsGpu", None)
    assert poll_until(lambda: client.get_activity_backlog().get("gpu"), "a gpu backlog") == 1


def test_heartbeat_interval_is_validated():
    assert RuntimeOptions().worker_heartbeat_interval_ms == 5_000
    with pytest.raises(ValueError, match="worker_heartbeat_interval_ms"):
        RuntimeOptions(worker_heartbeat_interval_ms=0)
    with pytest.raises(TypeError, match="worker_heartbeat_interval_ms"):
        RuntimeOptions(worker_heartbeat_interval_ms="5s")
