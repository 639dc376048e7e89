"""Cross-process notifications, coalesced: at most one ``NOTIFY`` per interval per process.

Each notification costs every listening backend of the database one transaction (it reads
the notification queue), and each notifying commit takes PostgreSQL's notify-queue lock, so
notifying on every commit makes the database's work grow with commits × pods. This module
keeps it to one notification per ``interval_s`` per process, whatever the commit rate:

* the first announcement after a quiet interval rides inside the commit that causes it
  (no extra transaction, no added latency);
* announcements within the interval after it are merged (earliest due time, "worker work
  exists", the set of changed instances) and sent by the next commit once the interval has
  passed, or by a timer with a ``pg_notify`` of its own if no commit comes.

So a quiet system notifies at once and a busy one at most once per interval, which also
bounds the extra latency a busy peer sees. The interval is ``interval_s`` (10 ms) times the
number of peers: every notification is read by every listener, so with more processes each
one notifies less often and the database's total stays about the same. Receivers only re-check the
database, so a merged notification loses nothing: an earliest due time wakes dispatchers,
which then ask the database for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from duraflow.providers.wakeups import InstanceChange

log = logging.getLogger("duraflow.providers.postgres")

#: Instance ids beyond this many payload bytes become "*": every waiter re-checks.
MAX_PAYLOAD_BYTES = 7_000
DEFAULT_INTERVAL_S = 0.01


def change_code(change: InstanceChange) -> list[object]:
    """An instance change as it travels: ``[status or "", custom status changed, kv changed]``,
    so a waiter in another process skips re-reading for changes it does not wait for."""
    return [change.status or "", int(change.custom_status_changed), int(change.kv_changed)]


def decode_change(code: object) -> InstanceChange | None:
    if not isinstance(code, list) or len(code) != 3:
        return None  # unknown shape: "something changed, re-read it"
    status, custom, kv = code
    return InstanceChange(str(status) or None, bool(custom), bool(kv))


def _merge_code(old: list[object] | None, new: list[object]) -> list[object]:
    if old is None:
        return new
    return [new[0] or old[0], int(bool(old[1]) or bool(new[1])), int(bool(old[2]) or bool(new[2]))]


@dataclass(slots=True)
class Announcement:
    """What other processes should hear: new orchestrator work due at ``due`` (ms), new
    unclaimed worker work, and instances that changed (id -> ``change_code``). ``sender``
    names the provider that sends it, so that its own LISTEN connection, which hears it
    too, knows the changes for its own (``running_here.py``)."""

    due: int | None = None
    worker: bool = False
    instances: dict[str, list[object]] = field(default_factory=dict)
    sender: str | None = None

    def merge(self, due: int | None, worker: bool,
              instances: Iterable[tuple[str, list[object]]]) -> None:
        if due is not None:
            self.due = due if self.due is None else min(self.due, due)
        self.worker = self.worker or worker
        for instance_id, code in instances:
            self.instances[instance_id] = _merge_code(self.instances.get(instance_id), code)

    def __bool__(self) -> bool:
        return self.due is not None or self.worker or bool(self.instances)

    def payload(self, instance_follows: bool = False) -> str:
        """The JSON payload (``listen.Listener`` parses it). ``instance_follows``: the
        statement adds the instance it commits (``commit_turn``), so the sender goes in
        even when nothing else does; an empty payload is not sent at all."""
        message: dict[str, object] = {}
        if self.due is not None:
            message["o"] = self.due
        if self.worker:
            message["w"] = 1
        if self.instances:
            message["i"] = self.instances
            if len(json.dumps(message)) > MAX_PAYLOAD_BYTES:
                message["i"] = "*"
        if (message or instance_follows) and self.sender is not None:
            message["p"] = self.sender
        return json.dumps(message, separators=(",", ":"))


class Announcer:
    """Decides whether an announcement rides in the current commit or waits (see module)."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        interval_s: float = DEFAULT_INTERVAL_S,
        peers: Callable[[], int] = lambda: 1,
    ) -> None:
        self._send = send
        self.base_interval_s = interval_s
        self._peers = peers
        #: Stamped on every announcement (``Announcement.sender``): unique per provider.
        self.sender = uuid.uuid4().hex[:12]
        self._pending = Announcement(sender=self.sender)
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0  # notifications sent (in commits or alone), for tests and tuning

    @property
    def interval_s(self) -> float:
        return self.base_interval_s * max(self._peers(), 1)

    def take(self) -> Announcement | None:
        """If the interval has passed, everything pending, to be sent by the caller's
        commit (call ``sent_in_commit`` or ``restore`` afterwards); else None."""
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return None
        self._last = now
        pending, self._pending = self._pending, Announcement(sender=self.sender)
        self._cancel_timer()
        return pending

    def sent_in_commit(self) -> None:
        self.sent += 1

    def restore(self, announcement: Announcement) -> None:
        """The commit that was to carry ``announcement`` failed: send it later."""
        self.defer(announcement.due, announcement.worker, announcement.instances.items())

    def defer(self, due: int | None, worker: bool,
              instances: Iterable[tuple[str, list[object]]]) -> None:
        self._pending.merge(due, worker, instances)
        if self._pending and self._timer is None:
            delay = max(self._last + self.interval_s - time.monotonic(), 0.0)
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        pending = self.take()
        if pending is None:  # a commit sent within the interval: wait for the next one
            self.defer(None, False, ())
            return
        if not pending:
            return
        task = asyncio.get_running_loop().create_task(self._flush(pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, pending: Announcement) -> None:
        try:
            await self._send(pending.payload())
            self.sent += 1
        except Exception as exc:  # peers fall back to their idle poll; nothing is lost
            log.debug("could not send a coalesced notification: %s", exc)

    async def close(self) -> None:
        """Send what is pending now (a closing process must not leave peers asleep)."""
        self._cancel_timer()
        pending, self._pending = self._pending, Announcement(sender=self.sender)
        if pending:
            await self._flush(pending)
        if self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait(set(self._tasks), timeout=2.0)
