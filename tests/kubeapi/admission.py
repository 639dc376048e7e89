"""The admission pipeline: decode, default, apply the kind's strategy and validate (422),
then OwnerReferencesPermissionEnforcement (403).

Custom resources are pruned, rid of disallowed nulls, defaulted, status-isolated, then
checked against their structural schema and CEL rules (not when a type or enum error was
found). Built-ins are decoded against their OpenAPI schema, defaulted and validated by
``tests.kubeapi.builtins``. Both get ``ObjectMeta`` validation (name rule of the kind,
labels, annotations, finalizers, owner references). The strategy is kube-apiserver's
PrepareForCreate/PrepareForUpdate: on a resource with a status subresource the main endpoint
keeps the stored status and ``/status`` keeps everything but the status; system metadata
(uid, creationTimestamp, deletionTimestamp...) cannot be written; ``metadata.generation``
moves only when the content other than metadata (and status, where isolated) changes.
"""

# Mixin methods are typed with ``self: KubeAPIServer`` (the class they are mixed into).
# mypy: disable-error-code="misc"

from __future__ import annotations

import copy
import json
import uuid
from typing import TYPE_CHECKING, Any

from tests.kubeapi import builtins, cel, errors, names, openapi, rbac, schema
from tests.kubeapi.errors import FieldError
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.wire import Ctx, GoText, now

if TYPE_CHECKING:
    from tests.kubeapi.server import KubeAPIServer

STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}
GENERATION_KINDS = {"StatefulSet", "Deployment", "PodDisruptionBudget"}
INITIAL_STATUS: dict[str, dict[str, Any]] = {
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "Deployment": {},
    "PodDisruptionBudget": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                            "expectedPods": 0},
    "Service": {"loadBalancer": {}},
}


class Admission:
    def _admit(self: KubeAPIServer, ctx: Ctx, body: dict[str, Any],
               current: dict[str, Any] | None) -> dict[str, Any]:
        """Decode, default, apply the kind's strategy and validate; the object to store."""
        rtype = ctx.rtype
        strict = (ctx.params.get("fieldValidation") or self.field_validation) == "Strict"
        ignore = (ctx.params.get("fieldValidation") or self.field_validation) == "Ignore"
        name = body["metadata"].get("name") or ""
        errs: list[FieldError] = []
        if rtype.schema is not None:
            unknown = schema.prune(body, rtype.schema)
            schema.prune_nulls(body, rtype.schema)
            schema.apply_defaults(body, rtype.schema)
        else:
            try:
                decoded, report = openapi.decode(body, rtype.group, rtype.version, rtype.kind)
            except openapi.DecodeError as exc:
                raise errors.bad_request(f'{rtype.kind} in version "{rtype.version}" cannot be '
                                         f"handled as a {rtype.kind}: {exc}") from None
            body, unknown = decoded, report.unknown
            body.setdefault("metadata", {})
            body["metadata"].setdefault("name", name)
            builtins.apply_defaults(rtype.kind, body)
            errs += report.required
        if unknown and strict:
            raise errors.bad_request("strict decoding error: " + ", ".join(
                f'unknown field "{u}"' for u in unknown))
        if unknown and not ignore:
            ctx.warnings += [f'unknown field "{u}"' for u in unknown]
        obj = self._strategy(ctx, body, current)
        errs = self._validate_meta(rtype, obj, current) + errs
        if rtype.schema is not None:
            found = schema.validate(obj, rtype.schema)
            errs += found
            blocking = any(e.type in ("FieldValueNotSupported", "FieldValueTypeInvalid")
                           for e in found)
            if blocking and rtype.schema.rules_below:
                errs.append(errors.invalid("<nil>", None, "some validation rules were not "
                                                          "checked because the object was "
                                                          "invalid; correct the existing "
                                                          "errors to complete validation"))
            elif not blocking:
                errs += cel.validate(obj, current, rtype.schema)
        else:
            errs += builtins.validate(rtype.kind, obj, current)
        if errs:
            raise errors.invalid_object(rtype.group, rtype.kind, obj["metadata"].get("name", ""),
                                        errs)
        obj["__epoch__"] = rtype.epoch
        return obj

    def _strategy(self: KubeAPIServer, ctx: Ctx, body: dict[str, Any],
                  current: dict[str, Any] | None) -> dict[str, Any]:
        """Status isolation, system metadata and the generation (PrepareForCreate/Update)."""
        rtype = ctx.rtype
        status_request = ctx.route.subresource == "status"
        if current is None:
            if rtype.status:
                body.pop("status", None) if rtype.is_custom else None
            self._stamp_new(body, rtype, ctx.namespace)
            return body
        if status_request:
            obj = copy.deepcopy(current)
            if "status" in body:
                obj["status"] = body["status"]
            else:
                obj.pop("status", None)
            return obj
        obj = body
        if rtype.status:
            if "status" in current:
                obj["status"] = copy.deepcopy(current["status"])
            else:
                obj.pop("status", None)
        meta, old = obj["metadata"], current["metadata"]
        for key in ("uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "resourceVersion"):
            if key in old:
                meta[key] = old[key]
            else:
                meta.pop(key, None)
        meta.pop("managedFields", None)
        meta.pop("selfLink", None)
        generation = old.get("generation")
        if generation:
            changed = content(obj, rtype) != content(current, rtype)
            meta["generation"] = generation + 1 if changed else generation
        else:
            meta.pop("generation", None)
        return obj

    def _stamp_new(self: KubeAPIServer, obj: dict[str, Any], rtype: ResourceType,
                   namespace: str | None) -> None:
        meta = obj["metadata"]
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion",
                    "selfLink", "managedFields", "generation"):
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if rtype.is_custom or rtype.kind in GENERATION_KINDS:
            meta["generation"] = 1
        if namespace is not None:
            meta["namespace"] = namespace
        if not rtype.is_custom and rtype.kind in INITIAL_STATUS:
            # PrepareForCreate resets a built-in's status; Go prints its non-omitempty fields.
            obj["status"] = copy.deepcopy(INITIAL_STATUS[rtype.kind])

    def _validate_meta(self: KubeAPIServer, rtype: ResourceType, obj: dict[str, Any],
                       current: dict[str, Any] | None) -> list[FieldError]:
        meta = obj["metadata"]
        out: list[FieldError] = []
        name = meta.get("name") or ""
        if not name:
            out.append(errors.required("metadata.name", "name or generateName is required"))
        elif rtype.name_rule == "Path":
            out += [errors.invalid("metadata.name", name, m)
                    for m in names.path_segment_name(name)]
        else:
            out += names.validate_name(name, rtype.name_rule)
        if meta.get("generateName") and current is None:
            out += names.validate_name(meta["generateName"], rtype.name_rule
                                       if rtype.name_rule != "Path" else "DNS1123Subdomain",
                                       "metadata.generateName", prefix=True)
        out += names.validate_labels(meta.get("labels"), "metadata.labels")
        out += names.validate_annotations(meta.get("annotations"), "metadata.annotations")
        for index, finalizer in enumerate(meta.get("finalizers") or []):
            where = f"metadata.finalizers[{index}]"
            problems = names.qualified_name(finalizer)
            if problems:
                out += [errors.invalid(where, finalizer, m) for m in problems]
            elif "/" not in finalizer and finalizer not in STANDARD_FINALIZERS:
                out.append(errors.invalid(where, finalizer, "name is neither a standard "
                                                            "finalizer name nor is it fully "
                                                            "qualified"))
        controllers = 0
        for index, ref in enumerate(meta.get("ownerReferences") or []):
            where = f"metadata.ownerReferences[{index}]"
            for key in ("apiVersion", "kind", "name", "uid"):
                if not ref.get(key):
                    out.append(errors.invalid(f"{where}.{key}", ref.get(key, ""),
                                              f"{key} must not be empty"))
            controllers += bool(ref.get("controller"))
        if controllers > 1:
            refs = GoText("[]v1.OwnerReference{...}")
            out.append(errors.invalid("metadata.ownerReferences", refs,
                                      "Only one reference can have Controller set to true. "
                                      "Found \"true\" in references for ..."))
        if current is not None and current["metadata"].get("deletionTimestamp"):
            added = [f for f in meta.get("finalizers") or []
                     if f not in (current["metadata"].get("finalizers") or [])]
            if added:
                out.append(errors.forbidden(
                    "metadata.finalizers", "no new finalizers can be added if the object is "
                    "being deleted, found new finalizers []string{" +
                    ", ".join(json.dumps(f) for f in added) + "}"))
        return out

    def _admission_owner_references(self: KubeAPIServer, ctx: Ctx, obj: dict[str, Any],
                                     current: dict[str, Any] | None) -> None:
        """OwnerReferencesPermissionEnforcement (for token-bearing requests)."""
        if ctx.user is None or self.authorizer is None or \
                not self.owner_references_enforcement:
            return
        if not rbac.changing_owner_references(obj, current):
            return
        rtype, name = ctx.rtype, obj["metadata"].get("name", "")
        namespace = ctx.namespace or ""
        if current is not None and not self.allowed(rbac.Attributes(
                ctx.user, "delete", rtype.group, rtype.plural, ctx.route.subresource,
                namespace, name)):
            raise errors.forbidden_error(rtype.group, rtype.plural, name, rbac.SET_OWNER_REF)
        for ref in rbac.new_blocking_references(obj, current):
            group = ref.get("apiVersion", "").rpartition("/")[0]
            owners = [t for t in self.types.values()
                      if t.group == group and t.kind == ref.get("kind")]
            if not owners:
                raise errors.forbidden_error(
                    rtype.group, rtype.plural, name,
                    f"cannot set blockOwnerDeletion in this case because cannot find "
                    f"RESTMapping for APIVersion {ref.get('apiVersion')} Kind {ref.get('kind')}: "
                    f"no matches for kind {json.dumps(ref.get('kind'))} in version "
                    f"{json.dumps(ref.get('apiVersion'))}")
            owner = owners[0]
            if not self.allowed(rbac.Attributes(
                    ctx.user, "update", owner.group, owner.plural, "finalizers",
                    namespace if owner.namespaced else "", ref.get("name", ""))):
                raise errors.forbidden_error(rtype.group, rtype.plural, name,
                                             rbac.SET_FINALIZERS)

    # -- scale ---------------------------------------------------------------------------







def content(obj: dict[str, Any], rtype: ResourceType) -> Any:
    """What a generation counts: everything but metadata (and status, for built-ins)."""
    if rtype.is_custom:
        return {k: v for k, v in obj.items() if k not in ("metadata", "__epoch__")}
    return obj.get("spec")
