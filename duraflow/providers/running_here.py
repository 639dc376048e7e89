"""Which instances this process's own last commit left running, while nothing else was heard.

Why: ``wait_for_orchestration`` reads the instance's status before it sleeps on its watch.
For an instance that runs in this process that read tells the process what it already
knows, and it is not free: under a burst of timers (W5: 200 timers due within a few hundred
milliseconds, each awaited in turn) every wait's read competes with the timers' fetches and
commits for the one event loop and the database. So turn commits feed this registry, and a
wait for an instance it knows to be running skips the read, exactly as for an instance whose
lock this process holds (``Notifier.held_here``).

Why it is safe: the knowledge is "running as of this process's last commit of it, and no
change of it made elsewhere heard since", which is what a read followed by a watch gives a
waiter. A change made elsewhere reaches this process as a notification (PostgreSQL LISTEN):
``forget`` drops the instance then, and ``forget_all`` everything after a gap in the
notifications (a LISTEN reconnect, an announcement too large to name its instances). A
commit's outcome is recorded only if it is the latest one sent for its instance and nothing
was heard about the instance since it was sent: a notification of a change made after our
commit landed can be processed before our commit's answer, and must not be overwritten by
it. Only a provider that hears every other process's changes turns it on (``enabled``):
PostgreSQL while its LISTEN connection is up. Without that (SQLite, whose other processes
cannot notify; PostgreSQL with ``listen=False``) every wait reads, as before.

A process's own notifications come back to it through its LISTEN connection; they say
nothing new and must not drop the knowledge (``listen.py`` recognises them by their sender).
"""

from __future__ import annotations

import itertools

#: Instances remembered at most; the oldest entry goes first (its next wait simply reads).
CAPACITY = 100_000


class RunningHere:
    """The registry (one per ``Notifier``); all methods run on the provider's loop."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        #: Set by a provider whose LISTEN connection hears every other process's changes.
        self.enabled = False
        self._capacity = capacity
        self._running: dict[str, None] = {}  # insertion-ordered: the oldest is first
        self._sent: dict[str, int] = {}  # instance -> ticket of its latest commit in flight
        self._tickets = itertools.count(1)

    def running(self, instance_id: str) -> bool:
        """True when this process's last commit left the instance running and no change
        made elsewhere was heard since: its next change will be notified here."""
        return self.enabled and instance_id in self._running

    def sending(self, instance_id: str) -> int:
        """A commit of ``instance_id`` is about to be sent; pass the ticket to ``committed``."""
        ticket = next(self._tickets)
        self._sent[instance_id] = ticket
        return ticket

    def committed(self, instance_id: str, ticket: int, running: bool) -> None:
        """The commit sent with ``ticket`` ended: stored, leaving the instance running
        (``running``), or anything else (finished, failed, not stored, unknown)."""
        if self._sent.get(instance_id) != ticket:
            return  # a later commit was sent, or a change was heard since: not ours to say
        del self._sent[instance_id]
        if not running or not self.enabled:  # disabled (SQLite): nothing is kept
            self._running.pop(instance_id, None)
            return
        self._running.pop(instance_id, None)  # re-insert as the newest
        self._running[instance_id] = None
        if len(self._running) > self._capacity:
            del self._running[next(iter(self._running))]

    def forget(self, instance_id: str) -> None:
        """A change this process did not commit (another process's, a delete): drop the
        instance, and let no commit in flight record its outcome over the change."""
        self._running.pop(instance_id, None)
        self._sent.pop(instance_id, None)

    def forget_all(self) -> None:
        """Changes may have been missed: know nothing."""
        self._running.clear()
        self._sent.clear()
