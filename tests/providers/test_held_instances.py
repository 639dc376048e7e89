"""``Notifier.held_here``: what a client of this process may assume about an instance a
runtime here keeps locked between turns."""

from __future__ import annotations

import time

from duraflow.providers.wakeups import Notifier


def test_held_until_released() -> None:
    notifier = Notifier()
    assert not notifier.held_here("i")
    notifier.hold_instance("i", time.monotonic() + 60)
    assert notifier.held_here("i") and not notifier.held_here("j")
    notifier.release_instance("i")
    assert not notifier.held_here("i")
    notifier.release_instance("i")  # releasing twice is harmless


def test_a_hold_past_its_lease_counts_for_nothing() -> None:
    """Once the lock may have expired another process may have taken the instance over,
    so the runtime's bookkeeping alone no longer says it is running."""
    notifier = Notifier()
    notifier.hold_instance("i", time.monotonic() - 0.001)
    assert not notifier.held_here("i")
