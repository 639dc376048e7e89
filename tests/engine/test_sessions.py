"""Sessions end to end: every activity of a session runs on the runtime holding it.

Runtimes get their own provider objects on the same store (``store.reopen()``), as separate
processes would; a "crash" closes a runtime's provider before stopping it, so it cannot
release its sessions. The in-memory store cannot be shared that way, so crash tests skip it.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from duraflow import TagFilter

from .support import TIMEOUT_MS, completed, poll_until, uid


def node_of(ctx) -> str:
    return ctx.worker_id.split("-", 2)[2]  # work-{slot}-{worker_node_id}


def register_where(rt) -> None:
    rt.register_activity("Where", lambda ctx, _: node_of(ctx))

    @rt.register_orchestration("OnSession")
    def on_session(ctx, inp):
        nodes = []
        for i in range(inp["n"]):
            nodes.append((yield ctx.schedule_activity_on_session("Where", i, inp["session"])))
        return nodes

    @rt.register_orchestration("TwoSteps")
    def two_steps(ctx, session):
        first = yield ctx.schedule_activity_on_session("Where", 1, session)
        yield ctx.wait_for_event("go")
        second = yield ctx.schedule_activity("Where", 2, session_id=session)
        return [first, second]


def crash(store, runtime, provider) -> None:
    """Stop ``runtime`` the way a killed pod stops: nothing released, leases left to lapse."""
    from duraflow.bridge import run_sync

    run_sync(provider.close())
    runtime.shutdown(500)


def test_each_session_stays_on_one_of_two_runtimes(store, start_runtime, client):
    for node in ("pod-a", "pod-b"):
        start_runtime(register_where, provider=store.reopen(), worker_node_id=node,
                      max_sessions_per_runtime=3, worker_concurrency=2)
    ids = {uid(f"s{n}"): f"session-{n}" for n in range(6)}
    for iid, session in ids.items():
        client.start_orchestration(iid, "OnSession", {"n": 4, "session": session})
    sessions_per_node: dict[str, int] = defaultdict(int)
    for iid in ids:
        nodes = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
        assert len(set(nodes)) == 1, (iid, nodes)
        sessions_per_node[nodes[0]] += 1
    assert sessions_per_node == {"pod-a": 3, "pod-b": 3}  # each holds at most 3


def test_a_graceful_shutdown_hands_sessions_over_at_once(store, start_runtime, client):
    a = start_runtime(register_where, provider=store.reopen(), worker_node_id="pod-a",
                      session_lock_timeout_ms=60_000)
    iid = uid("handover")
    client.start_orchestration(iid, "TwoSteps", "s1")
    poll_until(lambda: client.get_activity_backlog() == {} and _ran_first(client, iid),
               "the first step")
    start_runtime(register_where, provider=store.reopen(), worker_node_id="pod-b")
    a.shutdown(2000)  # releases s1; its 60 s lease would outlast the test
    client.raise_event(iid, "go", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == ["pod-a", "pod-b"]


def _ran_first(client, iid: str) -> bool:
    return any(e.kind == "ActivityCompleted" for e in client.read_execution_history(iid, 1))


@pytest.mark.parametrize("lease_ms", [60_000])
def test_a_restarted_runtime_regains_its_sessions_at_once(
    store, start_runtime, client, lease_ms
):
    if store.kind == "sqlite-memory":
        pytest.skip("a crash needs a second connection to the same store")
    provider_a = store.reopen()
    a = start_runtime(register_where, provider=provider_a, worker_node_id="pod-a",
                      session_lock_timeout_ms=lease_ms)
    iid = uid("regain")
    client.start_orchestration(iid, "TwoSteps", "s1")
    poll_until(lambda: _ran_first(client, iid), "the first step")
    start_runtime(register_where, provider=store.reopen(), worker_node_id="pod-b")
    crash(store, a, provider_a)
    client.raise_event(iid, "go", None)
    # pod-b is idle and willing, but pod-a's lease is live: the step waits for pod-a.
    poll_until(lambda: client.get_activity_backlog().get(None) == 1, "the waiting step")
    start_runtime(register_where, provider=store.reopen(), worker_node_id="pod-a")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == ["pod-a", "pod-a"]


def test_a_session_moves_when_the_lease_of_a_crashed_runtime_lapses(
    store, start_runtime, client
):
    if store.kind == "sqlite-memory":
        pytest.skip("a crash needs a second connection to the same store")
    provider_a = store.reopen()
    a = start_runtime(register_where, provider=provider_a, worker_node_id="pod-a",
                      session_lock_timeout_ms=1_000)
    iid = uid("lapse")
    client.start_orchestration(iid, "TwoSteps", "s1")
    poll_until(lambda: _ran_first(client, iid), "the first step")
    start_runtime(register_where, provider=store.reopen(), worker_node_id="pod-b")
    crash(store, a, provider_a)
    client.raise_event(iid, "go", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == ["pod-a", "pod-b"]


def test_max_sessions_per_runtime_caps_the_sessions_served_at_once(start_runtime, client):
    spans: dict[str, list[float]] = {}
    lock = threading.Lock()

    def work(ctx, _):
        now = time.monotonic()
        time.sleep(0.01)
        with lock:
            span = spans.setdefault(ctx.session_id, [now, now])
            span[1] = time.monotonic()

    def register(rt):
        rt.register_activity("Work", work)

        @rt.register_orchestration("Busy")
        def busy(ctx, session):
            for i in range(3):
                yield ctx.schedule_activity_on_session("Work", i, session)
            return session

    start_runtime(register, worker_node_id="pod-a", max_sessions_per_runtime=2,
                  worker_concurrency=6, worker_lock_timeout_ms=1_000,
                  session_idle_timeout_ms=700, session_lock_timeout_ms=1_000)
    ids = [uid("busy") for _ in range(6)]
    for n, iid in enumerate(ids):
        client.start_orchestration(iid, "Busy", f"session-{n}")
    for iid in ids:
        completed(client.wait_for_orchestration(iid, 30_000))
    # A session is held from its first activity to its last: never more than 2 at a time.
    edges = sorted([(s, 1) for s, _ in spans.values()] + [(e, -1) for _, e in spans.values()])
    busiest = max(_running_totals(edges))
    assert len(spans) == 6 and busiest <= 2, spans


def _running_totals(edges: list[tuple[float, int]]) -> list[int]:
    totals, current = [], 0
    for _, delta in edges:
        current += delta
        totals.append(current)
    return totals


def test_a_tagged_activity_waits_for_a_worker_with_that_tag(start_runtime, client):
    def register(rt):
        rt.register_activity("Render", lambda ctx, x: [x, node_of(ctx), ctx.tag()])

        @rt.register_orchestration("NeedsGpu")
        def needs_gpu(ctx, x):
            return (yield ctx.schedule_activity("Render", x).with_tag("gpu"))

    start_runtime(register, worker_node_id="cpu-0")
    iid = uid("gpu")
    client.start_orchestration(iid, "NeedsGpu", 7)
    poll_until(lambda: client.get_activity_backlog().get("gpu") == 1, "the gpu backlog")
    assert client.get_status(iid).status == "Running"
    start_runtime(register, worker_node_id="gpu-0", orchestration_concurrency=0,
                  worker_tag_filter=TagFilter.tags(["gpu"]))
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [7, "gpu-0", "gpu"]


def register_chat(replies: list[tuple[str, str]]):
    def register(rt):
        def reply(ctx, message):
            replies.append((message, node_of(ctx)))
            return f"re: {message}"

        rt.register_activity("Reply", reply)

        @rt.register_orchestration("Chat")
        def chat(ctx, state):
            served = state["served"]
            for _ in range(5):  # then continue as new, keeping the history short
                message = yield ctx.dequeue_event("inbox")
                yield ctx.schedule_activity_on_session("Reply", message, state["session"])
                served += 1
                ctx.set_custom_status(f"served {served}")
            if served >= 20:
                return served
            return (yield ctx.continue_as_new({"session": state["session"], "served": served}))

    return register


def test_a_chat_serves_20_messages_in_order_across_a_worker_restart(
    store, start_runtime, client
):
    replies: list[tuple[str, str]] = []
    worker = start_runtime(register_chat(replies), provider=store.reopen(),
                           worker_node_id="chat-0")
    iid = uid("chat")
    client.start_orchestration(iid, "Chat", {"session": "conversation-1", "served": 0})
    messages = [f"message {n}" for n in range(20)]
    for message in messages[:10]:
        client.enqueue_event(iid, "inbox", message)
    poll_until(lambda: len(replies) >= 7, "a few replies")
    worker.shutdown(5000)  # a rolling restart in the middle of the conversation
    start_runtime(register_chat(replies), provider=store.reopen(), worker_node_id="chat-0")
    for message in messages[10:]:
        client.enqueue_event(iid, "inbox", message)
    assert completed(client.wait_for_orchestration(iid, 30_000)) == 20
    assert client.get_status(iid).custom_status == "served 20"
    served = [message for message, _ in replies]
    # A turn interrupted by the restart may run its activity again; order never breaks.
    assert list(dict.fromkeys(served)) == messages, served
    assert {node for _, node in replies} == {"chat-0"}


def test_without_worker_node_id_affinity_is_per_worker_slot(start_runtime, client):
    def register(rt):
        rt.register_activity("Slot", lambda ctx, _: ctx.worker_id)

        @rt.register_orchestration("Slots")
        def slots(ctx, session):
            seen = []
            for i in range(4):
                seen.append((yield ctx.schedule_activity_on_session("Slot", i, session)))
            return seen

    start_runtime(register, worker_concurrency=3)
    ids = [uid("slot") for _ in range(3)]
    for n, iid in enumerate(ids):
        client.start_orchestration(iid, "Slots", f"session-{n}")
    for iid in ids:
        seen = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
        assert len(set(seen)) == 1 and seen[0].startswith("work-"), seen


def test_the_registry_reports_the_sessions_a_runtime_holds(start_runtime, client):
    start_runtime(register_where, worker_node_id="pod-a", worker_heartbeat_interval_ms=100)
    ids = [uid("held") for _ in range(2)]
    for n, iid in enumerate(ids):
        client.start_orchestration(iid, "OnSession", {"n": 1, "session": f"held-{n}"})
    for iid in ids:
        completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    poll_until(lambda: [w.sessions_held for w in client.list_workers()] == [2],
               "two sessions held in the registry")
