"""The Duraflow Kubernetes operator: ``Orchestration``, ``OrchestrationSchedule`` and
``WorkerPool`` custom resources.

Public names only. ``duraflow operator`` runs ``run_operator``; the modules behind it are
one per concern: ``spec`` (CR models and validation), ``orchestrations`` (the reconcile),
``status`` / ``status_sync`` (instance -> CR status, one loop), ``ttl`` (deleting ended CRs
past ``ttlSecondsAfterFinished``), ``schedule_spec`` / ``schedules`` / ``schedule_sync``
(OrchestrationSchedule -> engine schedule, and its runs' CRs, one loop), ``registry_watch``
(live workers), ``workerpools`` / ``manifests`` (WorkerPool -> StatefulSet, Service, PDB),
``conditions``, ``metrics``, ``leader``, ``kube`` (API client), ``handlers`` (kopf glue),
``settings``. It uses only ``duraflow``'s public API.
"""

from duraflow_operator.leader import LeaseLost
from duraflow_operator.main import Running, run_operator
from duraflow_operator.settings import FINALIZER, GROUP, VERSION, OperatorSettings

__all__ = ["FINALIZER", "GROUP", "VERSION", "LeaseLost", "OperatorSettings", "Running",
           "run_operator"]
