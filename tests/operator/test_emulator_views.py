"""The tests' views of the emulator say what it holds (they once could not tell: see
``k8s.exists``), so a test waiting for "the finalizer was released" really waits for it."""

from __future__ import annotations

from typing import Any

from .k8s import Kubectl


async def test_a_cr_held_by_a_finalizer_is_not_gone_until_the_finalizer_is_removed(
    cluster: Any,
) -> None:
    kubectl = Kubectl(cluster)
    assert kubectl.gone("held")  # never created
    await kubectl.apply_orchestration("held", {"orchestration": "Hello"})
    path = kubectl.path("orchestrations", "held")
    await kubectl.merge_patch(path, {"metadata": {"finalizers": ["duraflow.io/finalizer"]}})
    assert not kubectl.gone("held")
    await kubectl.delete(path)  # deletionTimestamp set, the finalizer holds it
    assert not kubectl.gone("held")
    await kubectl.merge_patch(path, {"metadata": {"finalizers": None}})
    assert kubectl.gone("held")
