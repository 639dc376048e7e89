"""Objects, the resourceVersion clock and the watch event window.

One counter stamps every write (the etcd revision), so a list's ``resourceVersion`` is a
point a watch can resume from. Each write becomes an event in a bounded window (etcd's
compaction, and the watch cache's limit): a watch from a version older than the window is
answered ``410 Gone`` / ``Expired`` ("too old resource version"), which clients must
handle by relisting. Stored objects are never mutated in place: a write stores a new dict, so
events can share them safely.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi import errors

Key = tuple[str | None, str]  # (namespace, name)


@dataclass(frozen=True)
class Event:
    rv: int
    resource: str  # ResourceType.key
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    previous: dict[str, Any] | None = None  # the state before a MODIFIED


@dataclass(eq=False)
class Watcher:
    resource: str
    accepts: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)


class Store:
    def __init__(self, window: int = 100_000) -> None:
        self.revision = 0
        self._objects: dict[str, dict[Key, dict[str, Any]]] = collections.defaultdict(dict)
        self._log: collections.deque[Event] = collections.deque()
        self.window = window
        self.compacted = 0  # events at or below this revision are gone
        self._watchers: dict[str, set[Watcher]] = collections.defaultdict(set)

    def next_rv(self) -> int:
        self.revision += 1
        return self.revision

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._objects[resource].get((namespace, name))

    def items(self, resource: str, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Objects of a resource (one namespace, or all for ``None``), in name order."""
        for (ns, _), obj in sorted(self._objects[resource].items(),
                                   key=lambda kv: (kv[0][0] or "", kv[0][1])):
            if namespace is None or ns == namespace:
                yield obj

    def all_items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for resource, objects in list(self._objects.items()):
            for obj in list(objects.values()):
                yield resource, obj

    def resources(self) -> list[str]:
        return list(self._objects)

    def put(self, resource: str, obj: dict[str, Any], event: str,
            previous: dict[str, Any] | None = None) -> None:
        """Store ``obj`` (already stamped with the next resourceVersion) and publish."""
        meta = obj["metadata"]
        self._objects[resource][(meta.get("namespace"), meta["name"])] = obj
        self._publish(Event(int(meta["resourceVersion"]), resource, event, obj, previous))

    def remove(self, resource: str, obj: dict[str, Any]) -> None:
        """Forget ``obj``; the DELETED event carries its last state at a new version."""
        meta = obj["metadata"]
        self._objects[resource].pop((meta.get("namespace"), meta["name"]), None)
        final = {**obj, "metadata": {**meta, "resourceVersion": str(self.next_rv())}}
        self._publish(Event(self.revision, resource, "DELETED", final))

    def _publish(self, event: Event) -> None:
        self._log.append(event)
        while len(self._log) > self.window:
            self.compacted = self._log.popleft().rv
        for watcher in list(self._watchers.get(event.resource, ())):
            if watcher.accepts(event.obj):
                watcher.queue.put_nowait(event)

    def compact(self) -> None:
        """Drop every event so far (etcd compaction): older watches now get 410."""
        if self._log:
            self.compacted = self._log[-1].rv
        self._log.clear()

    def since(self, resource: str, rv: int) -> list[Event]:
        """Events of ``resource`` after ``rv``; 410 Expired if the window no longer has them."""
        if rv < self.compacted:
            raise errors.expired(f"too old resource version: {rv} ({self.compacted + 1})")
        return [e for e in self._log if e.rv > rv and e.resource == resource]

    def subscribe(self, watcher: Watcher) -> None:
        self._watchers[watcher.resource].add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers[watcher.resource].discard(watcher)

    def watching(self, resource: str) -> int:
        """How many watch streams of ``resource`` are open."""
        return len(self._watchers.get(resource, ()))

    def close_watches(self) -> None:
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
