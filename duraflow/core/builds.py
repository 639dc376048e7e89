"""Builds: the vocabulary of safe code rollouts (docs/rollouts.md).

A build names the code a runtime runs (``RuntimeOptions(build_id=...)``); the store pins each
execution to the build that ran its first turn and keeps one state per build. The id rule
and the states live here so that the runtime, the providers, the configuration table and the
CLI check and name them alike.
"""

from __future__ import annotations

import re
from enum import StrEnum

#: 1-63 characters of letters, digits, ``.``, ``_`` and ``-``: fits a Kubernetes label value
#: and a StatefulSet name suffix, and never needs quoting in a log line or a URL.
BUILD_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,63}")
BUILD_ID_RULE = "1-63 characters of letters, digits, '.', '_' and '-'"


class BuildState(StrEnum):
    """Where a build is in its life. Values are the strings the store and the CLI show."""

    #: Takes new starts (unpinned executions); at most one build is current.
    CURRENT = "current"
    #: Finishes the executions pinned to it and takes nothing new.
    DRAINING = "draining"
    #: Drained: nothing is pinned to it any more (its workers may stop).
    RETIRED = "retired"
    #: Registered by a runtime started with auto-promote off and never promoted: takes
    #: nothing new until ``set_current_build`` makes it current.
    PENDING = "pending"


def check_build_id(value: object, what: str = "build id") -> str:
    """``value`` if it is a valid build id; ``ValueError`` (naming ``what``) otherwise."""
    if not isinstance(value, str) or BUILD_ID_PATTERN.fullmatch(value) is None:
        raise ValueError(f"{what} must be {BUILD_ID_RULE}, got {value!r}")
    return value
