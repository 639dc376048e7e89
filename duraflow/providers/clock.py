"""The provider's clock: milliseconds since the Unix epoch, the unit of every stored time.

Due times, lock deadlines and timestamps cross the provider interface as integers in this
unit. The Python side of a provider, the ``Notifier``'s due-time bookkeeping and the runtime
read "now" here, so they all agree on the unit and the source. (PostgreSQL judges lock
expiry and immediate visibility by the database's own clock instead; see its provider.)
"""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
