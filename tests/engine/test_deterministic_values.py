"""``utc_now`` and ``new_guid`` are recorded once and replay to the same values."""

from __future__ import annotations

import json
import time

from .support import TIMEOUT_MS, completed, uid


def test_utc_now_and_new_guid_values(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Values")
        def values(ctx, _):
            now = yield ctx.utc_now()
            guid = yield ctx.new_guid()
            other = yield ctx.new_guid()
            return {"now": now, "guid": guid, "other": other}

    start_runtime(register)
    iid = uid("values")
    before_ms = int(time.time() * 1000)
    client.start_orchestration(iid, "Values", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert isinstance(output["now"], int) and not isinstance(output["now"], bool)
    assert output["now"] > 0
    assert abs(output["now"] - before_ms) < 60_000  # milliseconds since the epoch
    for guid in (output["guid"], output["other"]):
        assert isinstance(guid, str) and len(guid) == 36
        assert [len(part) for part in guid.split("-")] == [8, 4, 4, 4, 12]
    assert output["guid"] != output["other"]


def test_utc_now_and_new_guid_are_stable_across_replays(start_runtime, client):
    """The values seen before a wait are the values seen after it, even when a new runtime
    (no cached state) has to replay the history to continue."""

    def register(rt):
        rt.register_activity("Later", lambda ctx, _: "later")

        @rt.register_orchestration("StableValues")
        def stable(ctx, _):
            now = yield ctx.utc_now()
            guid = yield ctx.new_guid()
            ctx.set_custom_status(json.dumps({"now": now, "guid": guid}))
            yield ctx.wait_for_event("go")
            later = yield ctx.schedule_activity("Later", None)
            return {"now": now, "guid": guid, "later": later}

    first = start_runtime(register)
    iid = uid("stable")
    client.start_orchestration(iid, "StableValues", None)
    before = wait_for_custom_status_json(client, iid)
    first.shutdown(5000)

    start_runtime(register)  # replays from history
    client.raise_event(iid, "go", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output == {"now": before["now"], "guid": before["guid"], "later": "later"}


def wait_for_custom_status_json(client, iid):
    result = client.wait_for_status_change(iid, 0, 20, TIMEOUT_MS)
    assert result.custom_status is not None, result
    return json.loads(result.custom_status)
