"""``Orchestration.spec.ttlSecondsAfterFinished`` (the Job field): delete a CR that long after
its instance ended.

One loop for all CRs, driven by what the watch shows: ``OperatorState.observe`` records when
an ended CR with a TTL expires (its ``status.completedAt`` plus the TTL), and this loop sleeps
until the earliest one. The deletion goes through the API like ``kubectl delete``, so the
finalizer applies the CR's ``deletionPolicy`` to the instance as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from duraflow_operator.kube import API_ERRORS, ApiError
from duraflow_operator.settings import GROUP, VERSION
from duraflow_operator.state import Key, OperatorState

log = logging.getLogger("duraflow.operator.ttl")

#: The longest sleep (a lost wake-up still heals) and the retry of a failed deletion.
MAX_SLEEP_S = 30.0
RETRY_S = 5.0


class TtlSweeper:
    def __init__(self, state: OperatorState) -> None:
        self.state = state
        self.deleted = 0

    async def run(self) -> None:
        state = self.state
        while True:
            now = time.time()
            for key in [k for k, due in state.expiring.items() if due <= now]:
                del state.expiring[key]
                await self._delete(key, now)
            timeout = MAX_SLEEP_S
            if state.expiring:
                timeout = min(max(min(state.expiring.values()) - time.time(), 0.0), timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.expiring_changed.wait(), timeout)
            state.expiring_changed.clear()

    async def _delete(self, key: Key, now: float) -> None:
        view = self.state.crs.get(key)
        if view is None or view.body["metadata"].get("deletionTimestamp"):
            return
        expires = view.expires_at()
        if expires is None or expires > now:  # changed meanwhile (observe re-queues it)
            return
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{key[0]}/orchestrations/{key[1]}"
        try:
            await self.state.kube.request("DELETE", path)
            self.deleted += 1
            log.info("deleted Orchestration %s/%s: ttlSecondsAfterFinished passed", *key)
        except API_ERRORS as error:
            if isinstance(error, ApiError) and error.status == 404:
                return
            log.warning("could not delete expired Orchestration %s/%s (retrying): %s",
                        key[0], key[1], error)
            self.state.expiring[key] = time.time() + RETRY_S
