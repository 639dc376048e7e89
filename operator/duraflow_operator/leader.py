"""Leader election on a ``coordination.k8s.io/v1`` Lease, so two replicas never both act.

It follows client-go's ``leaderelection`` package, whose rules make the guarantee hold:

* **Time is this process's monotonic clock.** A Lease's ``renewTime`` is written by the
  holder's clock, which may be minutes off ours. So expiry is never judged by comparing
  ``renewTime`` with our clock: a candidate records *when it last saw the Lease record
  change*, and the holder's Lease has expired once ``leaseDurationSeconds`` have passed on
  our clock without a change.
* **The leader gives up before anyone may take over.** Renewal is retried every
  ``lease_renew_s`` (client-go's retryPeriod, 2 s) until ``lease_renew_deadline_s`` (10 s)
  have passed since the last renewal attempt began; then it steps down. That deadline is
  shorter than ``lease_duration_s`` (15 s), after which another candidate may take over, and
  every request is cut off at the deadline: a hung connection cannot stretch it.
* **Any client error counts as a failed attempt**, whatever aiohttp raises (a server that
  disconnects is not an ``OSError``): never an exception that escapes the renewal loop while
  kopf keeps acting.

Takeover and renewal use optimistic concurrency on the Lease's resourceVersion (a PUT that
names the version it read), so two candidates cannot both win.

On a graceful stop (a rolling update's SIGTERM), once nothing acts any more, the leader
releases the Lease as client-go's ``ReleaseOnCancel`` does: the holder cleared, the duration
cut to 1 s, and only if this replica still holds it. The next replica takes over on its next
attempt instead of waiting out the 15 s lease.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any

from duraflow_operator.kube import ApiError, KubeApi
from duraflow_operator.settings import OperatorSettings

log = logging.getLogger("duraflow.operator.leader")


class LeaseLost(RuntimeError):
    """This replica stopped leading (another took the Lease, or it could not renew in
    time); the operator stops acting at once and the process exits non-zero."""


def _now_text() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, kube: KubeApi, settings: OperatorSettings) -> None:
        self.kube = kube
        self.identity = settings.identity
        self.duration_s = settings.lease_duration_s
        self.deadline_s = settings.lease_renew_deadline_s
        self.retry_s = settings.lease_renew_s
        if not 0 < self.retry_s < self.deadline_s < self.duration_s:
            raise ValueError(
                "leader election needs lease_renew_s < lease_renew_deadline_s < "
                f"lease_duration_s, got {self.retry_s}, {self.deadline_s}, {self.duration_s}")
        ns, name = settings.lease_namespace, settings.lease_name
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}"
        self.name, self.namespace = name, ns
        self.is_leader = False
        #: The Lease record last seen, and when (our monotonic clock) it was seen to change.
        self._observed: Mapping[str, Any] | None = None
        self._observed_at = 0.0

    def _observe(self, record: Mapping[str, Any]) -> None:
        if record != self._observed:
            self._observed, self._observed_at = dict(record), time.monotonic()

    def _record(self, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        now = _now_text()
        previous = previous or {}
        mine = previous.get("holderIdentity") == self.identity
        transitions = int(previous.get("leaseTransitions") or 0)
        if previous.get("holderIdentity") and not mine:
            transitions += 1
        return {"holderIdentity": self.identity,
                "leaseDurationSeconds": max(int(self.duration_s), 1),
                "acquireTime": previous.get("acquireTime") if mine else now,
                "renewTime": now, "leaseTransitions": transitions}

    async def try_acquire(self, timeout_s: float | None = None) -> bool:
        """One attempt to take or renew the Lease; every request ends within ``timeout_s``
        (default: the renew deadline). Raises what the client raises."""
        timeout = self.deadline_s if timeout_s is None else max(timeout_s, 0.001)
        call: dict[str, Any] = {"attempts": 1, "timeout_s": timeout}
        try:
            lease = await self.kube.request("GET", self.path, **call)
        except ApiError as error:
            if error.status != 404:
                raise
            body: dict[str, Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                    "metadata": {"name": self.name,
                                                 "namespace": self.namespace},
                                    "spec": self._record(None)}
            try:
                await self.kube.request("POST", self.path.rsplit("/", 1)[0], body, **call)
            except ApiError as conflict:
                if conflict.status == 409:  # another candidate created it first
                    return False
                raise
            self._observe(body["spec"])
            self.is_leader = True
            return True
        record = lease.get("spec") or {}
        self._observe(record)
        holder = record.get("holderIdentity")
        duration = float(record.get("leaseDurationSeconds") or self.duration_s)
        valid = self._observed_at + duration > time.monotonic()
        if holder and holder != self.identity and valid:
            self.is_leader = False
            return False
        lease["spec"] = self._record(record)
        try:
            await self.kube.request("PUT", self.path, lease, **call)
        except ApiError as error:
            if error.status == 409:  # someone else wrote it since we read it
                self.is_leader = False
                return False
            raise
        self._observe(lease["spec"])
        self.is_leader = True
        return True

    async def release(self) -> bool:
        """Give the Lease up, if this replica still holds it; whether it was released.
        Bounded by the renew deadline; never raises (the process is exiting anyway)."""
        self.is_leader = False
        call: dict[str, Any] = {"attempts": 1, "timeout_s": self.deadline_s}
        try:
            async with asyncio.timeout(self.deadline_s):
                lease = await self.kube.request("GET", self.path, **call)
                record = lease.get("spec") or {}
                if record.get("holderIdentity") != self.identity:
                    return False  # another replica leads already: not ours to release
                now = _now_text()
                lease["spec"] = {"holderIdentity": "", "leaseDurationSeconds": 1,
                                 "acquireTime": now, "renewTime": now,
                                 "leaseTransitions": int(record.get("leaseTransitions") or 0)}
                await self.kube.request("PUT", self.path, lease, **call)  # 409 if it moved
        except Exception as error:  # best effort: the lease expires anyway
            log.warning("could not release the lease %s/%s: %s: %s", self.namespace,
                        self.name, type(error).__name__, error)
            return False
        log.info("released the lease %s/%s", self.namespace, self.name)
        return True

    async def _attempt(self, timeout_s: float) -> bool | None:
        """One bounded attempt: True (leading), False (another replica leads), None (an
        error of any kind: the API server, the network, a malformed answer)."""
        try:
            return await asyncio.wait_for(self.try_acquire(timeout_s), timeout_s)
        except Exception as error:  # every failure is a failed attempt, nothing escapes
            log.warning("lease %s/%s: %s: %s", self.namespace, self.name,
                        type(error).__name__, error)
            return None

    async def acquire(self) -> None:
        """Wait until this replica leads."""
        while True:
            if await self._attempt(self.deadline_s):
                log.info("leading as %s (lease %s/%s)", self.identity, self.namespace,
                         self.name)
                return
            await asyncio.sleep(self.retry_s)

    async def keep(self) -> None:
        """Renew every ``lease_renew_s``; return (no longer leading) when another replica
        holds the Lease or no renewal succeeded within ``lease_renew_deadline_s``."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.retry_s)
            deadline = loop.time() + self.deadline_s
            while True:
                outcome = await self._attempt(max(deadline - loop.time(), 0.001))
                if outcome:
                    break
                self.is_leader = False
                if outcome is False:
                    log.error("lost the lease %s to another replica", self.name)
                    return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    log.error("could not renew the lease %s within %.1fs; stepping down",
                              self.name, self.deadline_s)
                    return
                await asyncio.sleep(min(self.retry_s, remaining))


__all__ = ["LeaderElector", "LeaseLost"]
