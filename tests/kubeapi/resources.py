"""What the server serves: one ``ResourceType`` per group/version/plural, built from a CRD or
from the catalog of built-in kinds below.

A type carries what request handling branches on: scope, verbs, the status and scale
subresources, the name rule of its kind, the field selectors it supports, whether an update
without ``resourceVersion`` is allowed (not for custom resources), and, for a CRD, its
compiled structural schema with CEL rules (compiled once, here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi import cel, schema

ALL_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete",
                       "deletecollection"})
META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True)
class Scale:
    """The scale subresource: where replicas live (``.spec.replicas``-style JSON paths)."""

    spec_replicas: str
    status_replicas: str
    selector: str | None = None  # labelSelectorPath (string form) or None
    selector_from_spec: bool = False  # built-ins: ``.spec.selector`` as a LabelSelector


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: frozenset[str] = ALL_VERBS
    status: bool = False
    scale: Scale | None = None
    name_rule: str = "DNS1123Subdomain"
    field_selectors: frozenset[str] = META_FIELDS
    unconditional_update: bool = True
    crd: dict[str, Any] | None = None
    schema: schema.Node | None = None
    epoch: int = 0  # bumped when the CRD is replaced: stored objects are defaulted again
    defaults: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.group}/{self.version}/{self.plural}" if self.group else \
            f"{self.version}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_custom(self) -> bool:
        return self.crd is not None

    def base_path(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            root += f"/namespaces/{namespace}"
        return f"{root}/{self.plural}"


def from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The served versions of a CRD, schemas compiled (CEL rules included)."""
    spec, names = crd["spec"], crd["spec"]["names"]
    out = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        raw = (version.get("schema") or {}).get("openAPIV3Schema") or {
            "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        root = schema.compile_schema(raw)
        cel.attach_rules(root, raw)
        subresources = version.get("subresources") or {}
        scale = None
        if "scale" in subresources:
            raw_scale = subresources["scale"]
            scale = Scale(raw_scale["specReplicasPath"], raw_scale["statusReplicasPath"],
                          raw_scale.get("labelSelectorPath"))
        out.append(ResourceType(
            group=spec["group"], version=version["name"], plural=names["plural"],
            kind=names["kind"], namespaced=spec["scope"] == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            status="status" in subresources, scale=scale, unconditional_update=False,
            crd=crd, schema=root, defaults=schema.has_defaults(root),
        ))
    return out


def _builtin(group: str, version: str, plural: str, kind: str, namespaced: bool = True,
             **kwargs: Any) -> ResourceType:
    return ResourceType(group=group, version=version, plural=plural, kind=kind,
                        namespaced=namespaced, singular=kind.lower(), **kwargs)


EVENT_FIELDS = META_FIELDS | {
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}

# The built-in kinds an operator and its tooling touch; schemas come from kubernetes-validate.
BUILTINS: list[ResourceType] = [
    _builtin("", "v1", "namespaces", "Namespace", namespaced=False, status=True,
             name_rule="DNS1123Label", short_names=("ns",),
             field_selectors=META_FIELDS | {"status.phase"}),
    _builtin("", "v1", "services", "Service", status=True, name_rule="DNS1035Label",
             short_names=("svc",)),
    _builtin("", "v1", "events", "Event", short_names=("ev",), field_selectors=EVENT_FIELDS),
    _builtin("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _builtin("", "v1", "secrets", "Secret", field_selectors=META_FIELDS | {"type"}),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _builtin("", "v1", "pods", "Pod", status=True, short_names=("po",),
             field_selectors=META_FIELDS | {"spec.nodeName", "status.phase"}),
    _builtin("apps", "v1", "statefulsets", "StatefulSet", status=True, short_names=("sts",),
             scale=Scale(".spec.replicas", ".status.replicas", selector_from_spec=True)),
    _builtin("apps", "v1", "deployments", "Deployment", status=True, short_names=("deploy",),
             scale=Scale(".spec.replicas", ".status.replicas", selector_from_spec=True)),
    _builtin("apps", "v1", "controllerrevisions", "ControllerRevision"),
    _builtin("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", status=True,
             short_names=("pdb",)),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    _builtin("events.k8s.io", "v1", "events", "Event", field_selectors=EVENT_FIELDS),
    _builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions",
             "CustomResourceDefinition", namespaced=False, status=True, short_names=("crd",)),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", name_rule="Path"),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding",
             name_rule="Path"),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole",
             namespaced=False, name_rule="Path"),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
             namespaced=False, name_rule="Path"),
]
