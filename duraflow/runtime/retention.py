"""Store retention: delete instances that finished more than ``retention_ms`` ago.

Off the hot path: a background task of the runtime wakes every ``interval_s`` (a tenth of
the retention, between one second and a minute), and only the runtime holding the store's
``retention`` lease does anything, so however many runtimes share the store one of them
deletes at a time and the others pay one lease attempt per interval. The deletion is the
admin bulk delete (``Provider.delete_finished_instances``): root instances that ended before
the cut-off, each with its whole tree of sub-orchestrations, in batches of ``BATCH`` roots,
one tree per transaction; a tree in which any instance still runs is left alone, and a
sub-orchestration is never deleted apart from its root. Every deleted instance counts in
``duraflow_instances_pruned_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from duraflow.providers.clock import now_ms
from duraflow.providers.protocol import Provider
from duraflow.runtime.metrics import Metrics

log = logging.getLogger("duraflow.retention")

LEASE = "retention"
#: Roots one batch (one provider call) takes.
BATCH = 100
#: Batches one sweep takes at most; the rest waits for the next sweep.
MAX_BATCHES = 10
#: A pause between two batches, so a backlog never crowds out the runtime's own work.
BATCH_PAUSE_S = 0.05


def sweep_interval_s(retention_ms: int) -> float:
    return min(max(retention_ms / 10_000, 1.0), 60.0)


class Retention:
    def __init__(self, provider: Provider, retention_ms: int, holder: str,
                 metrics: Metrics) -> None:
        self.provider = provider
        self.retention_ms = retention_ms
        self.holder = holder
        self.metrics = metrics
        self.interval_s = sweep_interval_s(retention_ms)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except Exception as exc:  # the next sweep tries again
                self.metrics.provider_error(exc, "retention")
                log.log(self.metrics.database.level(logging.WARNING),
                        "retention sweep failed: %s", exc)
            await self._sleep(self.interval_s)

    async def sweep(self) -> int:
        """One sweep: take (or keep) the lease, then delete up to ``MAX_BATCHES`` batches.
        Returns how many instances it deleted (0 when another runtime holds the lease)."""
        lease_ms = int(self.interval_s * 3_000)
        if not await self.provider.try_lease(LEASE, self.holder, lease_ms):
            return 0
        cutoff = now_ms() - self.retention_ms
        deleted = 0
        after: tuple[int, int] | None = None
        for _ in range(MAX_BATCHES):
            page = await self.provider.delete_finished_instances(cutoff, BATCH, after)
            count = page.result.instances_deleted
            if count:
                deleted += count
                self.metrics.prometheus.instances_pruned.inc(count)
            if page.scanned < BATCH:  # the last candidates: the next sweep starts over
                break
            after = page.last  # past the roots skipped here, whose trees still run
            await self._sleep(BATCH_PAUSE_S)
            if self._stopping.is_set():
                break
        if deleted:
            log.info("retention deleted %d instance(s) finished before %d", deleted, cutoff)
        return deleted

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def stop(self) -> None:
        self._stopping.set()
