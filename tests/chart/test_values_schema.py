"""values.schema.json turns a bad value into a clear error at `helm install` time instead of a
broken or insecure deployment. One case per kind of mistake, through helm's own rendering."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.chart.support import VALUES_MATRIX, render

BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    # wrong type
    ("wrong-type-tag", {"image": {"tag": 5}}, "at '/image/tag': got number, want string"),
    ("wrong-type-enabled", {"postgresql": {"enabled": "yes"}},
     "at '/postgresql/enabled': got string, want boolean"),
    ("wrong-type-namespaces", {"operator": {"watchNamespaces": "team-a"}},
     "at '/operator/watchNamespaces': got string, want array"),
    # bad enum
    ("bad-enum-pull-policy", {"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
    # out of range
    ("root-ish-uid", {"operator": {"runAsUser": 1000}}, "at '/operator/runAsUser': minimum"),
    ("privileged-port", {"operator": {"metricsPort": 80}}, "at '/operator/metricsPort': minimum"),
    ("too-many-replicas", {"exampleWorkerPool": {"replicas": 1000}},
     "at '/exampleWorkerPool/replicas': maximum"),
    ("postgres-root-uid", {"postgresql": {"runAsUser": 0}}, "at '/postgresql/runAsUser': minimum"),
    # bad format
    ("bad-schema-name", {"database": {"schema": "drop table;"}}, "at '/database/schema'"),
    ("bad-namespace-name", {"operator": {"watchNamespaces": ["Team_A"]}},
     "at '/operator/watchNamespaces/0'"),
    ("bad-interval", {"monitoring": {"interval": "soon"}}, "at '/monitoring/interval'"),
    # a pool name the API server would take but its Service or pods would not
    ("pool-name-with-dot", {"exampleWorkerPool": {"name": "gpu.pool"}},
     "at '/exampleWorkerPool/name'"),
    ("pool-name-leading-digit", {"exampleWorkerPool": {"name": "1pool"}},
     "at '/exampleWorkerPool/name'"),
    ("pool-name-too-long", {"exampleWorkerPool": {"name": "p" * 41}},
     "at '/exampleWorkerPool/name': maxLength"),
    ("autoscaling-typo", {"exampleWorkerPool": {"autoscaling": {"maxReplica": 3}}},
     "additional properties 'maxReplica' not allowed"),
    ("autoscaling-negative-min", {"exampleWorkerPool": {"autoscaling": {
        "minReplicas": -1, "maxReplicas": 3}}},
     "at '/exampleWorkerPool/autoscaling/minReplicas': minimum"),
    ("retention-in-words", {"exampleWorkerPool": {"retention": "30 days"}},
     "at '/exampleWorkerPool/retention'"),
    # unknown key (a typo must not be silently ignored)
    ("unknown-top-level-key", {"operatr": {}}, "additional properties 'operatr' not allowed"),
    ("unknown-nested-key", {"postgresql": {"enable": True}},
     "additional properties 'enable' not allowed"),
    ("unknown-resource-key", {"operator": {"resources": {"limits": {"cpu": "1", "memory": "1Gi",
                                                                    "gpu": 1}}}},
     "additional properties 'gpu' not allowed"),
    # missing required (null deletes a default in helm)
    ("missing-database-secret", {"database": {"existingSecret": None}},
     "at '/database': missing property 'existingSecret'"),
    ("missing-memory-limit", {"operator": {"resources": {"limits": {"memory": None}}}},
     "at '/operator/resources/limits': missing property 'memory'"),
    ("empty-database-secret", {"database": {"existingSecret": ""}},
     "at '/database/existingSecret': minLength"),
]


@pytest.mark.parametrize("values, message",
                         [pytest.param(v, m, id=case) for case, v, m in BAD_VALUES])
def test_bad_values_are_rejected_with_a_pointed_message(values: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render(values)
    assert message in str(caught.value)


@pytest.mark.parametrize("case", sorted(VALUES_MATRIX))
def test_the_documented_combinations_pass_the_schema(case: str) -> None:
    assert render(VALUES_MATRIX[case])


def test_sensible_overrides_pass_the_schema() -> None:
    render({
        "image": {"repository": "registry.example.com/acme/workflows", "tag": "1.2.3",
                  "pullPolicy": "Always"},
        "imagePullSecrets": [{"name": "regcred"}],
        "operator": {"resources": {"limits": {"cpu": 2, "memory": "1Gi"}},
                     "nodeSelector": {"kubernetes.io/os": "linux"},
                     "tolerations": [{"key": "infra", "operator": "Exists"}],
                     "extraEnv": [{"name": "DURAFLOW_LOG_FORMAT", "value": "json"}],
                     "priorityClassName": "system-cluster-critical"},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}},
        "monitoring": {"enabled": True, "interval": "1m30s", "labels": {"release": "kps"}},
    })
