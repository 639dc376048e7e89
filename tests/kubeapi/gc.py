"""The garbage collector: dependents follow their owners (``ownerReferences`` by uid).

- Background (the default): once an owner is gone from storage, each dependent whose owners
  are all gone is deleted (through the normal delete path, so its own finalizers hold it);
  a dependent that still has a live owner only loses the dangling reference.
- Orphan (``propagationPolicy: Orphan``): the owner gets the ``orphan`` finalizer; the
  collector removes the references to it from its dependents, then the finalizer.
- Foreground: the owner gets ``foregroundDeletion``; its dependents are deleted first, and
  the finalizer goes once none with ``blockOwnerDeletion: true`` is left.
- An object created with references to owners that do not exist is collected as well.

It runs asynchronously after the triggering request (``delay`` seconds, 0 by default), like
the real controller, so a test waits for its effects rather than assuming them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.kubeapi.server import KubeAPIServer

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


class GarbageCollector:
    def __init__(self, server: KubeAPIServer, delay: float = 0.0) -> None:
        self.server = server
        self.delay = delay
        self._tasks: set[asyncio.Task[None]] = set()
        self.enabled = True

    def _later(self, work: Any) -> None:
        if not self.enabled:
            return

        async def run() -> None:
            if self.delay:
                await asyncio.sleep(self.delay)
            work()

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every scheduled collection has run (for tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()

    # -- triggers ------------------------------------------------------------------------

    def owner_removed(self, uid: str) -> None:
        self._later(lambda: self._collect_dependents(uid))

    def owner_deleting(self, owner: dict[str, Any]) -> None:
        finalizers = owner["metadata"].get("finalizers") or []
        uid = owner["metadata"]["uid"]
        if ORPHAN in finalizers:
            self._later(lambda: self._orphan(uid))
        if FOREGROUND in finalizers:
            self._later(lambda: self._foreground(uid))

    def created(self, obj: dict[str, Any]) -> None:
        if obj["metadata"].get("ownerReferences"):
            uid = obj["metadata"]["uid"]
            self._later(lambda: self._check_created(uid))

    # -- work ----------------------------------------------------------------------------

    def _dependents(self, uid: str) -> list[tuple[str, dict[str, Any]]]:
        return [(key, obj) for key, obj in self.server.store.all_items()
                if any(ref.get("uid") == uid
                       for ref in obj["metadata"].get("ownerReferences") or [])]

    def _collect_dependents(self, uid: str) -> None:
        for key, obj in self._dependents(uid):
            self._resolve(key, obj)
        self._advance_foreground()

    def _resolve(self, key: str, obj: dict[str, Any]) -> None:
        refs = obj["metadata"].get("ownerReferences") or []
        alive = [r for r in refs if self.server.uid_exists(r.get("uid", ""))]
        if not alive:
            self.server.internal_delete(key, obj)
        elif len(alive) != len(refs):
            self.server.internal_update(key, obj, {"ownerReferences": alive})

    def _check_created(self, uid: str) -> None:
        found = self.server.find_uid(uid)
        if found is not None:
            self._resolve(*found)

    def _orphan(self, uid: str) -> None:
        for key, obj in self._dependents(uid):
            refs = [r for r in obj["metadata"].get("ownerReferences") or []
                    if r.get("uid") != uid]
            self.server.internal_update(key, obj, {"ownerReferences": refs or None})
        self._drop_finalizer(uid, ORPHAN)

    def _foreground(self, uid: str) -> None:
        for key, obj in self._dependents(uid):
            if not obj["metadata"].get("deletionTimestamp"):
                self.server.internal_delete(key, obj)
        self._advance_foreground()

    def _advance_foreground(self) -> None:
        """Release owners in foreground deletion whose blocking dependents are all gone."""
        for _, obj in list(self.server.store.all_items()):
            if FOREGROUND not in (obj["metadata"].get("finalizers") or []):
                continue
            uid = obj["metadata"]["uid"]
            blocking = [d for _, d in self._dependents(uid)
                        if any(r.get("uid") == uid and r.get("blockOwnerDeletion")
                               for r in d["metadata"].get("ownerReferences") or [])]
            if not blocking:
                self._drop_finalizer(uid, FOREGROUND)

    def _drop_finalizer(self, uid: str, finalizer: str) -> None:
        found = self.server.find_uid(uid)
        if found is None:
            return
        key, obj = found
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        self.server.internal_update(key, obj, {"finalizers": finalizers or None})
