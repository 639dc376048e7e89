"""The rules of the admin operations (deleting trees, pruning executions) both providers apply.

Written once so that SQLite and PostgreSQL cannot drift apart on what may be deleted, how
much a bulk call takes, how many executions a prune keeps, or what a refusal says.

Deletion works on whole trees (a root and every sub-orchestration below it), because a child
without its parent is a dangling reference the runtime would try to notify. A child whose
parent row no longer exists counts as a root, so it can still be deleted.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from duraflow.core.models import DeleteInstanceResult, InstanceFilter, PruneOptions, PruneResult
from duraflow.providers.errors import ProviderError

#: How many roots a bulk delete, or instances a bulk prune, takes when the filter sets no
#: ``limit``.
DEFAULT_BULK_LIMIT = 1000

Counts = TypeVar("Counts", DeleteInstanceResult, PruneResult)


def bulk_limit(filter: InstanceFilter) -> int:
    return DEFAULT_BULK_LIMIT if filter.limit is None else max(int(filter.limit), 0)


def executions_to_keep(options: PruneOptions) -> int:
    """How many of the newest executions a prune keeps: None, 0 and 1 all mean "only the
    current one"."""
    return max(options.keep_last or 1, 1)


def not_a_root(operation: str, instance_id: str, parent_id: object) -> ProviderError:
    """A sub-orchestration is deleted with its root only."""
    return _refused(operation, f"Cannot delete sub-orchestration '{instance_id}' "
                               f"(parent '{parent_id}'). Delete root instance instead")


def still_running(operation: str, instance_id: object) -> ProviderError:
    """A tree with a running instance is deleted only with ``force``."""
    return _refused(operation, f"Instance '{instance_id}' is still running. "
                               "Use force=true to delete a running instance")


def _refused(operation: str, message: str) -> ProviderError:
    return ProviderError(operation, message, retryable=False)


@dataclasses.dataclass(slots=True)
class DeletePage:
    """One page of a bulk delete, as retention walks its candidates: what was deleted, how
    many candidate roots the page looked at (fewer than asked: the last page), and the
    cursor of the last one, from which the next page starts. Skipped roots (a tree that
    still runs) advance the cursor too, so they cannot pin every page to themselves."""

    result: DeleteInstanceResult = dataclasses.field(default_factory=DeleteInstanceResult)
    deleted: list[str] = dataclasses.field(default_factory=list)
    scanned: int = 0
    last: tuple[int, int] | None = None


def add_counts(total: Counts, part: Counts) -> None:
    """Add one tree's or instance's result to a bulk call's total (every field is a count)."""
    for f in dataclasses.fields(total):
        setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))
