"""Writes: create, update (PUT), patch, delete and deletecollection, and the storage side of
each (resourceVersion, watch events, finalizers, garbage collection triggers).

Optimistic concurrency is kube-apiserver's: an update or patch naming a stale
``metadata.resourceVersion`` is a 409 Conflict; a custom resource cannot be PUT without one
(422). A write that changes nothing keeps the resourceVersion and emits no event. Deleting an
object with finalizers only marks it (``deletionTimestamp``, generation + 1); removing its last
finalizer deletes it. ``propagationPolicy: Orphan|Foreground`` adds the GC's finalizer.
``dryRun`` runs everything but storage.
"""

# Mixin methods are typed with ``self: KubeAPIServer`` (the class they are mixed into).
# mypy: disable-error-code="misc"

from __future__ import annotations

import copy
import json
import uuid
from typing import TYPE_CHECKING, Any

import yaml

from tests.kubeapi import builtins, errors, patches
from tests.kubeapi.gc import FOREGROUND, ORPHAN
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.wire import Ctx, GoText, now, public, success

if TYPE_CHECKING:
    from tests.kubeapi.server import KubeAPIServer


class Writes:
    def _body(self: KubeAPIServer, ctx: Ctx) -> Any:
        raw = ctx.request.body
        content_type = ctx.request.headers.get("Content-Type", "").split(";")[0].strip()
        if not raw:
            raise errors.bad_request("the body of the request was empty")
        if content_type.startswith("application/vnd.kubernetes.protobuf") or \
                content_type.startswith("application/cbor"):
            # kubectl's generators send built-ins as protobuf; only JSON/YAML are served here.
            raise errors.unsupported_media_type(
                f'the body of the request was in an unknown format - accepted media types '
                f'include: application/json, application/yaml (not "{content_type}": '
                f'protobuf and CBOR are not emulated)')
        try:
            if content_type == patches.APPLY:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors.bad_request(f"error decoding request body: {exc}") from None

    def _check_kind(self: KubeAPIServer, ctx: Ctx, body: Any) -> dict[str, Any]:
        rtype = ctx.rtype
        if not isinstance(body, dict):
            raise errors.bad_request(f"{rtype.kind} in version \"{rtype.version}\" cannot be "
                                     f"handled as a {rtype.kind}: json: cannot unmarshal "
                                     f"{type(body).__name__} into Go value of type "
                                     f"map[string]interface {{}}")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if rtype.is_custom and (not kind or not api_version):
            missing = "Kind" if not kind else "apiVersion"
            raise errors.bad_request(f"Object '{missing}' is missing in "
                                     f"'{json.dumps(body, separators=(',', ':'))}'")
        if api_version and api_version != rtype.api_version:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not "
                                     f"match the expected API version ({rtype.api_version})")
        if kind and kind != rtype.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the "
                                     f"expected kind ({rtype.kind})")
        body = copy.deepcopy(body)
        out: dict[str, Any] = body
        out["apiVersion"], out["kind"] = rtype.api_version, rtype.kind
        if not isinstance(out.get("metadata"), dict):
            out["metadata"] = {}
        return out

    def _create(self: KubeAPIServer, ctx: Ctx, body: Any = None) -> dict[str, Any]:
        rtype = ctx.rtype
        self._authorize(ctx, name="")
        if ctx.route.subresource:
            raise errors.method_not_allowed("the server does not allow this method on the "
                                            "requested resource")
        body = self._check_kind(ctx, self._body(ctx) if body is None else body)
        meta = body["metadata"]
        if rtype.namespaced:
            if meta.get("namespace") not in (None, "", ctx.namespace):
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = ctx.namespace
            self._namespace_admits(ctx)
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name") or ""
        obj = self._admit(ctx, body, None)
        if self.store.get(rtype.key, ctx.namespace, name) is not None:
            raise errors.already_exists(rtype.group, rtype.plural, name)
        self._admission_owner_references(ctx, obj, None)
        if ctx.dry_run:
            return public(obj)
        self._put(rtype, obj, "ADDED")
        self.writes[(rtype.key, ctx.namespace, name)] += 1
        self.gc.created(obj)
        if rtype.kind == "StatefulSet":
            self._statefulset_controller(obj)
        return public(obj)

    def _namespace_admits(self: KubeAPIServer, ctx: Ctx) -> None:
        """NamespaceLifecycle: no new objects in a missing or terminating namespace."""
        namespace = ctx.namespace or ""
        ns = self.store.get("v1/namespaces", None, namespace)
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden_error(
                ctx.rtype.group, ctx.rtype.plural, None,
                f"unable to create new content in namespace {namespace} because it is being "
                f"terminated")

    def _update(self: KubeAPIServer, ctx: Ctx) -> dict[str, Any]:
        self._authorize(ctx)
        current = self._current(ctx)
        body = self._body(ctx)
        if ctx.route.subresource == "scale":
            return self._write_scale(ctx, current, body)
        body = self._check_kind(ctx, body)
        return self._apply_update(ctx, current, body, explicit_rv=True)

    def _patch(self: KubeAPIServer, ctx: Ctx) -> dict[str, Any]:
        self._authorize(ctx)
        content_type = ctx.request.headers.get("Content-Type", "").split(";")[0].strip()
        allowed = [patches.JSON_PATCH, patches.MERGE, patches.APPLY]
        if not ctx.rtype.is_custom:
            allowed.insert(2, patches.STRATEGIC)
        if content_type not in allowed:
            raise errors.unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types "
                "include: " + ", ".join(allowed))
        patch = self._body(ctx)
        if content_type == patches.APPLY and not ctx.params.get("fieldManager"):
            raise errors.invalid_object("meta.k8s.io", "PatchOptions", "", [errors.required(
                "fieldManager", "is required for apply patch")])
        existing = self.store.get(ctx.rtype.key, ctx.namespace, ctx.route.name or "")
        if existing is None:
            if content_type == patches.APPLY and not ctx.route.subresource:
                ctx.verb = ctx.record.verb = "patch"
                return self._create_from_apply(ctx, patch)
            raise errors.not_found(ctx.rtype.group, ctx.rtype.plural, ctx.route.name or "")
        current = self._read_defaulted(ctx.rtype, existing)
        target = self._scale_of(ctx.rtype, current) if ctx.route.subresource == "scale" \
            else public(current)
        try:
            if content_type == patches.JSON_PATCH:
                patched = patches.json_patch(target, patches.decode_json_patch(patch))
            elif content_type == patches.STRATEGIC:
                patched = patches.strategic_merge_patch(target, patch)
            else:  # merge patch; server-side apply is emulated as a merge (no field ownership)
                if not isinstance(patch, dict):
                    raise errors.bad_request("json: cannot unmarshal array into Go value of "
                                             "type map[string]interface {}")
                patched = patches.merge_patch(target, patch)
        except patches.PatchDoesNotApply as exc:
            raise errors.unprocessable(str(exc)) from None
        if ctx.route.subresource == "scale":
            return self._write_scale(ctx, current, patched)
        patched = self._check_kind(ctx, patched)
        return self._apply_update(ctx, current, patched, explicit_rv=False)

    def _create_from_apply(self: KubeAPIServer, ctx: Ctx, body: Any) -> dict[str, Any]:
        if isinstance(body, dict):
            body.setdefault("metadata", {}).setdefault("name", ctx.route.name)
        self._authorize(ctx, verb="create", name="")
        return self._create(ctx, body)

    def _apply_update(self: KubeAPIServer, ctx: Ctx, current: dict[str, Any], body: dict[str, Any],
                      explicit_rv: bool) -> dict[str, Any]:
        rtype = ctx.rtype
        meta = body["metadata"]
        name = ctx.route.name or ""
        if meta.get("name") not in (None, name):
            raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not "
                                     f"match the name on the URL ({name})")
        meta["name"] = name
        if rtype.namespaced:
            if meta.get("namespace") not in (None, "", ctx.namespace):
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = ctx.namespace
        want = meta.get("resourceVersion")
        have = current["metadata"]["resourceVersion"]
        if explicit_rv and not want and not rtype.unconditional_update:
            raise errors.invalid_object(rtype.group, rtype.kind, name, [errors.invalid(
                "metadata.resourceVersion", GoText("0x0"), "must be specified for an update")])
        if want and want != have:
            raise errors.conflict(rtype.group, rtype.plural, name)
        obj = self._admit(ctx, body, current)
        self._admission_owner_references(ctx, obj, current)
        if ctx.dry_run:
            return public(obj)
        return public(self._store_update(rtype, obj, current, count=True))

    def _store_update(self: KubeAPIServer, rtype: ResourceType, obj: dict[str, Any],
                      current: dict[str, Any],
                      count: bool) -> dict[str, Any]:
        """Persist an admitted update; a deleted object whose finalizers are gone goes."""
        meta = obj["metadata"]
        key = (rtype.key, meta.get("namespace"), meta["name"])
        if count:
            self.writes[key] += 1
        if same(obj, current):
            return current  # a no-op write: same resourceVersion, no event (as etcd3)
        meta["resourceVersion"] = str(self.store.next_rv())
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(rtype, obj)
            return obj
        self._put(rtype, obj, "MODIFIED", current)
        if meta.get("deletionTimestamp"):
            self.gc.owner_deleting(obj)
        if rtype.kind == "StatefulSet" and obj.get("spec") != current.get("spec"):
            self._statefulset_controller(obj)
        return obj

    def _delete(self: KubeAPIServer, ctx: Ctx) -> dict[str, Any]:
        self._authorize(ctx)
        current = self._current(ctx)
        options = self._delete_options(ctx)
        pre = options.get("preconditions") or {}
        meta = current["metadata"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise errors.conflict(ctx.rtype.group, ctx.rtype.plural, meta["name"],
                                  f"Precondition failed: UID in precondition: {pre['uid']}, "
                                  f"UID in object meta: {meta['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise errors.conflict(ctx.rtype.group, ctx.rtype.plural, meta["name"],
                                  f"Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{meta['resourceVersion']}")
        if ctx.dry_run:
            return public(current)
        self.writes[(ctx.rtype.key, ctx.namespace, meta["name"])] += 1
        policy = options.get("propagationPolicy") or ctx.params.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        return self._do_delete(ctx.rtype, current, policy)

    def _delete_options(self: KubeAPIServer, ctx: Ctx) -> dict[str, Any]:
        if not ctx.request.body:
            return {}
        try:
            body = json.loads(ctx.request.body)
        except ValueError:
            raise errors.bad_request("error decoding DeleteOptions") from None
        return body if isinstance(body, dict) else {}

    def _do_delete(self: KubeAPIServer, rtype: ResourceType, current: dict[str, Any],
                   policy: str | None) -> dict[str, Any]:
        meta = current["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if policy == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        if policy == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if not finalizers:
            self._remove(rtype, current)
            return success(rtype, current)
        obj = copy.deepcopy(current)
        obj["metadata"]["finalizers"] = finalizers
        if not obj["metadata"].get("deletionTimestamp"):
            obj["metadata"]["deletionTimestamp"] = now()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            if obj["metadata"].get("generation"):
                obj["metadata"]["generation"] += 1
        stored = self._store_update(rtype, obj, current, count=False)
        return public(stored)

    def _delete_collection(self: KubeAPIServer, ctx: Ctx) -> dict[str, Any]:
        self._authorize(ctx)
        accepts = self._matchers(ctx)
        deleted = []
        for obj in list(self.store.items(ctx.rtype.key, ctx.namespace)):
            if accepts(obj) and not ctx.dry_run:
                self.writes[(ctx.rtype.key, obj["metadata"].get("namespace"),
                             obj["metadata"]["name"])] += 1
                self._do_delete(ctx.rtype, obj, None)
                deleted.append(public(obj))
        return {"apiVersion": ctx.rtype.api_version, "kind": f"{ctx.rtype.kind}List",
                "metadata": {"resourceVersion": str(self.store.revision)}, "items": deleted}

    # -- the admission pipeline ----------------------------------------------------------

    def _put(self: KubeAPIServer, rtype: ResourceType, obj: dict[str, Any], event: str,
             previous: dict[str, Any] | None = None) -> None:
        meta = obj["metadata"]
        if event == "ADDED":
            meta["resourceVersion"] = str(self.store.next_rv())
        self.store.put(rtype.key, obj, event, previous)
        self._uids[meta["uid"]] = (rtype.key, meta.get("namespace"), meta["name"])

    def _remove(self: KubeAPIServer, rtype: ResourceType, obj: dict[str, Any]) -> None:
        self.store.remove(rtype.key, obj)
        uid = obj["metadata"]["uid"]
        self._uids.pop(uid, None)
        self.gc.owner_removed(uid)
        if rtype.kind == "Namespace":
            for key, item in list(self.store.all_items()):
                if item["metadata"].get("namespace") == obj["metadata"]["name"]:
                    self._remove(self._by_key[key], item)

    def uid_exists(self: KubeAPIServer, uid: str) -> bool:
        return uid in self._uids

    def find_uid(self: KubeAPIServer, uid: str) -> tuple[str, dict[str, Any]] | None:
        where = self._uids.get(uid)
        if where is None:
            return None
        obj = self.store.get(*where)
        return (where[0], obj) if obj is not None else None

    def internal_update(self: KubeAPIServer, key: str, obj: dict[str, Any],
                        meta_changes: dict[str, Any]) -> None:
        """A controller's metadata write (GC): no admission, a new version and event."""
        rtype = self._by_key[key]
        current = self.store.get(key, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if current is None:
            return
        new = copy.deepcopy(current)
        for k, v in meta_changes.items():
            if v is None:
                new["metadata"].pop(k, None)
            else:
                new["metadata"][k] = v
        self._store_update(rtype, new, current, count=False)

    def internal_delete(self: KubeAPIServer, key: str, obj: dict[str, Any]) -> None:
        current = self.store.get(key, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if current is not None:
            self._do_delete(self._by_key[key], current, None)

    def _statefulset_controller(self: KubeAPIServer, sts: dict[str, Any]) -> None:
        """The one thing of the StatefulSet controller emulated: it cannot create pods."""
        problem = builtins.statefulset_pod_problem(sts)
        if problem is None:
            return
        rtype = self._by_key["v1/events"]
        meta = sts["metadata"]
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                         "namespace": meta.get("namespace")},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "StatefulSet",
                               "name": meta["name"], "namespace": meta.get("namespace"),
                               "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]},
            "reason": "FailedCreate", "message": problem, "type": "Warning",
            "source": {"component": "statefulset-controller"},
            "firstTimestamp": now(), "lastTimestamp": now(), "count": 1,
            "reportingComponent": "statefulset-controller",
        }
        self._stamp_new(event, rtype, meta.get("namespace"))
        self._put(rtype, event, "ADDED")



def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    strip = ("resourceVersion", "managedFields")
    return ({k: v for k, v in a.items() if k not in ("metadata", "__epoch__")} ==
            {k: v for k, v in b.items() if k not in ("metadata", "__epoch__")} and
            {k: v for k, v in a["metadata"].items() if k not in strip} ==
            {k: v for k, v in b["metadata"].items() if k not in strip})
