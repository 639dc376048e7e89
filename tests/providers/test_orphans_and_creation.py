"""Instances exist only once a turn's commit names them; stray messages never create one."""

from __future__ import annotations

import pytest

from duraflow.core import workitems as wi
from duraflow.providers.errors import ProviderError
from duraflow.providers.items import OutboundMessage, TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, event, now_ms, raised, start_msg, started


async def test_ack_metadata_creates_the_instance(provider: Provider, turns: Turns) -> None:
    before = now_ms()
    await turns.create("a", name="Billing", version="2.1.0")
    status = await provider.get_instance_status("a")
    assert status is not None
    assert (status.orchestration_name, status.orchestration_version) == ("Billing", "2.1.0")
    assert (status.execution_id, status.status, status.parent_instance_id) == (1, "Running", None)
    info = await provider.get_instance_info("a")
    assert before <= info.created_at <= info.updated_at <= now_ms()


async def test_enqueue_never_creates_an_instance(provider: Provider) -> None:
    await provider.enqueue_orchestrator(start_msg("a"))
    await provider.enqueue_orchestrator(raised("b"))
    assert await provider.get_instance_status("a") is None
    assert await provider.get_instance_status("b") is None
    assert await provider.list_instances() == []


async def test_first_fetch_of_a_new_instance_has_no_state(provider: Provider, turns: Turns) -> None:
    await provider.enqueue_orchestrator(start_msg("a"))
    item = await turns.fetch("a")
    assert item.orchestration_name is None and item.orchestration_version is None
    assert (item.execution_id, item.execution_status, item.history_len) == (1, None, 0)
    assert item.history == []
    assert item.messages[0]["type"] == "StartOrchestration"


async def test_null_version_is_filled_in_later_but_name_is_fixed(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", version=None)
    status = await provider.get_instance_status("a")
    assert status is not None and status.orchestration_version is None
    await turns.turn("a", orchestration_name="Renamed", orchestration_version="3.0.0")
    status = await provider.get_instance_status("a")
    assert status is not None
    assert (status.orchestration_name, status.orchestration_version) == ("TestOrch", "3.0.0")
    await turns.turn("a", orchestration_version="4.0.0")
    status = await provider.get_instance_status("a")
    assert status is not None and status.orchestration_version == "3.0.0"


async def test_new_execution_replaces_the_instance_version(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", version="1.0.0", status="ContinuedAsNew")
    await provider.enqueue_orchestrator(
        OutboundMessage("a", wi.continue_as_new("a", "TestOrch", "null", "2.0.0", [], None,
                                                None, None, None))
    )
    item = await turns.fetch("a")
    await provider.ack_orchestration_item(
        item.lock_token,
        TurnCommit(execution_id=2, history_delta=[event(1)], orchestration_version="2.0.0",
                   status="Running"),
    )
    status = await provider.get_instance_status("a")
    assert status is not None
    assert (status.execution_id, status.orchestration_version) == (2, "2.0.0")


async def test_sub_orchestration_records_its_parent(provider: Provider, turns: Turns) -> None:
    await turns.create("parent")
    await turns.create("child", parent="parent", name="ChildOrch")
    status = await provider.get_instance_status("child")
    assert status is not None
    assert (status.orchestration_name, status.parent_instance_id) == ("ChildOrch", "parent")
    assert (await provider.get_instance_info("child")).parent_instance_id == "parent"
    assert await provider.list_children("parent") == ["child"]

    await provider.enqueue_orchestrator(raised("child"))
    assert (await turns.fetch("child")).parent_instance_id == "parent"


async def test_messages_for_a_never_created_instance_can_be_dropped(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("ghost", "stray"))
    item = await turns.fetch("ghost")
    assert item.orchestration_name is None
    await provider.ack_orchestration_item(item.lock_token, TurnCommit(execution_id=1))

    assert await provider.fetch_orchestration_item(30_000) is None
    assert await provider.get_instance_status("ghost") is None
    assert await provider.list_instances() == []


async def test_stray_messages_do_not_block_other_instances(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("ghost"))
    ghost = await turns.fetch("ghost")
    await provider.abandon_orchestration_item(ghost.lock_token, delay_ms=60_000)
    await provider.enqueue_orchestrator(start_msg("real"))
    assert (await turns.fetch()).instance_id == "real"


async def test_history_for_an_unnamed_new_instance_is_rejected(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("ghost"))
    item = await turns.fetch("ghost")
    with pytest.raises(ProviderError) as caught:
        await provider.ack_orchestration_item(
            item.lock_token, TurnCommit(execution_id=1, history_delta=[started()])
        )
    assert caught.value.retryable is False
    assert await provider.read_history("ghost") == []
    assert await provider.get_instance_status("ghost") is None
