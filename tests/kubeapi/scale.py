"""The scale subresource (``autoscaling/v1`` ``Scale``): for CRDs that declare it
(``specReplicasPath``, ``statusReplicasPath``, ``labelSelectorPath``) and for StatefulSets.

``GET`` builds the Scale from the object (``status.selector`` only when the CRD names a
``labelSelectorPath`` holding a string selector: without it an HPA cannot target the
resource); ``PUT``/``PATCH`` write ``spec.replicas`` back through the object's own admission
(schema bounds, CEL), so a scale beyond the CRD's ``maximum`` is the CRD's 422.
"""

# Mixin methods are typed with ``self: KubeAPIServer`` (the class they are mixed into).
# mypy: disable-error-code="misc"

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from tests.kubeapi import errors
from tests.kubeapi.resources import ResourceType
from tests.kubeapi.wire import Ctx, Route, public

if TYPE_CHECKING:
    from tests.kubeapi.server import KubeAPIServer


class ScaleSubresource:
    def _scale_of(self: KubeAPIServer, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        assert rtype.scale is not None
        meta = obj["metadata"]
        status: dict[str, Any] = {"replicas": path_get(obj, rtype.scale.status_replicas) or 0}
        if rtype.scale.selector_from_spec:
            selector = selector_string((obj.get("spec") or {}).get("selector"))
            if selector:
                status["selector"] = selector
        elif rtype.scale.selector:
            selector = path_get(obj, rtype.scale.selector)
            if isinstance(selector, str) and selector:
                status["selector"] = selector
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                  "creationTimestamp") if k in meta},
                "spec": {"replicas": path_get(obj, rtype.scale.spec_replicas) or 0},
                "status": status}

    def _write_scale(self: KubeAPIServer, ctx: Ctx, current: dict[str, Any],
                     scale: Any) -> dict[str, Any]:
        rtype = ctx.rtype
        assert rtype.scale is not None
        name = current["metadata"]["name"]
        if not isinstance(scale, dict):
            raise errors.bad_request("the body of the request was in an unknown format")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise errors.bad_request('Scale in version "v1" cannot be handled as a Scale: '
                                     'json: cannot unmarshal into Go struct field '
                                     'ScaleSpec.spec.replicas of type int32')
        if replicas < 0:
            raise errors.invalid_object("autoscaling", "Scale", name, [errors.invalid(
                "spec.replicas", replicas, "must be greater than or equal to 0")])
        want = (scale.get("metadata") or {}).get("resourceVersion")
        if want and want != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group, rtype.plural, name)
        body = copy.deepcopy(public(current))
        path_set(body, rtype.scale.spec_replicas, replicas)
        main = Ctx(ctx.request, rtype, Route(ctx.route.group, ctx.route.version,
                                             ctx.route.plural, ctx.route.namespace,
                                             ctx.route.name, ""), "update", ctx.user,
                   ctx.record, ctx.warnings)
        obj = self._admit(main, body, current)
        if not ctx.dry_run:
            obj = self._store_update(rtype, obj, current, count=True)
        return self._scale_of(rtype, obj)

    # -- storage and internal writes -----------------------------------------------------



def path_get(obj: Any, path: str) -> Any:
    node = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def path_set(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.lstrip(".").split(".")
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def selector_string(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: ``a=b,c in (d,e)``."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
