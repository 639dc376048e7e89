"""The statuses an instance and an execution can have, and which of them are final.

duroxide speaks of statuses as plain strings ("Running", "Completed", ...), and programs
written for it compare and store them as such. ``Status`` is a ``StrEnum``, so each member
*is* that string: it compares equal to it, hashes like it, formats and JSON-encodes as it,
and binds as text in SQL. Duraflow names statuses through ``Status`` instead of repeating the
literals, while values read back from a database stay plain strings; both are ``str`` and
mix freely (compare with ``==`` or ``in``, never ``is``).

Two different questions have two different answers, so there are two sets:

* ``Status.TERMINAL``: the *instance* is done, nothing will run for it any more
  (Completed, Failed). This is duroxide's "terminal", what ``wait_for_orchestration`` waits
  for and ``OrchestrationResult.is_terminal`` answers.
* ``Status.EXECUTION_ENDED``: the *execution* is done (``TERMINAL`` plus ContinuedAsNew,
  after which the instance goes on in its next execution). Stores stamp ``completed_at``,
  and bulk deletes pick candidates, by this one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class Status(StrEnum):
    """An instance's or an execution's status; each member equals duroxide's string."""

    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    #: Only a client's answer about an instance that does not exist; never stored.
    NOT_FOUND = "NotFound"

    #: The instance is done: no execution follows (duroxide's "terminal").
    TERMINAL: ClassVar[frozenset[Status]]
    #: The execution is done: ``TERMINAL`` plus ContinuedAsNew.
    EXECUTION_ENDED: ClassVar[frozenset[Status]]
    #: What an execution row can hold, in the order listings show them.
    EXECUTION_STATUSES: ClassVar[tuple[Status, ...]]

    @property
    def is_terminal(self) -> bool:
        """Whether the instance is done (``self in Status.TERMINAL``)."""
        return self in Status.TERMINAL


# Assigned after the class body because an Enum's body cannot refer to its own members.
Status.TERMINAL = frozenset({Status.COMPLETED, Status.FAILED})
Status.EXECUTION_ENDED = Status.TERMINAL | {Status.CONTINUED_AS_NEW}
Status.EXECUTION_STATUSES = (
    Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.CONTINUED_AS_NEW)
