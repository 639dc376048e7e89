"""``duraflow demo``: sample workflows on embedded SQLite, with a table of what happened.

Each sample shows one durable pattern, using only the duroxide-compatible blocking API
(what a user's program would write). The table reports status, output and wall time.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from duraflow.core.status import Status
from duraflow.providers.sqlite import SqliteProvider
from duraflow.runtime.options import RuntimeOptions
from duraflow.sync import Client, Runtime


@dataclass
class Sample:
    name: str
    pattern: str
    orchestration: str
    input: Any
    after_start: Callable[[Client, str], None] | None = None


def register_samples(rt: Runtime) -> None:
    attempts: dict[str, int] = {}

    @rt.register_activity("Greet")
    def greet(ctx: Any, name: str) -> str:
        return f"Hello, {name}!"

    @rt.register_activity("Square")
    def square(ctx: Any, n: int) -> int:
        return n * n

    @rt.register_activity("Flaky")
    def flaky(ctx: Any, key: str) -> str:
        attempts[key] = attempts.get(key, 0) + 1
        if attempts[key] < 3:
            raise ConnectionError(f"transient failure #{attempts[key]}")
        return f"succeeded on attempt {attempts[key]}"

    @rt.register_activity("SlowLookup")
    def slow_lookup(ctx: Any, _: Any) -> str:
        ctx.wait_cancelled(5.0)  # returns early when the race is lost
        return "too late"

    @rt.register_orchestration("Sequence")
    def sequence(ctx: Any, names: list[str]) -> Any:
        greetings = []
        for name in names:
            greetings.append((yield ctx.schedule_activity("Greet", name)))
        return greetings

    @rt.register_orchestration("FanOutFanIn")
    def fan_out(ctx: Any, numbers: list[int]) -> Any:
        results = yield ctx.all_typed([ctx.schedule_activity("Square", n) for n in numbers])
        return sum(results)

    @rt.register_orchestration("DurableTimer")
    def durable_timer(ctx: Any, delay_ms: int) -> Any:
        start = yield ctx.utc_now()
        yield ctx.schedule_timer(delay_ms)
        end = yield ctx.utc_now()
        return f"slept {end - start} ms durably"

    @rt.register_orchestration("Approval")
    def approval(ctx: Any, request: str) -> Any:
        ctx.set_custom_status("waiting for approval")
        decision = yield ctx.wait_for_event("approval")
        return f"{request}: {decision['verdict']} by {decision['by']}"

    @rt.register_orchestration("ChildWorkflow")
    def child(ctx: Any, n: int) -> Any:
        return (yield ctx.schedule_activity("Square", n)) + 1

    @rt.register_orchestration("ParentWorkflow")
    def parent(ctx: Any, n: int) -> Any:
        a = yield ctx.schedule_sub_orchestration("ChildWorkflow", n)
        b = yield ctx.schedule_sub_orchestration("ChildWorkflow", a)
        return f"child({n})={a}, child({a})={b}"

    @rt.register_orchestration("RetryFlaky")
    def retry_flaky(ctx: Any, key: str) -> Any:
        policy = {"max_attempts": 5, "backoff": "exponential"}
        return (yield ctx.schedule_activity_with_retry("Flaky", key, policy))

    @rt.register_orchestration("RaceWithTimeout")
    def race(ctx: Any, timeout_ms: int) -> Any:
        winner = yield ctx.race(
            ctx.schedule_activity("SlowLookup", None), ctx.schedule_timer(timeout_ms)
        )
        return "lookup won" if winner["index"] == 0 else f"timed out after {timeout_ms} ms"

    @rt.register_orchestration("CountDown")
    def count_down(ctx: Any, state: dict[str, Any]) -> Any:
        if state["n"] == 0:
            return f"finished in execution {ctx.execution_id} (custom status kept: " \
                   f"{ctx.get_custom_status()!r})"
        ctx.set_custom_status(f"generation {state['generation']}")
        yield ctx.schedule_timer(10)
        return (yield ctx.continue_as_new(
            {"n": state["n"] - 1, "generation": state["generation"] + 1}
        ))


def _approve(client: Client, instance_id: str) -> None:
    client.wait_for_status_change(instance_id, 0, 20, 10_000)
    client.raise_event(instance_id, "approval", {"verdict": "approved", "by": "alice"})


SAMPLES = [
    Sample("sequence", "activities in order", "Sequence", ["Ada", "Grace", "Linus"]),
    Sample("fan-out/fan-in", "ctx.all over 10 activities", "FanOutFanIn", list(range(1, 11))),
    Sample("durable timer", "schedule_timer(300)", "DurableTimer", 300),
    Sample("external event", "wait_for_event + raise_event", "Approval", "expense #42", _approve),
    Sample("sub-orchestration", "parent calls child twice", "ParentWorkflow", 3),
    Sample("retry", "3 failures, exponential backoff", "RetryFlaky", "demo"),
    Sample("race with timeout", "activity vs 200 ms timer", "RaceWithTimeout", 200),
    Sample("continue-as-new", "3 hops, fresh history each", "CountDown", {"n": 3, "generation": 1}),
]


def run_demo(db_path: str | None = None) -> int:
    own_dir = None
    if db_path is None:
        own_dir = tempfile.mkdtemp(prefix="duraflow-demo-")
        db_path = os.path.join(own_dir, "demo.db")
    provider = SqliteProvider.open(db_path)
    runtime = Runtime(provider, RuntimeOptions(dispatcher_poll_interval_ms=20))
    register_samples(runtime)
    client = Client(provider)
    runtime.start()
    rows: list[tuple[str, str, str, str, str]] = []
    failures = 0
    try:
        run_id = f"{int(time.time() * 1000):x}"
        for sample in SAMPLES:
            instance_id = f"demo-{sample.orchestration}-{run_id}"
            began = time.perf_counter()
            client.start_orchestration(instance_id, sample.orchestration, sample.input)
            if sample.after_start is not None:
                sample.after_start(client, instance_id)
            result = client.wait_for_orchestration(instance_id, 30_000)
            elapsed = f"{(time.perf_counter() - began) * 1000:.0f} ms"
            shown = result.output if result.status == Status.COMPLETED else result.error
            failures += result.status != Status.COMPLETED
            rows.append((sample.name, sample.pattern, result.status, str(shown), elapsed))
    finally:
        runtime.shutdown(2_000)
    _print_table(("sample", "pattern", "status", "output", "time"), rows)
    print(f"\n{len(rows) - failures}/{len(rows)} samples completed; database: {db_path}")
    return 1 if failures else 0


def _print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    limit = 60
    cells = [header, *[tuple(c if len(c) <= limit else c[: limit - 1] + "…" for c in r)
                        for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in cells[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
