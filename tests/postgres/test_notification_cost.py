"""Notifications cost every listening backend a transaction, so they are sent sparingly:
only when another process listens, and at most one per interval per process under load."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from duraflow.providers.postgres.announce import (
    MAX_PAYLOAD_BYTES,
    Announcement,
    Announcer,
    decode_change,
)

from .helpers import peer, wait_until

pytestmark = pytest.mark.postgres


async def test_a_lone_process_does_not_notify_until_a_peer_says_hello(
    postgres_provider_factory: Any,
) -> None:
    a = await postgres_provider_factory()
    try:
        assert a.listener is not None and a.listener.peers == 0
        assert not a.notify_peers
        async with peer(a) as b:
            assert b.notify_peers  # b counted a when it connected
            await wait_until(lambda: a.notify_peers)  # a heard b's hello
    finally:
        await a.close()


class Sent:
    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.event = asyncio.Event()

    async def __call__(self, payload: str) -> None:
        self.payloads.append(json.loads(payload))
        self.event.set()


async def test_announcements_within_the_interval_are_merged_into_one() -> None:
    sent = Sent()
    announcer = Announcer(sent, interval_s=0.05)
    first = announcer.take()
    assert first is not None  # quiet: the first one rides in its own commit
    announcer.sent_in_commit()
    assert announcer.take() is None  # within the interval: must wait
    announcer.defer(2_000, False, [("a", ["Running", 0, 0])])
    announcer.defer(1_000, True, [("a", ["Completed", 0, 0]), ("b", ["", 1, 0])])
    await asyncio.wait_for(sent.event.wait(), 5)
    assert sent.payloads == [
        {"o": 1_000, "w": 1, "i": {"a": ["Completed", 0, 0], "b": ["", 1, 0]},
         "p": announcer.sender}  # the sender: its own listener knows it for its own
    ]
    assert announcer.sent == 2


async def test_a_failed_commit_hands_its_announcement_back() -> None:
    sent = Sent()
    announcer = Announcer(sent, interval_s=0.05)
    taken = announcer.take()
    assert taken is not None
    taken.merge(5, False, [("x", ["Failed", 0, 0])])
    announcer.restore(taken)  # the commit that carried it rolled back
    await asyncio.wait_for(sent.event.wait(), 5)
    assert sent.payloads == [{"o": 5, "i": {"x": ["Failed", 0, 0]}, "p": announcer.sender}]


def test_too_many_instances_become_a_wildcard() -> None:
    many = Announcement()
    many.merge(None, False, [(f"instance-{n:06d}", ["Completed", 0, 0]) for n in range(500)])
    payload = many.payload()
    assert len(payload) <= MAX_PAYLOAD_BYTES
    assert json.loads(payload) == {"i": "*"}


def test_changes_travel_with_what_changed() -> None:
    change = decode_change(["Completed", 0, 1])
    assert change is not None
    assert (change.status, change.custom_status_changed, change.kv_changed) == (
        "Completed", False, True)
    assert decode_change("garbage") is None  # unknown: the waiter re-reads
