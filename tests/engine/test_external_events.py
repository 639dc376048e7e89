"""Positional external events: ``wait_for_event`` + ``client.raise_event``."""

from __future__ import annotations

from .support import TIMEOUT_MS, completed, history_kinds, uid, wait_for_custom_status


def test_external_event_data_round_trips_as_json(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Approval")
        def approval(ctx, _):
            ctx.set_custom_status("waiting")
            decision = yield ctx.wait_for_event("decision")
            return {"got": decision}

    start_runtime(register)
    iid = uid("event")
    client.start_orchestration(iid, "Approval", None)
    wait_for_custom_status(client, iid, "waiting")
    payload = {"approved": True, "by": "alice", "score": 9.5, "tags": ["a", "b"], "note": None}
    client.raise_event(iid, "decision", payload)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {"got": payload}


def test_events_with_same_name_fill_successive_waits(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("TwoVotes")
        def votes(ctx, _):
            ctx.set_custom_status("vote-1")
            first = yield ctx.wait_for_event("vote")
            ctx.set_custom_status("vote-2")
            second = yield ctx.wait_for_event("vote")
            return [first, second]

    start_runtime(register)
    iid = uid("votes")
    client.start_orchestration(iid, "TwoVotes", None)
    wait_for_custom_status(client, iid, "vote-1")
    client.raise_event(iid, "vote", "yes")
    wait_for_custom_status(client, iid, "vote-2")
    client.raise_event(iid, "vote", "no")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == ["yes", "no"]


def test_event_raised_before_subscription_is_not_delivered(start_runtime, client):
    """``wait_for_event`` is positional: an arrival with no active subscription is recorded
    but never handed to a later subscription for the same name."""

    def register(rt):
        @rt.register_orchestration("Positional")
        def positional(ctx, _):
            ctx.set_custom_status("waiting-for-step")
            yield ctx.wait_for_event("step")
            # Only now is "data" subscribed; the early "data" arrival must not count.
            ctx.set_custom_status("waiting-for-data")
            data = yield ctx.wait_for_event("data")
            return data

    start_runtime(register)
    iid = uid("positional")
    client.start_orchestration(iid, "Positional", None)
    wait_for_custom_status(client, iid, "waiting-for-step")
    client.raise_event(iid, "data", "early")  # no subscription for "data" yet
    client.raise_event(iid, "step", None)
    wait_for_custom_status(client, iid, "waiting-for-data")
    assert client.get_status(iid).status == "Running"
    client.raise_event(iid, "data", "late")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "late"
    kinds = history_kinds(client, iid)
    assert kinds.count("ExternalEvent") == 3  # the early arrival is recorded, just skipped


def test_event_for_other_name_does_not_resolve_wait(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Picky")
        def picky(ctx, _):
            ctx.set_custom_status("waiting")
            value = yield ctx.wait_for_event("wanted")
            ctx.set_custom_status("resumed")
            return value

    start_runtime(register)
    iid = uid("picky")
    client.start_orchestration(iid, "Picky", None)
    wait_for_custom_status(client, iid, "waiting")
    client.raise_event(iid, "unwanted", 1)
    client.raise_event(iid, "wanted", 2)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 2
