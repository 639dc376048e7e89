"""Leader election on a ``coordination.k8s.io/v1`` Lease, so two replicas never both act.

The operator acquires the Lease before kopf starts and renews it every ``lease_renew_s``.
A replica that cannot renew within ``lease_duration_s`` stops acting (its operator run
ends, the process exits, and Kubernetes restarts it as a follower): better to do nothing
for a moment than to have two writers. Takeover uses optimistic concurrency on the Lease's
resourceVersion (a PUT that names the version it read), so two candidates cannot both win.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from duraflow_operator.kube import ApiError, KubeApi
from duraflow_operator.settings import OperatorSettings

log = logging.getLogger("duraflow.operator.leader")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _fmt(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class LeaderElector:
    def __init__(self, kube: KubeApi, settings: OperatorSettings) -> None:
        self.kube = kube
        self.identity = settings.identity
        self.duration_s = settings.lease_duration_s
        self.renew_s = settings.lease_renew_s
        ns, name = settings.lease_namespace, settings.lease_name
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}"
        self.name, self.namespace = name, ns
        self.is_leader = False

    def _spec(self, transitions: int, acquired: str | None = None) -> dict[str, Any]:
        now = _fmt(_now())
        return {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.duration_s),
                "acquireTime": acquired or now, "renewTime": now,
                "leaseTransitions": transitions}

    async def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease."""
        try:
            lease = await self.kube.request("GET", self.path)
        except ApiError as error:
            if error.status != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(0)}
            try:
                await self.kube.request("POST", self.path.rsplit("/", 1)[0], body)
            except ApiError as conflict:
                if conflict.status == 409:
                    return False
                raise
            self.is_leader = True
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.duration_s)
        expired = renewed is None or (_now() - renewed).total_seconds() > duration
        if holder not in (None, "", self.identity) and not expired:
            self.is_leader = False
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (holder != self.identity)
        acquired = spec.get("acquireTime") if holder == self.identity else None
        lease["spec"] = self._spec(transitions, acquired)
        try:
            await self.kube.request("PUT", self.path, lease)
        except ApiError as error:
            if error.status == 409:  # someone else wrote it since we read it
                self.is_leader = False
                return False
            raise
        self.is_leader = True
        return True

    async def acquire(self) -> None:
        """Wait until this replica leads."""
        while True:
            try:
                if await self.try_acquire():
                    log.info("leading as %s (lease %s/%s)", self.identity, self.namespace,
                             self.name)
                    return
            except (ApiError, OSError) as error:
                log.warning("lease %s: %s", self.name, error)
            await asyncio.sleep(self.renew_s)

    async def keep(self) -> None:
        """Renew until the Lease is lost or cannot be renewed in time; then return."""
        last_ok = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                if await self.try_acquire():
                    last_ok = asyncio.get_running_loop().time()
                    continue
                log.error("lost the lease %s to another replica", self.name)
                return
            except (ApiError, OSError) as error:
                log.warning("lease renewal failed: %s", error)
            if asyncio.get_running_loop().time() - last_ok > self.duration_s:
                log.error("could not renew the lease for %.0fs; stepping down", self.duration_s)
                self.is_leader = False
                return
