"""The build keeper of a runtime with a build id: register the build, keep build states
current, and move executions off draining builds once this code reproduces their history.

An execution is pinned to the build that ran its first turn and only runtimes of that build
run it (docs/rollouts.md). Without help a draining build would then have to live as long as
its longest-waiting instance: days, for one that waits for an approval. So every runtime of
the current build looks, in the background, for running executions pinned to a draining
(or retired) build, of orchestration versions it registers with ``upgrade="verified"`` or
``"auto"``, that nobody has looked at for this build pair yet. For each one, in a free turn
slot (never in the way of real work) and at a bounded rate, it:

1. claims it from the store, locked like a turn (its instance lock: no turn of the old build
   can run meanwhile) and with its history;
2. for ``verified``, replays the whole history in memory against its own code
   (``core.replay_check``): nothing is written, nothing runs, no activity is called;
3. finishes the claim: moved (re-pinned with its waiting activities, in one transaction that
   validates the lock) when every recorded decision was reproduced, or left where it was,
   and either verdict recorded so the pair never looks again (``auto`` moves without step 2).

An execution with an activity running is not claimed (and is left as it is when one starts
during the replay): its result belongs to the old build's run, which reports it as usual.
The same task registers the build as the runtime starts (retrying through a database
outage) and, every few seconds, retires drained builds (``refresh_build_states``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from duraflow.core.replay_check import check_execution
from duraflow.providers.build_rules import DIVERGED, MOVED
from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import UpgradeClaim
from duraflow.providers.protocol import Provider
from duraflow.runtime.metrics import Metrics
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.registry import AUTO, OrchestrationRegistry
from duraflow.runtime.resilience import Backoff

log = logging.getLogger("duraflow.runtime")

#: How often the keeper looks for executions to move (and how soon after a build starts
#: draining the first ones move).
POLL_S = 2.0
#: How often build states are refreshed (retirement).
REFRESH_S = 5.0
#: A draining build retires once nothing has been pinned to it for this long: longer than
#: a turn fetched while it was still current takes to commit its pin.
RETIRE_AFTER_MS = 15_000
#: At most this many executions verified per second by one runtime.
MAX_PER_S = 20.0


class Slots(Protocol):
    """The orchestration dispatcher's turn slots: an upgrade runs only in a free one."""

    async def try_reserve(self) -> bool: ...

    def unreserve(self) -> None: ...


class BuildKeeper:
    """The background task of a runtime with a build (see the module docstring)."""

    def __init__(self, provider: Provider, options: RuntimeOptions,
                 registry: OrchestrationRegistry, metrics: Metrics,
                 slots: Slots | None) -> None:
        assert options.build_id is not None
        self.provider = provider
        self.options = options
        self.build_id: str = options.build_id
        self.registry = registry
        self.metrics = metrics
        self.slots = slots
        #: Set once the store has recorded this runtime's build.
        self.registered = asyncio.Event()
        self._stopping = asyncio.Event()
        self._refreshed_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="duraflow-builds")

    async def stop(self) -> None:
        """Stop looking; a decision in progress finishes first (it holds an instance lock)."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        await self._register()
        while not self._stopping.is_set():
            try:
                if time.monotonic() - self._refreshed_at >= REFRESH_S:
                    self._refreshed_at = time.monotonic()
                    for build, state in await self.provider.refresh_build_states(
                            RETIRE_AFTER_MS):
                        log.info("build %s is %s now", build, state)
                await self.upgrade_waiting()
            except ProviderError as exc:
                self.metrics.provider_error(exc, "claim_upgrade")
            except Exception:  # never let a surprise end the task: the next round retries
                log.exception("build upgrade round failed unexpectedly")
            await self._sleep(POLL_S)

    async def _register(self) -> None:
        backoff = Backoff(max_s=5.0)
        while not self._stopping.is_set():
            try:
                state = await self.provider.register_build(self.build_id,
                                                           self.options.build_auto_promote)
            except ProviderError as exc:
                self.metrics.provider_error(exc, "register_build")
                await self._sleep(backoff.next_delay_s())
                continue
            log.info("build %s is %s", self.build_id, state)
            self.registered.set()
            return

    async def upgrade_waiting(self) -> int:
        """Move (or record as diverged) executions pinned to draining builds, one per free
        slot, until none is left; returns how many were decided."""
        movable = self.registry.upgrades()
        if self.slots is None or not movable:
            return 0
        registered = [(name, version) for name, version, _ in movable]
        outcomes: list[str] = []
        while not self._stopping.is_set() and await self.slots.try_reserve():
            try:
                claim = await self.provider.claim_upgrade(
                    self.build_id, registered, self.options.orchestrator_lock_timeout_ms)
                if claim is not None:
                    outcomes.append(await self._decide(claim))
            finally:
                self.slots.unreserve()
            if claim is None:
                break
            await self._sleep(1 / MAX_PER_S)
        moved = outcomes.count(MOVED)
        if moved:  # one line a round: a rollout may move thousands
            log.info("%d execution(s) moved to build %s", moved, self.build_id)
        return moved + outcomes.count(DIVERGED)

    async def _decide(self, claim: UpgradeClaim) -> str:
        """Replay (unless ``auto``) and finish the claim; the outcome ("" when the claim
        expired first: nothing changed)."""
        name, version = claim.orchestration_name, claim.orchestration_version
        fn = self.registry.lookup(name, version)
        detail: str | None = f"moved without a replay (upgrade={AUTO!r})"
        moved = True
        if self.registry.upgrade_policy(name, version) != AUTO:
            check = check_execution(claim.history, lambda *_: fn, claim.instance_id,
                                    claim.execution_id) if fn is not None else None
            moved = check is not None and check.reproduced
            detail = None if check is None else (
                f"reproduced {check.events_checked} events" if moved else str(check.divergence))
        try:
            outcome = await self.provider.finish_upgrade(claim, moved, detail)
        except LockLostError:  # the replay outlasted the lock: looked at again later
            log.warning("the upgrade claim on %r expired before it was decided",
                        claim.instance_id)
            return ""
        if outcome in (MOVED, DIVERGED):
            self.metrics.build_upgrade(name, outcome)
        if outcome == MOVED:
            log.debug("execution %d of %r (%s %s) moved from build %s to %s",
                      claim.execution_id, claim.instance_id, name, version, claim.from_build,
                      claim.to_build)
        elif outcome == DIVERGED:
            log.info("execution %d of %r (%s %s) stays on build %s: build %s diverges %s",
                     claim.execution_id, claim.instance_id, name, version, claim.from_build,
                     claim.to_build, detail)
        return outcome

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
