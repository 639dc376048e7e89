"""The strict test API server's own tests use its fixtures."""

from tests.kubeapi.fixtures import (  # noqa: F401
    kube_cluster,
    rbac_cluster,
    strict_cluster_factory,
)
