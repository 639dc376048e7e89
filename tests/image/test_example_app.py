"""The example app shipped in the image (``duraflow_example:register``) does what the docs,
the chart's example WorkerPool and ``make e2e-kind`` promise, on embedded SQLite."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from duraflow import Client, Runtime, RuntimeOptions, SqliteProvider

APP = Path(__file__).resolve().parents[2] / "worker_image" / "app" / "duraflow_example.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("duraflow_example", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["duraflow_example"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client(example: ModuleType, tmp_path: Path) -> Iterator[Client]:
    provider = SqliteProvider.open(str(tmp_path / "example.db"))
    runtime = Runtime(provider, RuntimeOptions(dispatcher_poll_interval_ms=20))
    example.register(runtime)
    runtime.start()
    try:
        yield Client(provider)
    finally:
        runtime.shutdown(5_000)


def test_hello_greets_through_the_say_hello_activity(client: Client) -> None:
    client.start_orchestration("hello-1", "Hello", "Ada")
    result = client.wait_for_orchestration("hello-1", 10_000)
    assert result.status == "Completed", result
    assert result.output == "Hello, Ada!"
    history = [str(event) for event in client.read_execution_history("hello-1", 1)]
    assert any("SayHello" in event for event in history), history


def test_approval_waits_for_the_approve_event_and_returns_its_data(client: Client) -> None:
    client.start_orchestration("approval-1", "Approval", None)
    waiting = client.wait_for_status_change("approval-1", 0, 20, 10_000)
    assert waiting.custom_status == "waiting for approval"
    assert client.get_status("approval-1").status == "Running"
    client.raise_event("approval-1", "approve", {"by": "grace"})
    result = client.wait_for_orchestration("approval-1", 10_000)
    assert result.status == "Completed", result
    assert result.output == {"by": "grace"}


def test_countdown_runs_n_timers_counting_down_in_custom_status(client: Client) -> None:
    client.start_orchestration("countdown-1", "Countdown", 2)
    seen: list[str | None] = []
    version = 0
    while True:
        status = client.wait_for_status_change("countdown-1", version, 20, 10_000)
        version = status.custom_status_version
        seen.append(status.custom_status)
        if status.status != "Running":
            break
    assert status.status == "Completed", status
    assert status.output == 2
    assert seen[0] == "2" and seen[-1] == "0"
    assert "1" in seen


def test_countdown_rejects_a_negative_count(client: Client) -> None:
    client.start_orchestration("countdown-bad", "Countdown", -1)
    result = client.wait_for_orchestration("countdown-bad", 10_000)
    assert result.status == "Failed"
    assert "non-negative integer" in str(result.error)
