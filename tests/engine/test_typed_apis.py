"""The ``*_typed`` variants: values round-trip as parsed JSON, strings pass through raw."""

from __future__ import annotations

import pytest

from .support import TIMEOUT_MS, completed, uid, wait_for_custom_status


def test_typed_activity_round_trip(start_runtime, client):
    def register(rt):
        @rt.register_activity_typed("Total")
        def total(ctx, order):
            return {"id": order["id"], "total": sum(i["price"] * i["qty"] for i in order["items"])}

        rt.register_activity_typed("Shout", lambda ctx, s: s.upper())

        @rt.register_orchestration_typed("TypedOrder")
        def typed_order(ctx, order):
            summary = yield ctx.schedule_activity_typed("Total", order, dict)
            shout = yield ctx.schedule_activity_typed("Shout", "raw string")
            return {"summary": summary, "shout": shout}

    start_runtime(register)
    iid = uid("typed-activity")
    order = {"id": "o-1", "items": [{"price": 2.5, "qty": 4}, {"price": 1, "qty": 3}]}
    client.start_orchestration_typed(iid, "TypedOrder", order)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "summary": {"id": "o-1", "total": 13.0}, "shout": "RAW STRING"}


def test_typed_sub_orchestration_round_trip(start_runtime, client):
    def register(rt):
        @rt.register_orchestration_typed("TypedChild")
        def child(ctx, point):
            return {"x": point["y"], "y": point["x"]}
            yield

        @rt.register_orchestration_typed("TypedParent")
        def parent(ctx, point):
            swapped = yield ctx.schedule_sub_orchestration_typed("TypedChild", point, dict)
            return swapped

    start_runtime(register)
    iid = uid("typed-sub")
    client.start_orchestration_typed(iid, "TypedParent", {"x": 1, "y": [2, 3]})
    assert client.wait_for_orchestration_typed(iid, TIMEOUT_MS) == {"x": [2, 3], "y": 1}


def test_wait_for_orchestration_typed_returns_output_and_raises_on_failure(
    start_runtime, client
):
    def register(rt):
        @rt.register_orchestration("MaybeFail")
        def maybe_fail(ctx, should_fail):
            yield ctx.schedule_timer(1)
            if should_fail:
                raise RuntimeError("typed wait should surface this")
            return {"fine": True}

    start_runtime(register)
    ok, bad = uid("typed-ok"), uid("typed-bad")
    client.start_orchestration_typed(ok, "MaybeFail", False)
    client.start_orchestration_typed(bad, "MaybeFail", True)
    assert client.wait_for_orchestration_typed(ok, TIMEOUT_MS) == {"fine": True}
    with pytest.raises(Exception, match="typed wait should surface this"):
        client.wait_for_orchestration_typed(bad, TIMEOUT_MS)


def test_raise_event_typed_round_trip(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("TypedEvent")
        def typed_event(ctx, _):
            ctx.set_custom_status("waiting")
            data = yield ctx.wait_for_event_typed("payload")
            return {"type": type(data).__name__, "data": data}

    start_runtime(register)
    iid = uid("typed-event")
    client.start_orchestration_typed(iid, "TypedEvent", None)
    wait_for_custom_status(client, iid, "waiting")
    client.raise_event_typed(iid, "payload", {"nested": {"list": [1, 2.5, "three"]}})
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "type": "dict", "data": {"nested": {"list": [1, 2.5, "three"]}}}


def test_typed_dequeue_and_enqueue(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("TypedQueue")
        def typed_queue(ctx, _):
            ctx.set_custom_status("ready")
            return (yield ctx.dequeue_event_typed("q"))

    start_runtime(register)
    iid = uid("typed-queue")
    client.start_orchestration(iid, "TypedQueue", None)
    wait_for_custom_status(client, iid, "ready")
    client.enqueue_event_typed(iid, "q", [{"a": 1}])
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [{"a": 1}]
