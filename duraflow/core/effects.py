"""The side of a replay that turns what the code does into writes: work to enqueue, custom
status, KV mutations. ``Replay`` inherits it; kept apart so the replay module is about
matching code against history, and this one about what a new action means. It implements
the "work of a new action" half of ``Scheduler`` from plain values, so it knows nothing of
the task tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.core.limits import (
    MAX_CUSTOM_STATUS_BYTES,
    MAX_KV_KEYS,
    MAX_KV_VALUE_BYTES,
    check_name,
    check_payload_size,
)
from duraflow.core.output import Outgoing, ScheduledActivity, TurnOutput


class Effects:
    """Mixin for ``Replay``; the attributes below are set by ``Replay.__init__``."""

    instance_id: str
    execution_id: int
    name: str
    version: str
    now_ms: int
    next_event_id: int
    custom_status: str | None
    kv: dict[str, tuple[str, int]]
    _out: TurnOutput
    _guid_factory: Callable[[], str]

    def emit(
        self, kind: str, data: dict[str, Any], source: int | None = None
    ) -> tuple[HistoryEvent, bool]:
        raise NotImplementedError

    # ─── Context callbacks (ReplayHandle) ───────────────────────────────────

    def set_custom_status(self, status: str | None) -> None:
        if status is not None:
            check_payload_size("custom status", status, MAX_CUSTOM_STATUS_BYTES)
        _, new = self.emit(ev.CUSTOM_STATUS_UPDATED, {"status": status})
        self.custom_status = status
        if new:
            self._out.custom_status_changed = True
            self._out.custom_status = status

    def get_custom_status(self) -> str | None:
        return self.custom_status

    def set_kv(self, key: str, value: str) -> None:
        check_name("KV key", key)
        size = len(value.encode())
        if size > MAX_KV_VALUE_BYTES:
            raise ValueError(f"KV value for key '{key}' ({size} bytes) exceeds limit "
                             f"({MAX_KV_VALUE_BYTES} bytes)")
        if key not in self.kv and len(self.kv) >= MAX_KV_KEYS:
            raise ValueError(f"KV key count ({len(self.kv) + 1}) exceeds limit ({MAX_KV_KEYS})")
        event, new = self.emit(
            ev.KEY_VALUE_SET, {"key": key, "value": value, "last_updated_at_ms": self.now_ms}
        )
        updated = int(event.data.get("last_updated_at_ms", self.now_ms))
        self.kv[key] = (value, updated)
        if new:
            self._out.kv_mutations.append(("set", key, value, updated))

    def clear_kv(self, key: str) -> None:
        _, new = self.emit(ev.KEY_VALUE_CLEARED, {"key": key})
        self.kv.pop(key, None)
        if new:
            self._out.kv_mutations.append(("clear", key, None, self.now_ms))

    def clear_all_kv(self) -> None:
        _, new = self.emit(ev.KEY_VALUES_CLEARED, {})
        self.kv.clear()
        if new:
            self._out.kv_mutations.append(("clear_all", None, None, self.now_ms))

    def prune_kv(self, cutoff_ms: int) -> int:
        # Sorted, so a replay clears keys in the same order (duroxide used hash order).
        stale = sorted(k for k, (_, updated) in self.kv.items() if updated < cutoff_ms)
        for key in stale:
            self.clear_kv(key)
        return len(stale)

    def get_kv(self) -> dict[str, str]:
        return {key: value for key, (value, _) in self.kv.items()}

    # ─── Work of a new action (Scheduler) ───────────────────────────────────

    def schedule_activity(
        self,
        event_id: int,
        name: str,
        input: str,
        session_id: str | None,
        tag: str | None,
        retry: bool,
    ) -> None:
        item = wi.activity_execute(
            self.instance_id, self.execution_id, event_id, name, input,
            self.name, self.version, session_id, tag,
        )
        self._out.activities.append(ScheduledActivity(event_id, item, session_id, tag, retry))

    def new_guid(self) -> str:
        return self._guid_factory()

    def cancel_activity(self, activity_id: int) -> None:
        self._out.cancelled_activity_ids.append(activity_id)

    def schedule_timer(self, timer_id: int, fire_at_ms: int) -> None:
        item = wi.timer_fired(self.instance_id, self.execution_id, timer_id, fire_at_ms)
        self._out.messages.append(Outgoing(self.instance_id, item, fire_at_ms))

    def default_child_id(self) -> str:
        return f"{self.instance_id}::sub::{self.next_event_id}"

    def start_child(
        self, event_id: int, child_id: str, name: str, input: str, version: str | None
    ) -> None:
        item = wi.start_orchestration(
            child_id, name, input, version, self.instance_id, self.execution_id, event_id
        )
        self._out.messages.append(Outgoing(child_id, item))

    def cancel_child(self, child_id: str, reason: str) -> None:
        self._out.messages.append(Outgoing(child_id, wi.cancel_instance(child_id, reason)))

    def start_detached(
        self, instance_id: str, name: str, input: str, version: str | None
    ) -> None:
        item = wi.start_orchestration(instance_id, name, input, version)
        self._out.messages.append(Outgoing(instance_id, item))
