"""Versioned orchestrations: latest for new instances, exact on request, pinned once running."""

from __future__ import annotations

from .support import TIMEOUT_MS, completed, failed, uid, wait_for_custom_status


def _register_versions(rt, versions):
    for version in versions:
        def make(v):
            def orchestration(ctx, value):
                return {"code": v, "reported": ctx.orchestration_version, "value": value}
                yield
            return orchestration

        rt.register_orchestration_versioned("Pricing", version, make(version))


def test_new_instances_take_latest_version(start_runtime, client):
    start_runtime(lambda rt: _register_versions(rt, ["1.0.0", "1.2.0", "2.0.0"]))
    iid = uid("latest")
    client.start_orchestration(iid, "Pricing", 7)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "code": "2.0.0", "reported": "2.0.0", "value": 7}
    assert client.get_instance_info(iid).orchestration_version == "2.0.0"


def test_start_orchestration_versioned_picks_exact_version(start_runtime, client):
    start_runtime(lambda rt: _register_versions(rt, ["1.0.0", "1.2.0", "2.0.0"]))
    iid = uid("exact")
    client.start_orchestration_versioned(iid, "Pricing", 3, "1.2.0")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "code": "1.2.0", "reported": "1.2.0", "value": 3}
    assert client.get_instance_info(iid).orchestration_version == "1.2.0"


def test_unversioned_registration_reports_default_version(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Plain")
        def plain(ctx, _):
            return [ctx.orchestration_name, ctx.orchestration_version]
            yield

    start_runtime(register)
    iid = uid("plain-version")
    client.start_orchestration(iid, "Plain", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == ["Plain", "1.0.0"]


def test_running_instance_stays_on_its_version(start_runtime, client, provider):
    def v1(ctx, _):
        ctx.set_custom_status("v1 waiting")
        value = yield ctx.wait_for_event("go")
        return f"v1 code ({ctx.orchestration_version}) got {value}"

    def v2(ctx, _):
        ctx.set_custom_status("v2 waiting")
        value = yield ctx.wait_for_event("go")
        return f"v2 code ({ctx.orchestration_version}) got {value}"

    old = start_runtime(lambda rt: rt.register_orchestration_versioned("Deploy", "1.0.0", v1))
    iid = uid("pinned")
    client.start_orchestration(iid, "Deploy", None)
    wait_for_custom_status(client, iid, "v1 waiting")
    old.shutdown(5000)

    def register_both(rt):
        rt.register_orchestration_versioned("Deploy", "1.0.0", v1)
        rt.register_orchestration_versioned("Deploy", "2.0.0", v2)

    start_runtime(register_both, provider=provider)  # the "new deployment"
    client.raise_event(iid, "go", "the event")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == (
        "v1 code (1.0.0) got the event")
    fresh = uid("fresh")
    client.start_orchestration(fresh, "Deploy", None)
    wait_for_custom_status(client, fresh, "v2 waiting")
    client.raise_event(fresh, "go", 2)
    assert completed(client.wait_for_orchestration(fresh, TIMEOUT_MS)) == (
        "v2 code (2.0.0) got 2")


def test_upgraded_instance_runs_on_runtime_with_only_new_version(start_runtime, client):
    """After ``continue_as_new_versioned`` moved an instance to 2.0.0, a deployment that
    dropped 1.0.0 can still finish it."""

    def v1(ctx, _):
        return (yield ctx.continue_as_new_versioned("upgraded", "2.0.0"))

    def v2(ctx, note):
        ctx.set_custom_status("on v2")
        value = yield ctx.wait_for_event("go")
        return f"{note} {ctx.orchestration_version} {value}"

    def register_both(rt):
        rt.register_orchestration_versioned("Migrating", "1.0.0", v1)
        rt.register_orchestration_versioned("Migrating", "2.0.0", v2)

    old = start_runtime(register_both)
    iid = uid("migrating")
    client.start_orchestration_versioned(iid, "Migrating", None, "1.0.0")
    wait_for_custom_status(client, iid, "on v2")
    old.shutdown(5000)

    start_runtime(lambda rt: rt.register_orchestration_versioned("Migrating", "2.0.0", v2),
                  max_attempts=2)
    client.raise_event(iid, "go", "ok")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "upgraded 2.0.0 ok"
    assert client.get_instance_info(iid).orchestration_version == "2.0.0"


def test_unregistered_version_fails_instance(start_runtime, client):
    start_runtime(lambda rt: _register_versions(rt, ["1.0.0"]), max_attempts=1)
    iid = uid("no-such-version")
    client.start_orchestration_versioned(iid, "Pricing", None, "9.9.9")
    error = failed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert "Pricing" in error
    assert "9.9.9" in error
