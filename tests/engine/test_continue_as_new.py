"""``continue_as_new``: a fresh execution with carried state, version upgrades, history."""

from __future__ import annotations

from .support import TIMEOUT_MS, completed, history_kinds, uid, wait_for_custom_status


def test_continue_as_new_loops_with_state_until_final_output(start_runtime, client):
    def register(rt):
        rt.register_activity("Add", lambda ctx, pair: pair[0] + pair[1])

        @rt.register_orchestration("Counter")
        def counter(ctx, state):
            total = yield ctx.schedule_activity("Add", [state["total"], state["round"]])
            if state["round"] < 3:
                return (yield ctx.continue_as_new({"round": state["round"] + 1, "total": total}))
            return {"total": total, "execution": ctx.execution_id}

    start_runtime(register)
    iid = uid("can")
    client.start_orchestration(iid, "Counter", {"round": 0, "total": 100})
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output == {"total": 100 + 0 + 1 + 2 + 3, "execution": 4}


def test_list_executions_and_history_per_execution(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Generations")
        def generations(ctx, n):
            yield ctx.schedule_timer(1)
            if n < 2:
                return (yield ctx.continue_as_new(n + 1))
            return f"finished at {n}"

    start_runtime(register)
    iid = uid("executions")
    client.start_orchestration(iid, "Generations", 0)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "finished at 2"
    assert client.list_executions(iid) == [1, 2, 3]
    for execution_id in (1, 2):
        kinds = history_kinds(client, iid, execution_id)
        assert kinds[0] == "OrchestrationStarted"
        assert kinds[-1] == "OrchestrationContinuedAsNew"
        assert "TimerFired" in kinds
    last = client.read_execution_history(iid, 3)
    assert last[0].kind == "OrchestrationStarted"
    assert last[0].event_id == 1
    assert last[-1].kind == "OrchestrationCompleted"
    assert '"finished at 2"' in last[-1].data
    # Each execution's start carries the input it was continued with.
    for execution_id, n in ((1, 0), (2, 1), (3, 2)):
        started = client.read_execution_history(iid, execution_id)[0]
        assert f'"input": "{n}"' in started.data or f'"input": {n}' in started.data
    info = client.get_instance_info(iid)
    assert info.current_execution_id == 3
    assert client.get_execution_info(iid, 1).status == "ContinuedAsNew"
    assert client.get_execution_info(iid, 3).status == "Completed"


def test_continue_as_new_versioned_upgrades_version(start_runtime, client):
    def register(rt):
        @rt.register_orchestration_versioned("Upgrader", "1.0.0")
        def v1(ctx, history):
            history = [*history, f"v1@{ctx.orchestration_version}"]
            return (yield ctx.continue_as_new_versioned(history, "2.0.0"))

        @rt.register_orchestration_versioned("Upgrader", "2.0.0")
        def v2(ctx, history):
            yield ctx.schedule_timer(1)
            return [*history, f"v2@{ctx.orchestration_version}"]

    start_runtime(register)
    iid = uid("upgrade")
    client.start_orchestration_versioned(iid, "Upgrader", [], "1.0.0")
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output == ["v1@1.0.0", "v2@2.0.0"]
    assert client.get_instance_info(iid).orchestration_version == "2.0.0"


def test_plain_continue_as_new_picks_latest_version(start_runtime, client):
    def register(rt):
        @rt.register_orchestration_versioned("Drifter", "1.0.0")
        def v1(ctx, _):
            return (yield ctx.continue_as_new("from v1"))

        @rt.register_orchestration_versioned("Drifter", "1.5.0")
        def v15(ctx, note):
            return f"{note} -> {ctx.orchestration_version}"
            yield

    start_runtime(register)
    iid = uid("drift")
    client.start_orchestration_versioned(iid, "Drifter", None, "1.0.0")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "from v1 -> 1.5.0"


def test_code_after_continue_as_new_never_runs(start_runtime, client):
    ran_after: list[int] = []

    def register(rt):
        @rt.register_orchestration("Stopper")
        def stopper(ctx, n):
            if n == 0:
                yield ctx.continue_as_new(1)
                ran_after.append(ctx.execution_id)
                return "must not be the output"
            return "second execution"

    start_runtime(register)
    iid = uid("stopper")
    client.start_orchestration(iid, "Stopper", 0)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "second execution"
    assert ran_after == []


def test_detached_start_in_continue_as_new_turn_is_not_lost(start_runtime, client):
    iid = uid("can-detached")
    spawned = f"{iid}-spawned"

    def register(rt):
        @rt.register_orchestration("Spawned")
        def spawned_orch(ctx, data):
            return {"spawned_with": data}
            yield

        @rt.register_orchestration("SpawnThenContinue")
        def spawn_then_continue(ctx, generation):
            if generation == 0:
                yield ctx.start_orchestration("Spawned", spawned, "hello")
                return (yield ctx.continue_as_new(1))
            return "second generation"

    start_runtime(register)
    client.start_orchestration(iid, "SpawnThenContinue", 0)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "second generation"
    assert completed(client.wait_for_orchestration(spawned, TIMEOUT_MS)) == {
        "spawned_with": "hello"}


def test_sub_orchestration_that_continues_as_new_reports_final_output(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("CountingChild")
        def counting_child(ctx, n):
            yield ctx.schedule_timer(1)
            if n < 3:
                return (yield ctx.continue_as_new(n + 1))
            return f"child finished at {n} in execution {ctx.execution_id}"

        @rt.register_orchestration("WaitsForCountingChild")
        def parent(ctx, _):
            return (yield ctx.schedule_sub_orchestration("CountingChild", 0))

    start_runtime(register)
    iid = uid("can-child")
    client.start_orchestration(iid, "WaitsForCountingChild", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == (
        "child finished at 3 in execution 4")


def test_event_raised_around_continue_as_new_reaches_next_execution(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Relay")
        def relay(ctx, generation):
            if generation == 0:
                ctx.set_custom_status("gen0 waiting")
                yield ctx.wait_for_event("rollover")
                return (yield ctx.continue_as_new(1))
            value = yield ctx.dequeue_event("work")
            return {"execution": ctx.execution_id, "value": value}

    start_runtime(register)
    iid = uid("relay")
    client.start_orchestration(iid, "Relay", 0)
    wait_for_custom_status(client, iid, "gen0 waiting")
    client.raise_event(iid, "rollover", None)
    client.enqueue_event(iid, "work", "sent right behind the rollover")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "execution": 2, "value": "sent right behind the rollover"}
