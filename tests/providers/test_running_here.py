"""``RunningHere``: what a process may assume about instances its own commits left running,
and how a change made elsewhere, or a commit answered late, keeps that from going stale."""

from __future__ import annotations

from duraflow.providers.running_here import RunningHere
from duraflow.providers.wakeups import InstanceChange, Notifier


def known() -> RunningHere:
    registry = RunningHere()
    registry.enabled = True
    return registry


def test_a_commit_that_leaves_an_instance_running_is_known_until_one_ends_it() -> None:
    registry = known()
    registry.committed("i", registry.sending("i"), True)
    assert registry.running("i") and not registry.running("j")
    registry.committed("i", registry.sending("i"), False)  # it finished
    assert not registry.running("i")


def test_a_commit_that_failed_or_was_not_stored_says_nothing() -> None:
    registry = known()
    registry.committed("i", registry.sending("i"), True)
    ticket = registry.sending("i")
    registry.committed("i", ticket, False)  # e.g. the lock was lost: state unknown
    assert not registry.running("i")


def test_a_change_heard_while_a_commit_is_in_flight_wins_over_its_answer() -> None:
    """Another process may take the instance over as soon as our commit lands and notify
    its change before our loop reads our commit's answer: that answer is then stale."""
    registry = known()
    ticket = registry.sending("i")
    registry.forget("i")  # heard from another process
    registry.committed("i", ticket, True)
    assert not registry.running("i")


def test_only_the_latest_commit_sent_records_its_outcome() -> None:
    registry = known()
    first = registry.sending("i")
    second = registry.sending("i")
    registry.committed("i", second, False)  # the later commit finished the instance
    registry.committed("i", first, True)  # the earlier one answered last
    assert not registry.running("i")


def test_nothing_is_known_when_changes_may_have_been_missed_or_cannot_be_heard() -> None:
    registry = known()
    registry.committed("i", registry.sending("i"), True)
    in_flight = registry.sending("j")
    registry.forget_all()  # e.g. the LISTEN connection came back after a gap
    registry.committed("j", in_flight, True)
    assert not registry.running("i") and not registry.running("j")
    registry.committed("i", registry.sending("i"), True)
    registry.enabled = False  # no LISTEN connection: other processes' changes are unheard
    assert not registry.running("i")


def test_the_oldest_entries_go_first_beyond_the_capacity() -> None:
    registry = RunningHere(capacity=2)
    registry.enabled = True
    for instance in ("a", "b", "a", "c"):  # "a" again: now newer than "b"
        registry.committed(instance, registry.sending(instance), True)
    assert [registry.running(i) for i in "abc"] == [True, False, True]


def test_the_notifier_forgets_what_others_change_and_what_is_deleted() -> None:
    notifier = Notifier()
    notifier.running.enabled = True
    for instance in ("a", "b", "c"):
        notifier.running.committed(instance, notifier.running.sending(instance), True)
    notifier.notify_instance("a", InstanceChange())  # our own commit's wake-up: no news
    assert notifier.known_running("a")
    notifier.heard_instance("a", InstanceChange())  # the same heard from another process
    notifier.notify_instance("b")  # a delete in this process
    assert [notifier.known_running(i) for i in "abc"] == [False, False, True]
    notifier.notify_all_instances()
    assert not notifier.known_running("c")


def test_a_registry_that_cannot_be_trusted_keeps_nothing() -> None:
    """SQLite never turns it on: its commits must not fill it up for nothing."""
    registry = RunningHere()
    registry.committed("i", registry.sending("i"), True)
    registry.enabled = True
    assert not registry.running("i")
