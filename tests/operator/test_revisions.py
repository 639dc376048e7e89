"""The rollout's decisions (``duraflow_operator.revisions.plan``), pure: the cases the end-to-end
tests (test_rollouts.py) reach only by timing, and the safety rules of an adoption, each in
isolation and in microseconds."""

from __future__ import annotations

from typing import Any

from duraflow_operator.revisions import DRAINED, DRAINING, Revision, in_rollout, needs_polling, plan
from duraflow_operator.spec import parse_worker_pool

from duraflow import BuildInfo, WorkerInfo

NOW = 1_800_000_000.0
SPEC = {"image": "shop:v2", "app": "shop:register", "replicas": 2, "buildId": "v2",
        "databaseSecretRef": {"name": "db", "key": "url"}}


def body(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "shop", "namespace": "ns1", "uid": "u", "generation": 3},
            "spec": {**SPEC, **spec}, "status": status or {}}


def rev(build: str, ready: int = 2, replicas: int = 2, adopted: bool = False,
        build_aware: bool = True, unrecorded: bool = False) -> Revision:
    return Revision(build=build, name="shop" if adopted else f"shop-{build}", adopted=adopted,
                    build_aware=build_aware, replicas=replicas, ready=ready, rolled_out=True,
                    unrecorded=unrecorded)


def builds(**pinned: tuple[str, int]) -> dict[str, BuildInfo]:
    return {b: BuildInfo(b, state, 1, count, 0) for b, (state, count) in pinned.items()}


def worker(node: str, build: str | None) -> WorkerInfo:
    return WorkerInfo(node, "r", "h", 1, "all", (), {}, (), 1, 1, 1, 0, 0, 0, 1000, True, build)


def test_a_ready_revision_is_promoted_and_the_old_one_drains() -> None:
    step = plan(body({"currentBuild": "v1"}), parse_worker_pool(body()["spec"]),
                [rev("v1"), rev("v2")], builds(v1=("current", 3), v2=("pending", 0)), [], NOW)
    assert step.promote == "v2" and step.scale == {"shop-v1": 1} and not step.delete
    assert [e[1] for e in step.events] == ["BuildPromoted", "RevisionDraining"]
    states = {e["build"]: e["state"] for e in step.status["revisions"]}
    assert states == {"v2": "Current", "v1": DRAINING} and step.status["draining"] == 1


def test_nothing_is_promoted_before_the_pods_are_ready_or_while_the_store_is_away() -> None:
    spec = parse_worker_pool(body()["spec"])
    known = builds(v1=("current", 0), v2=("pending", 0))
    not_ready = plan(body({"currentBuild": "v1"}), spec, [rev("v1"), rev("v2", ready=1)],
                     known, [], NOW)
    assert not_ready.promote is None and not_ready.status["currentBuild"] == "v1"
    assert "1 of 2 ready" in not_ready.status["_conditions"][1]["message"]
    away = plan(body({"currentBuild": "v1"}), spec, [rev("v1"), rev("v2")], None, [], NOW)
    assert away.promote is None and not away.delete


def test_manual_waits_for_promote_to_name_the_build() -> None:
    manual = {"strategy": "Manual"}
    known = builds(v1=("current", 0), v2=("pending", 0))
    waiting = plan(body({"currentBuild": "v1"}, rollout=manual),
                   parse_worker_pool(body(rollout=manual)["spec"]), [rev("v1"), rev("v2")],
                   known, [], NOW)
    assert waiting.promote is None
    assert waiting.status["_conditions"][1]["reason"] == "WaitingForPromotion"
    told = {**manual, "promote": "v2"}
    step = plan(body({"currentBuild": "v1"}, rollout=told),
                parse_worker_pool(body(rollout=told)["spec"]), [rev("v1"), rev("v2")], known,
                [], NOW)
    assert step.promote == "v2"


def test_a_drained_revision_goes_after_the_grace_period_not_before() -> None:
    spec = parse_worker_pool(body(rollout={"drainGraceSeconds": 60})["spec"])
    known = builds(v1=("draining", 0), v2=("current", 0))
    first = plan(body({"currentBuild": "v2"}), spec, [rev("v1", replicas=1), rev("v2")],
                 known, [], NOW)
    entry = next(e for e in first.status["revisions"] if e["build"] == "v1")
    assert entry["state"] == DRAINED and not first.delete
    later = plan(body({"currentBuild": "v2", "revisions": first.status["revisions"]}), spec,
                 [rev("v1", replicas=1), rev("v2")], known, [], NOW + 61)
    assert later.delete == ["shop-v1"]
    assert [e[1] for e in later.events] == ["RevisionDeleted"]
    # Something pinned again meanwhile: the clock starts over.
    again = plan(body({"currentBuild": "v2", "revisions": first.status["revisions"]}), spec,
                 [rev("v1", replicas=1), rev("v2")], builds(v1=("draining", 1),
                                                             v2=("current", 0)), [], NOW + 61)
    assert not again.delete
    # The store's current build (promoted by someone else) is never deleted.
    current = plan(body({"currentBuild": "v2", "revisions": first.status["revisions"]}), spec,
                   [rev("v1", replicas=1), rev("v2")],
                   builds(v1=("current", 0), v2=("draining", 0)), [], NOW + 61)
    assert not current.delete


def test_pinned_executions_without_a_ready_pod_are_reported_once() -> None:
    spec = parse_worker_pool(body(rollout={"drainingReplicas": 0})["spec"])
    known = builds(v1=("draining", 2), v2=("current", 0))
    before = [{"build": "v1", "state": DRAINING, "readyReplicas": 1, "pinnedExecutions": 2}]
    step = plan(body({"currentBuild": "v2", "revisions": before}), spec,
                [rev("v1", ready=0, replicas=0), rev("v2")], known, [], NOW)
    assert [e[1] for e in step.events] == ["DrainingWithoutWorkers"]
    repeat = plan(body({"currentBuild": "v2", "revisions": step.status["revisions"]}), spec,
                  [rev("v1", ready=0, replicas=0), rev("v2")], known, [], NOW)
    assert repeat.events == []


def test_an_adoption_pins_first_and_tells_the_pods_their_build_before_any_promotion() -> None:
    spec = parse_worker_pool(body()["spec"])
    # Adopted now: recorded and pinned, its pods untouched, current.
    legacy = rev("v1", adopted=True, build_aware=False, unrecorded=True)
    adopted = plan(body(), parse_worker_pool(body(buildId="v1")["spec"]), [legacy],
                   builds(), [worker("shop-0", None)], NOW)
    assert adopted.record == {"shop": "v1"} and adopted.adopt == ["v1"]
    assert not adopted.tell_build and adopted.status["currentBuild"] == "v1"
    assert adopted.desired["metadata"]["name"] == "shop"  # the same StatefulSet, as it was
    assert "DURAFLOW_BUILD_ID" not in str(adopted.desired)

    # A new build: first the adopted pods learn theirs; nothing is promoted meanwhile.
    known = builds(v1=("current", 4), v2=("pending", 0))
    told = plan(body({"currentBuild": "v1"}), spec,
                [rev("v1", adopted=True, build_aware=False), rev("v2")], known,
                [worker("shop-0", None)], NOW)
    assert told.tell_build == {"shop": "v1"} and told.promote is None and not told.adopt
    # Told, but a build-less pod still runs: still nothing.
    restarting = plan(body({"currentBuild": "v1"}), spec,
                      [rev("v1", adopted=True), rev("v2")], known,
                      [worker("shop-0", None), worker("shop-1", "v1")], NOW)
    assert restarting.promote is None and not restarting.adopt
    assert "shop-0 still without" in restarting.status["_conditions"][1]["message"]
    # None left: what they ran is pinned again, in the same step as the promotion.
    ready = plan(body({"currentBuild": "v1"}), spec, [rev("v1", adopted=True), rev("v2")],
                 known, [worker("shop-0", "v1"), worker("shop-v2-0", "v2")], NOW)
    assert ready.adopt == ["v1"] and ready.promote == "v2"


def test_a_rollout_is_in_progress_until_one_ready_revision_is_left() -> None:
    done = {"currentBuild": "v2", "desiredBuild": "v2", "revisions": [{"build": "v2"}],
            "conditions": [{"type": "RolloutComplete", "status": "True"}]}
    assert not in_rollout(done)
    assert in_rollout({**done, "revisions": [{"build": "v2"}, {"build": "v1"}]})
    assert in_rollout({**done, "desiredBuild": "v3"})
    refused = {"conditions": [{"type": "Accepted", "status": "False"}]}
    assert not in_rollout(refused)  # kopf retries a refused pool with backoff


def test_only_waits_no_kubernetes_event_ends_are_polled() -> None:
    def status(reason: str, *states: str) -> dict[str, Any]:
        return {"currentBuild": "v1", "desiredBuild": "v2",
                "revisions": [{"build": f"b{i}", "state": s} for i, s in enumerate(states)],
                "conditions": [{"type": "Progressing", "status": "True", "reason": reason},
                               {"type": "RolloutComplete", "status": "False"}]}

    assert not needs_polling(status("WaitingForPods", "Current", "Pending"))  # a pod event
    assert needs_polling(status("WaitingForRegistration", "Current", "Pending"))
    assert not needs_polling(status("WaitingForPromotion", "Current", "Pending"))  # a spec edit
    assert needs_polling(status("AdoptingPods", "Current", "Pending"))  # the worker registry
    assert needs_polling(status("WaitingForDatabase", "Current", "Pending"))
    assert needs_polling(status("Draining", "Current", DRAINING))  # pinned executions
    assert needs_polling(status("Draining", "Current", DRAINED))  # the grace period
