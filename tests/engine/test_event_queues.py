"""Event queues: ``dequeue_event`` + ``client.enqueue_event`` are a FIFO mailbox."""

from __future__ import annotations

from .support import TIMEOUT_MS, completed, uid, wait_for_custom_status


def test_dequeue_returns_messages_in_fifo_order(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Inbox")
        def inbox(ctx, count):
            ctx.set_custom_status("ready")
            received = []
            for _ in range(count):
                received.append((yield ctx.dequeue_event("inbox")))
            return received

    start_runtime(register)
    iid = uid("fifo")
    client.start_orchestration(iid, "Inbox", 4)
    wait_for_custom_status(client, iid, "ready")
    messages = ["first", {"second": 2}, [3], "fourth"]
    for message in messages:
        client.enqueue_event(iid, "inbox", message)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == messages


def test_messages_enqueued_before_dequeue_are_buffered(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("LateReader")
        def late_reader(ctx, _):
            ctx.set_custom_status("not-reading-yet")
            yield ctx.wait_for_event("start-reading")
            first = yield ctx.dequeue_event("jobs")
            second = yield ctx.dequeue_event("jobs")
            other = yield ctx.dequeue_event("other")
            return [first, second, other]

    start_runtime(register)
    iid = uid("buffered")
    client.start_orchestration(iid, "LateReader", None)
    wait_for_custom_status(client, iid, "not-reading-yet")
    client.enqueue_event(iid, "jobs", "job-1")
    client.enqueue_event(iid, "other", "other-1")
    client.enqueue_event(iid, "jobs", "job-2")
    client.raise_event(iid, "start-reading", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        "job-1", "job-2", "other-1"]


def test_unconsumed_messages_survive_continue_as_new(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Carrier")
        def carrier(ctx, generation):
            if generation == 0:
                first = yield ctx.dequeue_event("mail")
                ctx.set_custom_status(f"gen0 read {first}")
                yield ctx.wait_for_event("rollover")
                return (yield ctx.continue_as_new(1))
            # The new execution reads what the previous one left unread.
            a = yield ctx.dequeue_event("mail")
            b = yield ctx.dequeue_event("mail")
            return {"generation": ctx.execution_id, "mail": [a, b]}

    start_runtime(register)
    iid = uid("carry")
    client.start_orchestration(iid, "Carrier", 0)
    client.enqueue_event(iid, "mail", "m1")
    wait_for_custom_status(client, iid, "gen0 read m1")
    client.enqueue_event(iid, "mail", "m2")
    client.enqueue_event(iid, "mail", "m3")
    client.raise_event(iid, "rollover", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output == {"generation": 2, "mail": ["m2", "m3"]}
    assert client.list_executions(iid) == [1, 2]


def test_queues_are_isolated_by_name(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("TwoQueues")
        def two_queues(ctx, _):
            ctx.set_custom_status("ready")
            b = yield ctx.dequeue_event("b")
            a = yield ctx.dequeue_event("a")
            return {"a": a, "b": b}

    start_runtime(register)
    iid = uid("isolated")
    client.start_orchestration(iid, "TwoQueues", None)
    wait_for_custom_status(client, iid, "ready")
    client.enqueue_event(iid, "a", "for-a")
    client.enqueue_event(iid, "b", "for-b")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "a": "for-a", "b": "for-b"}
