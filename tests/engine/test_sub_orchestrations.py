"""Sub-orchestrations (awaited children) and detached orchestrations (fire and forget)."""

from __future__ import annotations

from .support import TIMEOUT_MS, completed, failed, uid, wait_for_custom_status


def _register_child(rt):
    rt.register_activity("Double", lambda ctx, n: 2 * n)

    @rt.register_orchestration("Child")
    def child(ctx, n):
        doubled = yield ctx.schedule_activity("Double", n)
        return {"child": ctx.instance_id, "value": doubled}


def test_sub_orchestration_returns_child_output(start_runtime, client):
    def register(rt):
        _register_child(rt)

        @rt.register_orchestration("Parent")
        def parent(ctx, n):
            result = yield ctx.schedule_sub_orchestration("Child", n)
            return {"parent_saw": result["value"], "child_id": result["child"]}

    start_runtime(register)
    iid = uid("parent")
    client.start_orchestration(iid, "Parent", 21)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output["parent_saw"] == 42
    child_id = output["child_id"]
    assert child_id != iid and child_id.startswith(iid)
    assert client.get_status(child_id).status == "Completed"
    assert client.get_instance_info(child_id).parent_instance_id == iid


def test_sub_orchestration_with_explicit_id(start_runtime, client):
    iid = uid("parent-id")
    child_id = f"{iid}-the-child"

    def register(rt):
        _register_child(rt)

        @rt.register_orchestration("ParentWithId")
        def parent(ctx, n):
            result = yield ctx.schedule_sub_orchestration_with_id("Child", child_id, n)
            return result

    start_runtime(register)
    client.start_orchestration(iid, "ParentWithId", 5)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "child": child_id, "value": 10}
    child = client.get_status(child_id)
    assert completed(child) == {"child": child_id, "value": 10}
    info = client.get_instance_info(child_id)
    assert info.parent_instance_id == iid
    assert info.orchestration_name == "Child"


def test_versioned_sub_orchestration_runs_requested_version(start_runtime, client):
    def register(rt):
        @rt.register_orchestration_versioned("Versioned", "1.0.0")
        def v1(ctx, _):
            return f"v1 ran as {ctx.orchestration_version}"
            yield  # a generator

        @rt.register_orchestration_versioned("Versioned", "2.0.0")
        def v2(ctx, _):
            return f"v2 ran as {ctx.orchestration_version}"
            yield

        @rt.register_orchestration("PicksVersions")
        def parent(ctx, _):
            pinned = yield ctx.schedule_sub_orchestration_versioned("Versioned", "1.0.0", None)
            latest = yield ctx.schedule_sub_orchestration_versioned("Versioned", None, None)
            return [pinned, latest]

    start_runtime(register)
    iid = uid("subversion")
    client.start_orchestration(iid, "PicksVersions", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        "v1 ran as 1.0.0", "v2 ran as 2.0.0"]


def test_fan_out_of_several_sub_orchestrations(start_runtime, client):
    def register(rt):
        _register_child(rt)

        @rt.register_orchestration("FanOutChildren")
        def parent(ctx, count):
            results = yield ctx.all(
                [ctx.schedule_sub_orchestration("Child", i) for i in range(count)]
            )
            return [r["ok"]["value"] for r in results]

    start_runtime(register)
    iid = uid("subfan")
    client.start_orchestration(iid, "FanOutChildren", 4)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [0, 2, 4, 6]
    assert len(client.get_instance_tree(iid).all_ids) == 5


def test_chained_sub_orchestrations_reach_grandchild(start_runtime, client):
    def register(rt):
        rt.register_activity("Label", lambda ctx, s: f"<{s}>")

        @rt.register_orchestration("Grandchild")
        def grandchild(ctx, s):
            return (yield ctx.schedule_activity("Label", s))

        @rt.register_orchestration("Middle")
        def middle(ctx, s):
            inner = yield ctx.schedule_sub_orchestration("Grandchild", s + "-gc")
            return f"middle({inner})"

        @rt.register_orchestration("Top")
        def top(ctx, s):
            inner = yield ctx.schedule_sub_orchestration("Middle", s)
            return f"top({inner})"

    start_runtime(register)
    iid = uid("chain")
    client.start_orchestration(iid, "Top", "x")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "top(middle(<x-gc>))"
    tree = client.get_instance_tree(iid)
    assert tree.root_id == iid
    assert tree.size == 3


def test_child_failure_is_catchable_in_parent(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("BrokenChild")
        def broken(ctx, _):
            yield ctx.schedule_timer(1)
            raise ValueError("child could not cope")

        @rt.register_orchestration("CarefulParent")
        def parent(ctx, _):
            try:
                yield ctx.schedule_sub_orchestration("BrokenChild", None)
            except Exception as e:
                return f"parent handled: {e}"
            return "child unexpectedly succeeded"

    start_runtime(register)
    iid = uid("childfail")
    client.start_orchestration(iid, "CarefulParent", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output.startswith("parent handled: ")
    assert "child could not cope" in output
    children = client.get_instance_tree(iid).all_ids[1:]
    assert len(children) == 1
    assert "child could not cope" in failed(client.get_status(children[0]))


def test_detached_orchestration_runs_independently(start_runtime, client):
    iid = uid("launcher")
    detached_id = f"{iid}-detached"

    def register(rt):
        @rt.register_orchestration("Detached")
        def detached(ctx, payload):
            ctx.set_custom_status("detached-waiting")
            released = yield ctx.wait_for_event("release")
            return {"payload": payload, "released": released}

        @rt.register_orchestration("Launcher")
        def launcher(ctx, _):
            started = yield ctx.start_orchestration("Detached", detached_id, {"from": "launcher"})
            return {"launched": detached_id, "start_result": started}

    start_runtime(register)
    client.start_orchestration(iid, "Launcher", None)
    # The launcher finishes without waiting for the detached instance.
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "launched": detached_id, "start_result": None}
    wait_for_custom_status(client, detached_id, "detached-waiting")
    assert client.get_status(detached_id).status == "Running"
    client.raise_event(detached_id, "release", "now")
    assert completed(client.wait_for_orchestration(detached_id, TIMEOUT_MS)) == {
        "payload": {"from": "launcher"}, "released": "now"}
    # Detached means no parent link: it is its own root.
    assert client.get_instance_info(detached_id).parent_instance_id is None
    assert client.get_instance_tree(iid).all_ids == [iid]


def test_instance_tree_lists_all_descendants(start_runtime, client):
    iid = uid("tree")

    def register(rt):
        @rt.register_orchestration("Leaf")
        def leaf(ctx, _):
            return "leaf"
            yield

        @rt.register_orchestration("Branch")
        def branch(ctx, _):
            yield ctx.schedule_sub_orchestration_with_id("Leaf", f"{ctx.instance_id}-leaf", None)
            return "branch"

        @rt.register_orchestration("Root")
        def root(ctx, _):
            yield ctx.all([
                ctx.schedule_sub_orchestration_with_id("Branch", f"{iid}-b1", None),
                ctx.schedule_sub_orchestration_with_id("Leaf", f"{iid}-l2", None),
            ])
            return "root"

    start_runtime(register)
    client.start_orchestration(iid, "Root", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "root"
    tree = client.get_instance_tree(iid)
    assert tree.root_id == iid
    assert tree.all_ids[0] == iid
    assert set(tree.all_ids) == {iid, f"{iid}-b1", f"{iid}-l2", f"{iid}-b1-leaf"}
    assert tree.size == 4
    subtree = client.get_instance_tree(f"{iid}-b1")
    assert set(subtree.all_ids) == {f"{iid}-b1", f"{iid}-b1-leaf"}
