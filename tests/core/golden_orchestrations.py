"""Orchestrations whose recorded histories are the replay golden tests' fixtures.

``record_histories.py`` runs them on a real runtime (SQLite) and writes each history to
``histories/<name>.json``; ``test_golden_replay.py`` replays those files through the pure
core. Changing one of these functions changes what its recorded history must look like.
"""

from __future__ import annotations

from typing import Any


def sequence(ctx: Any, names: list[str]) -> Any:
    out = []
    for name in names:
        out.append((yield ctx.schedule_activity("Greet", name)))
    return out


def fan_out(ctx: Any, n: int) -> Any:
    results = yield ctx.all([ctx.schedule_activity("Square", i) for i in range(n)])
    return sum(r["ok"] for r in results)


def timers_and_values(ctx: Any, _: Any) -> Any:
    before = yield ctx.utc_now()
    guid = yield ctx.new_guid()
    yield ctx.schedule_timer(20)
    ctx.set_custom_status("timer fired")
    after = yield ctx.utc_now()
    return {"elapsed_ok": after >= before + 20, "guid": guid}


def race_with_event(ctx: Any, _: Any) -> Any:
    ctx.set_custom_status("waiting")
    winner = yield ctx.race(ctx.wait_for_event("go"), ctx.schedule_timer(60_000))
    echo = yield ctx.schedule_activity("Greet", winner["value"]["who"])
    return {"index": winner["index"], "echo": echo}


def retry_then_child(ctx: Any, _: Any) -> Any:
    flaky = yield ctx.schedule_activity_with_retry(
        "Flaky", "k", {"max_attempts": 4, "backoff": "none"}
    )
    child = yield ctx.schedule_sub_orchestration("Child", 5)
    return [flaky, child]


def child(ctx: Any, n: int) -> Any:
    return (yield ctx.schedule_activity("Square", n))


ORCHESTRATIONS = {
    "sequence": (sequence, ["Ada", "Grace"]),
    "fan_out": (fan_out, 4),
    "timers_and_values": (timers_and_values, None),
    "race_with_event": (race_with_event, None),
    "retry_then_child": (retry_then_child, None),
}


def register_activities(rt: Any) -> None:
    attempts = {"n": 0}
    rt.register_activity("Greet", lambda ctx, name: f"Hello, {name}!")
    rt.register_activity("Square", lambda ctx, n: n * n)

    def flaky(ctx: Any, key: str) -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise RuntimeError(f"flaky attempt {attempts['n']}")
        return f"ok after {attempts['n']}"

    rt.register_activity("Flaky", flaky)
    rt.register_orchestration("Child", child)
