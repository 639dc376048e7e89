"""RBAC authorisation (``plugin/pkg/auth/authorizer/rbac``) and the
OwnerReferencesPermissionEnforcement admission plugin, for requests that carry a token.

Users: a bearer token maps to a user name (``system:serviceaccount:<ns>:<sa>``), whose
groups are ``system:serviceaccounts``, ``system:serviceaccounts:<ns>`` and
``system:authenticated``. Rules come from the Role/ClusterRole/RoleBinding/ClusterRoleBinding
dicts given (e.g. a Helm chart's rendered manifests): a ClusterRoleBinding grants everywhere,
a RoleBinding only in its namespace. A rule matches on API group, resource (``plural`` or
``plural/subresource``, ``*``), verb and, when set, ``resourceNames`` (which never match a
create or an unnamed list). Discovery (``/api``, ``/apis``, ``/version``) is open to
authenticated users, as the default ``system:discovery`` binding makes it.

Denials read as kube-apiserver's: ``statefulsets.apps "web" is forbidden: User
"system:serviceaccount:ns:sa" cannot create resource "statefulsets" in API group "apps" in
the namespace "ns1"`` (no name for a create or list; "at the cluster scope" without a
namespace).

OwnerReferencesPermissionEnforcement (on by default in OpenShift): changing an object's
``ownerReferences`` needs ``delete`` on the object itself (except on create), and setting
``blockOwnerDeletion: true`` on a reference needs ``update`` on the owner's ``finalizers``
subresource; both refusals are 403s worded as the plugin words them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]

    @classmethod
    def service_account(cls, namespace: str, name: str) -> User:
        return cls(f"system:serviceaccount:{namespace}:{name}",
                   ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                    "system:authenticated"))

    @classmethod
    def parse(cls, name: str) -> User:
        parts = name.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            return cls.service_account(parts[2], parts[3])
        return cls(name, ("system:authenticated",))


@dataclass(frozen=True)
class Attributes:
    """An authorisation request (``authorizer.AttributesRecord``)."""

    user: User
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""

    def denial(self) -> str:
        """``forbiddenMessage``: what the 403 says after "is forbidden: "."""
        resource = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = (f"in the namespace {json.dumps(self.namespace)}" if self.namespace
                 else "at the cluster scope")
        return (f"User {json.dumps(self.user.name)} cannot {self.verb} resource "
                f"{json.dumps(resource)} in API group {json.dumps(self.group)} {where}")


def _matches(rule: dict[str, Any], attrs: Attributes) -> bool:
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    wanted = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = rule.get("resources") or []
    accepted = {"*", wanted}
    if attrs.subresource:
        accepted |= {f"*/{attrs.subresource}", f"{attrs.resource}/*"}
    if not accepted & set(resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or bool(attrs.name and attrs.name in names)


class Authorizer:
    """Decides requests against a fixed set of RBAC objects."""

    def __init__(self, objects: Iterable[dict[str, Any]]) -> None:
        self.cluster_roles: dict[str, list[dict[str, Any]]] = {}
        self.roles: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.cluster_bindings: list[dict[str, Any]] = []
        self.bindings: list[dict[str, Any]] = []
        for obj in objects:
            kind, meta = obj.get("kind"), obj.get("metadata") or {}
            if kind == "ClusterRole":
                self.cluster_roles[meta["name"]] = list(obj.get("rules") or [])
            elif kind == "Role":
                self.roles[(meta.get("namespace", "default"), meta["name"])] = \
                    list(obj.get("rules") or [])
            elif kind == "ClusterRoleBinding":
                self.cluster_bindings.append(obj)
            elif kind == "RoleBinding":
                self.bindings.append(obj)

    @staticmethod
    def _bound(binding: dict[str, Any], user: User) -> bool:
        for subject in binding.get("subjects") or []:
            kind = subject.get("kind")
            if kind == "User" and subject.get("name") == user.name:
                return True
            if kind == "Group" and subject.get("name") in user.groups:
                return True
            if kind == "ServiceAccount":
                namespace = subject.get("namespace") or \
                    (binding.get("metadata") or {}).get("namespace", "")
                if user.name == f"system:serviceaccount:{namespace}:{subject.get('name')}":
                    return True
        return False

    def _rules(self, user: User, namespace: str) -> Iterable[dict[str, Any]]:
        for binding in self.cluster_bindings:
            if self._bound(binding, user):
                yield from self.cluster_roles.get(binding["roleRef"]["name"], [])
        if not namespace:
            return
        for binding in self.bindings:
            if binding["metadata"].get("namespace") != namespace or \
                    not self._bound(binding, user):
                continue
            ref = binding["roleRef"]
            if ref["kind"] == "ClusterRole":
                yield from self.cluster_roles.get(ref["name"], [])
            else:
                yield from self.roles.get((namespace, ref["name"]), [])

    def allowed(self, attrs: Attributes) -> bool:
        return any(_matches(rule, attrs) for rule in self._rules(attrs.user, attrs.namespace))

    def rules_for(self, user: User, namespace: str) -> list[dict[str, Any]]:
        return list(self._rules(user, namespace))


def changing_owner_references(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    new_refs = (new.get("metadata") or {}).get("ownerReferences") or []
    if old is None:
        return bool(new_refs)
    old_refs = (old.get("metadata") or {}).get("ownerReferences") or []
    return _canonical(new_refs) != _canonical(old_refs)


def _canonical(refs: list[dict[str, Any]]) -> str:
    return json.dumps(refs, sort_keys=True)


def new_blocking_references(new: dict[str, Any], old: dict[str, Any] | None) -> \
        list[dict[str, Any]]:
    """References that set ``blockOwnerDeletion: true`` anew (by owner uid)."""
    old_blocking = {r.get("uid") for r in ((old or {}).get("metadata") or {}).get(
        "ownerReferences") or [] if r.get("blockOwnerDeletion")}
    return [r for r in (new.get("metadata") or {}).get("ownerReferences") or []
            if r.get("blockOwnerDeletion") and r.get("uid") not in old_blocking]


SET_FINALIZERS = ("cannot set blockOwnerDeletion if an ownerReference refers to a resource you "
                  "can't set finalizers on: , <nil>")
SET_OWNER_REF = "cannot set an ownerRef on a resource you can't delete: , <nil>"
