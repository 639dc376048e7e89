"""Built-in kinds: what kube-apiserver's registry strategies add on top of decoding
(``tests.kubeapi.openapi``): defaults, the validation of the fields the operator's children
carry, and one consequence of the StatefulSet controller.

Defaults (``pkg/apis/*/v1/defaults.go``, a subset): StatefulSet spec and pod template
(``podManagementPolicy``, ``updateStrategy``, ``revisionHistoryLimit``, ``dnsPolicy``,
``restartPolicy``, container ``terminationMessage*``, ``imagePullPolicy``, probe timings,
port protocols...), Service (``type``, ``sessionAffinity``, ``targetPort``, a cluster IP,
IP families), Namespace. A controller that compares a whole sub-object with what it sent
sees these as drift, as on a real cluster.

Validation (``pkg/apis/*/validation``, the rules that bite operators): replicas, selector vs
template labels, container names/images/ports/env names/resources (requests <= limits),
``restartPolicy``, immutable StatefulSet spec fields and Service cluster IP, PDB
``minAvailable`` xor ``maxUnavailable``, Lease durations, Event namespaces.

The StatefulSet controller names pods ``<name>-<ordinal>``, sets their hostname to that and
labels them ``controller-revision-hash: <name>-<hash>`` (hash about 10 characters): a
StatefulSet whose name is not a DNS-1123 label, or longer than 52 characters, is accepted by
the API but no pod can ever be created. The server reports that the way a cluster does: a
``Warning`` Event ``FailedCreate`` on the StatefulSet (``statefulset_pod_problem``).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Mapping
from typing import Any

from tests.kubeapi import errors, names, quantity
from tests.kubeapi.errors import FieldError

REVISION_HASH = "7c9d5b8f6d"  # a typical controller-revision-hash suffix (10 characters)
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "pods", "services"}
_cluster_ips = (str(ipaddress.ip_address("10.96.0.10") + n) for n in itertools.count())


# -- defaults ----------------------------------------------------------------------------

def _image_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    tag = tail.split(":", 1)[1] if ":" in tail else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        probe.setdefault(key, value)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("scheme", "HTTP")


def default_pod_spec(spec: dict[str, Any]) -> None:
    # The v1 conversion: the deprecated ``serviceAccount`` is read when
    # ``serviceAccountName`` is empty, and written back as a copy of it (both omitted when
    # empty). So removing only ``serviceAccountName`` keeps the old account.
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    spec.pop("serviceAccountName", None)
    spec.pop("serviceAccount", None)
    if account:
        spec["serviceAccountName"] = spec["serviceAccount"] = account
    for key, value in (("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"),
                       ("terminationGracePeriodSeconds", 30), ("securityContext", {}),
                       ("schedulerName", "default-scheduler")):
        spec.setdefault(key, value)
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        if isinstance(container.get("image"), str):
            container.setdefault("imagePullPolicy", _image_pull_policy(container["image"]))
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
        for env in container.get("env") or []:
            field_ref = (env.get("valueFrom") or {}).get("fieldRef")
            if isinstance(field_ref, dict):
                field_ref.setdefault("apiVersion", "v1")
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            _default_probe(container.get(probe))
    for volume in spec.get("volumes") or []:
        for source in ("secret", "configMap"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if kind == "StatefulSet" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy.setdefault("type", "RollingUpdate")
            strategy.setdefault("rollingUpdate", {"partition": 0})
        spec.setdefault("persistentVolumeClaimRetentionPolicy",
                        {"whenDeleted": "Retain", "whenScaled": "Retain"})
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            default_pod_spec(template_spec)
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
            if not spec.get("clusterIP"):
                spec["clusterIP"] = next(_cluster_ips)
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {"phase": "Active"})
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


# -- validation --------------------------------------------------------------------------

def _labels_of(selector: Any) -> dict[str, str]:
    return dict((selector or {}).get("matchLabels") or {})


def _selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    for key, value in _labels_of(selector).items():
        if labels.get(key) != value:
            return False
    for expr in (selector or {}).get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or \
                (op == "NotIn" and labels.get(key) in values) or \
                (op == "Exists" and key not in labels) or \
                (op == "DoesNotExist" and key in labels):
            return False
    return True


def _go_map(value: Mapping[str, str]) -> str:
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(value.items()))
    return "map[string]string{" + inner + "}"


def _validate_resources(resources: Any, path: str) -> list[FieldError]:
    out: list[FieldError] = []
    if not isinstance(resources, dict):
        return out
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for kind, values in (("limits", limits), ("requests", requests)):
        for name, amount in values.items():
            where = f"{path}.{kind}[{name}]"
            if name not in _STANDARD_RESOURCES and "/" not in name and \
                    not name.startswith("hugepages-"):
                out.append(errors.invalid(where, name,
                                          "must be a standard resource type or fully qualified"))
            if quantity.value(amount) < 0:
                out.append(errors.invalid(where, amount, "must be greater than or equal to 0"))
    for name, amount in requests.items():
        if name in limits and quantity.value(amount) > quantity.value(limits[name]):
            out.append(errors.invalid(f"{path}.requests", amount,
                                      f"must be less than or equal to {name} limit of "
                                      f"{limits[name]}"))
    return out


def _validate_containers(containers: Any, path: str) -> list[FieldError]:
    out: list[FieldError] = []
    if not containers:
        return [errors.required(path)]
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}[{index}]"
        name = container.get("name", "")
        if not name:
            out.append(errors.required(f"{where}.name"))
        else:
            out += [errors.invalid(f"{where}.name", name, m) for m in names.dns1123_label(name)]
            if name in seen:
                out.append(errors.duplicate(f"{where}.name", name))
            seen.add(name)
        if not container.get("image"):
            out.append(errors.required(f"{where}.image"))
        policy = container.get("imagePullPolicy")
        if policy is not None and policy not in ("Always", "IfNotPresent", "Never"):
            out.append(errors.not_supported(f"{where}.imagePullPolicy", policy,
                                            ["Always", "IfNotPresent", "Never"]))
        for n, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort")
            if not isinstance(number, int) or not 1 <= number <= 65535:
                out.append(errors.invalid(f"{where}.ports[{n}].containerPort", number,
                                          "must be between 1 and 65535, inclusive"))
            protocol = port.get("protocol", "TCP")
            if protocol not in ("TCP", "UDP", "SCTP"):
                out.append(errors.not_supported(f"{where}.ports[{n}].protocol", protocol,
                                                ["SCTP", "TCP", "UDP"]))
        for n, env in enumerate(container.get("env") or []):
            env_name = env.get("name", "")
            if not env_name:
                out.append(errors.required(f"{where}.env[{n}].name"))
            elif not _ENV_NAME.match(env_name):
                out.append(errors.invalid(
                    f"{where}.env[{n}].name", env_name,
                    "a valid environment variable name must consist of alphabetic characters, "
                    "digits, '_', '-', or '.', and must not start with a digit (e.g. "
                    "'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for "
                    "validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"))
        out += _validate_resources(container.get("resources"), f"{where}.resources")
    return out


def _validate_pod_template(template: Any, path: str, restart: tuple[str, ...]) -> \
        list[FieldError]:
    out: list[FieldError] = []
    if not isinstance(template, dict):
        return [errors.required(path)]
    labels = (template.get("metadata") or {}).get("labels") or {}
    out += names.validate_labels(labels, f"{path}.metadata.labels")
    spec = template.get("spec") or {}
    out += _validate_containers(spec.get("containers"), f"{path}.spec.containers")
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in restart:
        out.append(errors.not_supported(f"{path}.spec.restartPolicy", policy, list(restart)))
    out += names.validate_labels(spec.get("nodeSelector") or {}, f"{path}.spec.nodeSelector")
    return out


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def validate(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    """The kind's semantic validation of a decoded, defaulted object."""
    spec = obj.get("spec") or {}
    out: list[FieldError] = []
    if kind in ("StatefulSet", "Deployment"):
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            out.append(errors.invalid("spec.replicas", replicas,
                                      "must be greater than or equal to 0"))
        selector = spec.get("selector")
        if selector is None:
            out.append(errors.required("spec.selector"))
        elif not _labels_of(selector) and not selector.get("matchExpressions"):
            out.append(errors.invalid("spec.selector", "", f"empty selector is invalid for "
                                                            f"{kind.lower()}"))
        else:
            out += names.validate_labels(_labels_of(selector), "spec.selector.matchLabels")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if selector is not None and not _selector_matches(selector, labels):
            out.append(errors.invalid("spec.template.metadata.labels", _GoMap(labels),
                                      "`selector` does not match template `labels`"))
        out += _validate_pod_template(spec.get("template"), "spec.template", ("Always",))
        if kind == "StatefulSet":
            policy = spec.get("podManagementPolicy")
            if policy not in (None, "OrderedReady", "Parallel"):
                out.append(errors.invalid("spec.podManagementPolicy", policy,
                                          "must be 'OrderedReady' or 'Parallel'"))
            if old is not None:
                old_spec = old.get("spec") or {}
                if {k: v for k, v in spec.items() if k not in _STS_MUTABLE} != \
                        {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}:
                    out.append(errors.forbidden(
                        "spec", "updates to statefulset spec for fields other than 'replicas',"
                        " 'ordinals', 'template', 'updateStrategy', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                        "forbidden"))
    elif kind == "Service":
        out += _validate_service(spec, (old or {}).get("spec"))
    elif kind == "PodDisruptionBudget":
        if "minAvailable" in spec and "maxUnavailable" in spec:
            out.append(errors.invalid("spec", _PdbSpec(spec), "minAvailable and maxUnavailable "
                                                              "cannot be both set"))
        for key in ("minAvailable", "maxUnavailable"):
            value = spec.get(key)
            if isinstance(value, int) and value < 0:
                out.append(errors.invalid(f"spec.{key}", value,
                                          "must be greater than or equal to 0"))
            if isinstance(value, str) and not re.fullmatch(r"\d+%", value):
                out.append(errors.invalid(f"spec.{key}", value,
                                          "a valid percent string must be a numeric string "
                                          "followed by an ending '%' (e.g. '1%',  or '93%', "
                                          "regex used for validation is '[0-9]+%')"))
    elif kind == "Lease":
        duration = spec.get("leaseDurationSeconds")
        if isinstance(duration, int) and duration <= 0:
            out.append(errors.invalid("spec.leaseDurationSeconds", duration,
                                      "must be greater than 0"))
        transitions = spec.get("leaseTransitions")
        if isinstance(transitions, int) and transitions < 0:
            out.append(errors.invalid("spec.leaseTransitions", transitions,
                                      "must be greater than or equal to 0"))
    elif kind == "Event" and "involvedObject" in obj:
        involved = obj.get("involvedObject") or {}
        namespace = obj["metadata"].get("namespace")
        if involved.get("namespace") and involved.get("namespace") != namespace:
            out.append(errors.invalid("involvedObject.namespace", involved["namespace"],
                                      "does not match event.namespace"))
    return out


class _GoMap(dict):  # type: ignore[type-arg]
    """Prints like Go's ``map[string]string{...}`` in a field error."""

    def go_repr(self) -> str:
        return _go_map(self)


class _PdbSpec(dict):  # type: ignore[type-arg]
    def go_repr(self) -> str:
        return "policy.PodDisruptionBudgetSpec{...}"


def _validate_service(spec: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    out: list[FieldError] = []
    headless = spec.get("clusterIP") == "None"
    ports = spec.get("ports") or []
    if not ports and not headless and spec.get("type") != "ExternalName":
        out.append(errors.required("spec.ports"))
    seen: set[str] = set()
    for index, port in enumerate(ports):
        where = f"spec.ports[{index}]"
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            out.append(errors.invalid(f"{where}.port", number,
                                      "must be between 1 and 65535, inclusive"))
        name = port.get("name", "")
        if len(ports) > 1 and not name:
            out.append(errors.required(f"{where}.name"))
        elif name:
            out += [errors.invalid(f"{where}.name", name, m) for m in names.dns1123_label(name)]
            if name in seen:
                out.append(errors.duplicate(f"{where}.name", name))
            seen.add(name)
        protocol = port.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "SCTP"):
            out.append(errors.not_supported(f"{where}.protocol", protocol,
                                            ["SCTP", "TCP", "UDP"]))
    kind = spec.get("type", "ClusterIP")
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        out.append(errors.not_supported("spec.type", kind, ["ClusterIP", "ExternalName",
                                                             "LoadBalancer", "NodePort"]))
    out += names.validate_labels(spec.get("selector") or {}, "spec.selector")
    if old is not None and old.get("clusterIP") and spec.get("clusterIP") != old["clusterIP"]:
        out.append(errors.invalid("spec.clusterIPs[0]", [spec.get("clusterIP")],
                                  "may not change once set"))
    return out


def statefulset_pod_problem(sts: dict[str, Any]) -> str | None:
    """Why the StatefulSet controller cannot create this StatefulSet's pods (None: it can)."""
    name = sts["metadata"]["name"]
    pod = f"{name}-0"
    hostname = names.dns1123_label(pod)
    if hostname:
        detail = f'spec.hostname: Invalid value: "{pod}": {hostname[0]}'
    else:
        revision = f"{name}-{REVISION_HASH}"
        problems = names.label_value(revision)
        if not problems:
            return None
        detail = f'metadata.labels: Invalid value: "{revision}": {problems[0]}'
    return (f"create Pod {pod} in StatefulSet {name} failed error: Pod \"{pod}\" is invalid: "
            f"{detail}")
