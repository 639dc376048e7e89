"""Tag routing: a worker only ever locks activities its filter accepts."""

from __future__ import annotations

from duraflow.providers.items import WorkerTagFilter
from duraflow.providers.protocol import Provider

from .support import Turns, activity


async def _taken(provider: Provider, tag_filter: WorkerTagFilter) -> list[int]:
    """Activity ids the filter takes (locked and left locked), oldest first."""
    ids = []
    while (lease := await provider.fetch_work_item(30_000, tag_filter)) is not None:
        ids.append(lease.activity_id)
    return ids


async def _mixed(turns: Turns) -> None:
    await turns.create(
        "a",
        worker_items=[
            activity("a", 2),
            activity("a", 3, tag="gpu"),
            activity("a", 4, tag="cpu-heavy"),
            activity("a", 5),
            activity("a", 6, tag="gpu"),
        ],
    )


async def test_default_filter_takes_only_untagged(provider: Provider, turns: Turns) -> None:
    await _mixed(turns)
    assert await _taken(provider, WorkerTagFilter()) == [2, 5]
    assert await _taken(provider, WorkerTagFilter("default_only")) == []


async def test_tags_filter_takes_only_those_tags(provider: Provider, turns: Turns) -> None:
    await _mixed(turns)
    assert await _taken(provider, WorkerTagFilter("tags", ("gpu",))) == [3, 6]
    assert await _taken(provider, WorkerTagFilter("tags", ("gpu", "cpu-heavy"))) == [4]


async def test_default_and_takes_untagged_and_those_tags(provider: Provider, turns: Turns) -> None:
    await _mixed(turns)
    assert await _taken(provider, WorkerTagFilter("default_and", ("gpu",))) == [2, 3, 5, 6]
    assert await _taken(provider, WorkerTagFilter()) == []  # untagged were all taken


async def test_any_filter_takes_everything(provider: Provider, turns: Turns) -> None:
    await _mixed(turns)
    assert await _taken(provider, WorkerTagFilter("any")) == [2, 3, 4, 5, 6]


async def test_none_filter_takes_nothing(provider: Provider, turns: Turns) -> None:
    await _mixed(turns)
    assert await _taken(provider, WorkerTagFilter("none")) == []
    assert await _taken(provider, WorkerTagFilter("any")) == [2, 3, 4, 5, 6]  # nothing was locked


async def test_tag_travels_with_the_lease(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2, tag="gpu")])
    lease = await provider.fetch_work_item(30_000, WorkerTagFilter("tags", ("gpu",)))
    assert lease is not None
    assert (lease.tag, lease.item["tag"]) == ("gpu", "gpu")


async def test_tag_survives_abandon_and_refetch(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2, tag="gpu")])
    gpu = WorkerTagFilter("tags", ("gpu",))
    lease = await provider.fetch_work_item(30_000, gpu)
    assert lease is not None
    await provider.abandon_work_item(lease.lock_token)

    assert await provider.fetch_work_item(30_000) is None  # default filter still refuses it
    again = await provider.fetch_work_item(30_000, gpu)
    assert again is not None and (again.activity_id, again.tag) == (2, "gpu")
