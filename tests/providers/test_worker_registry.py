"""The worker registry: one row per runtime, alive while it heartbeats, gone after three
missed intervals, deleted on request; and the activity backlog per tag."""

from __future__ import annotations

import dataclasses

from duraflow.core.models import WorkerInfo
from duraflow.providers.protocol import Provider

from .support import Turns, activity, eventually, now_ms


def _worker(node: str = "pod-0", runtime: str = "r1", **changes: object) -> WorkerInfo:
    info = WorkerInfo(
        worker_node_id=node,
        runtime_id=runtime,
        host="host-a",
        pid=4242,
        tag_filter="default_and",
        tags=("gpu",),
        orchestrations={"Chat": ("1.0.0", "2.0.0"), "Hello": ("1.0.0",)},
        activities=("Generate", "SayHello"),
        orchestration_concurrency=2,
        worker_concurrency=8,
        max_sessions=10,
        sessions_held=0,
        started_at_ms=now_ms(),
        last_seen_at_ms=0,
        heartbeat_interval_ms=5_000,
        alive=True,
    )
    return dataclasses.replace(info, **changes)  # type: ignore[arg-type]


async def test_heartbeat_records_every_field(provider: Provider) -> None:
    sent = _worker()
    before = now_ms()
    await provider.heartbeat_worker(sent)
    (got,) = await provider.list_workers()
    assert got.alive
    assert before - 1_000 <= got.last_seen_at_ms <= now_ms() + 1_000
    assert dataclasses.replace(got, last_seen_at_ms=0) == sent
    assert got.to_dict()["orchestrations"] == {"Chat": ["1.0.0", "2.0.0"], "Hello": ["1.0.0"]}


async def test_heartbeat_updates_the_same_row(provider: Provider) -> None:
    await provider.heartbeat_worker(_worker(sessions_held=0))
    await provider.heartbeat_worker(_worker(sessions_held=3))
    workers = await provider.list_workers()
    assert [(w.worker_node_id, w.sessions_held) for w in workers] == [("pod-0", 3)]


async def test_runtimes_are_listed_by_worker_node_id(provider: Provider) -> None:
    await provider.heartbeat_worker(_worker("pod-1", "b"))
    await provider.heartbeat_worker(_worker("pod-0", "a"))
    await provider.heartbeat_worker(_worker("pod-0", "c"))  # a restart: new runtime id
    listed = [(w.worker_node_id, w.runtime_id) for w in await provider.list_workers()]
    assert sorted(listed) == [("pod-0", "a"), ("pod-0", "c"), ("pod-1", "b")]
    assert [node for node, _ in listed] == ["pod-0", "pod-0", "pod-1"]


async def test_a_runtime_is_gone_after_three_missed_heartbeats(provider: Provider) -> None:
    await provider.heartbeat_worker(_worker("quick", heartbeat_interval_ms=50))
    await provider.heartbeat_worker(_worker("steady", heartbeat_interval_ms=60_000))

    async def quick_gone() -> bool | None:
        names = [w.worker_node_id for w in await provider.list_workers()]
        return True if names == ["steady"] else None

    await eventually(quick_gone, timeout_s=5.0)
    everyone = await provider.list_workers(include_gone=True)
    assert [(w.worker_node_id, w.alive) for w in everyone] == [("quick", False), ("steady", True)]


async def test_remove_worker_deletes_only_that_runtime(provider: Provider) -> None:
    await provider.heartbeat_worker(_worker("pod-0", "a"))
    await provider.heartbeat_worker(_worker("pod-1", "b"))
    await provider.remove_worker("pod-0", "a")
    await provider.remove_worker("pod-0", "a")  # idempotent
    assert [w.worker_node_id for w in await provider.list_workers(include_gone=True)] == ["pod-1"]


async def test_heartbeat_cleans_up_rows_unseen_beyond_the_retention(provider: Provider) -> None:
    await provider.heartbeat_worker(_worker("old", heartbeat_interval_ms=10))

    async def old_is_gone() -> bool | None:
        return True if not await provider.list_workers() else None

    await eventually(old_is_gone)
    await provider.heartbeat_worker(_worker("new"), retention_ms=60_000)
    assert {w.worker_node_id for w in await provider.list_workers(include_gone=True)} == {
        "old",
        "new",
    }
    await provider.heartbeat_worker(_worker("new"), retention_ms=0)
    assert [w.worker_node_id for w in await provider.list_workers(include_gone=True)] == ["new"]


async def test_activity_backlog_counts_waiting_rows_per_tag(
    provider: Provider, turns: Turns
) -> None:
    assert await provider.get_activity_backlog() == {}
    await turns.create(
        "a",
        worker_items=[
            activity("a", 2),
            activity("a", 3, tag="gpu"),
            activity("a", 4, tag="gpu"),
            activity("a", 5),
            activity("a", 6),
        ],
    )
    assert await provider.get_activity_backlog() == {None: 3, "gpu": 2}
    lease = await turns.lease()  # locked rows are in flight, not waiting
    assert lease.tag is None
    assert await provider.get_activity_backlog() == {None: 2, "gpu": 2}


async def test_a_runtimes_build_is_recorded_and_counted_per_build(provider: Provider) -> None:
    await provider.register_build("v1", True)
    await provider.heartbeat_worker(_worker("pod-0", "a", build_id="v1"))
    await provider.heartbeat_worker(_worker("pod-1", "b", build_id="v1"))
    await provider.heartbeat_worker(_worker("pod-2", "c", last_seen_at_ms=0))  # no build
    await provider.heartbeat_worker(_worker("pod-1", "b", build_id="v1",
                                            heartbeat_interval_ms=1))  # stops beating
    assert [w.build_id for w in await provider.list_workers(include_gone=True)] == [
        "v1", "v1", None]
    assert (await provider.list_workers())[0].to_dict()["build_id"] == "v1"
    live = await eventually(lambda: _live(provider))
    assert live == 1


async def _live(provider: Provider) -> int | None:
    (build,) = await provider.list_builds()
    return build.live_workers if build.live_workers == 1 else None
