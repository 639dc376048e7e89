"""``duraflow.context``: the module path duroxide-python programs import contexts from.

``from duroxide.context import OrchestrationContext, ScheduledTask`` becomes
``from duraflow.context import ...``.
"""

from duraflow.core.context import OrchestrationContext, ScheduledTask
from duraflow.runtime.activity_context import ActivityContext

__all__ = ["ActivityContext", "OrchestrationContext", "ScheduledTask"]
