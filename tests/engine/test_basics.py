"""Activities called in sequence, branches and loops; errors caught or failing the instance."""

from __future__ import annotations

from .support import TIMEOUT_MS, completed, failed, uid


def test_hello_world_returns_activity_result(start_runtime, client):
    def register(rt):
        rt.register_activity("Greet", lambda ctx, name: f"Hello, {name}!")

        @rt.register_orchestration("HelloWorld")
        def hello(ctx, name):
            first = yield ctx.schedule_activity("Greet", "duraflow")
            second = yield ctx.schedule_activity("Greet", name)
            return [first, second]

    start_runtime(register)
    iid = uid("hello")
    client.start_orchestration(iid, "HelloWorld", "World")
    result = client.wait_for_orchestration(iid, TIMEOUT_MS)
    assert completed(result) == ["Hello, duraflow!", "Hello, World!"]
    assert result.error is None


def test_control_flow_follows_activity_result(start_runtime, client):
    def register(rt):
        rt.register_activity("IsEven", lambda ctx, n: n % 2 == 0)
        rt.register_activity("Half", lambda ctx, n: n // 2)
        rt.register_activity("Triple", lambda ctx, n: 3 * n + 1)

        @rt.register_orchestration("Collatz")
        def collatz(ctx, n):
            even = yield ctx.schedule_activity("IsEven", n)
            if even:
                return {"branch": "even", "next": (yield ctx.schedule_activity("Half", n))}
            return {"branch": "odd", "next": (yield ctx.schedule_activity("Triple", n))}

    start_runtime(register)
    even, odd = uid("even"), uid("odd")
    client.start_orchestration(even, "Collatz", 10)
    client.start_orchestration(odd, "Collatz", 7)
    assert completed(client.wait_for_orchestration(even, TIMEOUT_MS)) == {
        "branch": "even", "next": 5}
    assert completed(client.wait_for_orchestration(odd, TIMEOUT_MS)) == {
        "branch": "odd", "next": 22}


def test_loop_carries_state_through_activities(start_runtime, client):
    def register(rt):
        rt.register_activity("Append", lambda ctx, s: s + "x")

        @rt.register_orchestration("Looper")
        def looper(ctx, count):
            acc = ""
            for i in range(count):
                acc = yield ctx.schedule_activity("Append", acc + str(i))
            return acc

    start_runtime(register)
    iid = uid("loop")
    client.start_orchestration(iid, "Looper", 4)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "0x1x2x3x"


def test_activity_error_is_catchable_in_orchestration(start_runtime, client):
    def register(rt):
        def fragile(ctx, value):
            if value == "bad":
                raise ValueError("fragile input rejected")
            return "fine"

        rt.register_activity("Fragile", fragile)
        rt.register_activity("Recover", lambda ctx, msg: f"recovered from: {msg}")

        @rt.register_orchestration("CatchIt")
        def catch_it(ctx, value):
            try:
                return (yield ctx.schedule_activity("Fragile", value))
            except Exception as e:
                message = str(e)
                return (yield ctx.schedule_activity("Recover", message))

    start_runtime(register)
    bad, good = uid("bad"), uid("good")
    client.start_orchestration(bad, "CatchIt", "bad")
    client.start_orchestration(good, "CatchIt", "ok")
    output = completed(client.wait_for_orchestration(bad, TIMEOUT_MS))
    assert output.startswith("recovered from: ")
    assert "fragile input rejected" in output
    assert "ValueError" in output
    assert completed(client.wait_for_orchestration(good, TIMEOUT_MS)) == "fine"


def test_uncaught_activity_error_fails_instance_with_traceback(start_runtime, client):
    def register(rt):
        def explode(ctx, _):
            raise RuntimeError("disk on fire")

        rt.register_activity("Explode", explode)

        @rt.register_orchestration("NoCatch")
        def no_catch(ctx, _):
            yield ctx.schedule_activity("Explode", None)
            return "unreachable"

    start_runtime(register)
    iid = uid("nocatch")
    client.start_orchestration(iid, "NoCatch", None)
    error = failed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert "disk on fire" in error
    assert "Traceback" in error
    assert "no_catch" in error  # the frame of the orchestration that did not catch it


def test_orchestration_exception_fails_instance_with_traceback(start_runtime, client):
    def register(rt):
        rt.register_activity("Noop", lambda ctx, _: None)

        @rt.register_orchestration("Raiser")
        def raiser(ctx, limit):
            yield ctx.schedule_activity("Noop", None)
            raise KeyError(f"limit {limit} exceeded")

    start_runtime(register)
    iid = uid("raiser")
    client.start_orchestration(iid, "Raiser", 3)
    result = client.wait_for_orchestration(iid, TIMEOUT_MS)
    error = failed(result)
    assert "Traceback" in error
    assert "KeyError" in error
    assert "limit 3 exceeded" in error
    assert result.output is None
