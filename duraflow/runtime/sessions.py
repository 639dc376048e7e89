"""The runtime's session manager: which sessions it holds, and keeping their leases alive.

Session affinity itself is enforced by the store: the worker fetch only hands out a session's
activities to the owner holding its lease, and claims free sessions in the same atomic step
(``SessionClaim``). This module decides what the runtime asks for and keeps the leases:

- **Owner ids.** With ``worker_node_id`` set, every slot of the runtime acts for that one id,
  so a restarted pod with the same id (a StatefulSet pod) regains its sessions at once.
  Without it, affinity is per worker slot (``work-{slot}-{runtime}``), as in duroxide.
- **Capacity.** The runtime serves at most ``max_sessions_per_runtime`` distinct sessions:
  once it holds that many, its fetches take only its own sessions' and session-less work.
- **Leases.** Every renewal interval (duroxide's rule on ``session_lock_timeout_ms`` and
  ``session_lock_renewal_buffer_ms``) one statement renews the leases of sessions active
  within ``session_idle_timeout_ms`` and releases the idle ones; the store's answer is the
  set of sessions held. Every five minutes lapsed sessions with no work left are forgotten.
- **Shutdown.** A graceful stop releases every lease so another worker takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from duraflow.providers.items import SessionClaim, WorkLease
from duraflow.providers.protocol import Provider
from duraflow.runtime.options import RuntimeOptions, renewal_interval_ms

log = logging.getLogger("duraflow.runtime")

#: How often lapsed session rows without work are deleted (duroxide: 5 minutes).
CLEANUP_INTERVAL_S = 300.0


def slot_owner(slot: int, worker_id: str) -> str:
    return f"work-{slot}-{worker_id}"


class SessionManager:
    def __init__(
        self, provider: Provider, options: RuntimeOptions, worker_id: str, slots: int
    ) -> None:
        self._provider = provider
        self._options = options
        self.shared_owner = options.worker_node_id  # None: one owner id per slot
        self._worker_id = worker_id
        self.all_owners: tuple[str, ...] = (
            (self.shared_owner,)
            if self.shared_owner
            else tuple(slot_owner(i, worker_id) for i in range(max(slots, 1)))
        )
        self._held: set[str] = set()
        #: Fetches in flight that may each claim a new session (see ``claim``).
        self._claiming = 0
        self._claimed_since_renewal: set[str] = set()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_cleanup = time.monotonic()
        #: Where renewal failures go instead of a warning each (the runtime's database health).
        self.on_error: Callable[[Exception], None] | None = None

    @property
    def sessions_held(self) -> int:
        return len(self._held)

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    def claim(self, free_slots: Sequence[int]) -> SessionClaim:
        """What the next fetch may take, given the slots free to run it. Several fetches
        can be in flight (the fetch loop, slots fetching with their acks), and each may
        claim a new session, so each one allowed to counts against the cap until
        ``settle`` is called with its claim."""
        if self.shared_owner:
            owners: tuple[str, ...] = (self.shared_owner,)
        else:
            owners = tuple(slot_owner(i, self._worker_id) for i in free_slots) or self.all_owners
        allow_new = len(self._held) + self._claiming < self._options.max_sessions_per_runtime
        if allow_new:
            self._claiming += 1
        return SessionClaim(owners, self._options.session_lock_timeout_ms, allow_new)

    def settle(self, claim: SessionClaim) -> None:
        """The fetch made with ``claim`` returned (or failed); call before ``fetched``."""
        if claim.allow_new:
            self._claiming -= 1

    def slot_for(self, lease: WorkLease, free_slots: list[int]) -> int | None:
        """The slot that must run ``lease`` (per-slot affinity), or None for any slot."""
        if lease.session_id is None or self.shared_owner or lease.session_owner is None:
            return None
        for slot in free_slots:
            if slot_owner(slot, self._worker_id) == lease.session_owner:
                return slot
        return None

    def fetched(self, lease: WorkLease) -> None:
        if lease.session_id is not None:
            self._held.add(lease.session_id)
            self._claimed_since_renewal.add(lease.session_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="duraflow-sessions")

    async def _run(self) -> None:
        interval_s = renewal_interval_ms(
            self._options.session_lock_timeout_ms, self._options.session_lock_renewal_buffer_ms
        ) / 1000
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)
            if self._stopping.is_set():
                return
            try:
                await self.renew()
                if time.monotonic() - self._last_cleanup >= CLEANUP_INTERVAL_S:
                    self._last_cleanup = time.monotonic()
                    removed = await self._provider.cleanup_sessions()
                    if removed:
                        log.debug("forgot %d lapsed session(s) without work", removed)
            except Exception as exc:  # the next tick retries; leases outlive one miss
                if self.on_error is not None:
                    self.on_error(exc)
                else:
                    log.warning("session lease renewal failed: %s", exc)

    async def renew(self) -> None:
        """Renew active leases, release idle ones, and learn which sessions are held."""
        if not self._held and not self._claimed_since_renewal:
            return  # nothing to renew: no query at all for runtimes without sessions
        self._claimed_since_renewal = set()
        held = await self._provider.renew_sessions(
            self.all_owners,
            self._options.session_lock_timeout_ms,
            self._options.session_idle_timeout_ms,
        )
        before = len(self._held)
        self._held = set(held) | self._claimed_since_renewal
        if len(self._held) < before:  # room for new sessions: look for their work now
            self._provider.notifier.notify_worker()

    async def stop(self) -> None:
        """Stop renewing and release every lease of this runtime."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self.release_all()

    async def release_all(self) -> None:
        """Release every lease of this runtime (a stop, or a drain once nothing runs), so
        another worker takes their sessions at once."""
        try:
            released = await self._provider.release_sessions(self.all_owners)
        except Exception as exc:
            log.warning("could not release this runtime's sessions: %s (they move to another "
                        "worker when their leases lapse)", exc)
            return
        if released:
            log.info("released %d session(s) for other workers", released)
        self._held.clear()
