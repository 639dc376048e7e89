"""The patch formats kube-apiserver accepts, with its answers when a patch does not apply.

- JSON merge patch (RFC 7386): objects merge, a ``null`` deletes the key, anything else
  (lists included) replaces. A ``null`` can therefore never be *stored* through a merge patch.
- JSON patch (RFC 6902): a malformed patch is 400; one that does not apply (a failed ``test``,
  a missing path) is 422, which is what kopf's optimistic-concurrency ``test`` on
  ``metadata.resourceVersion`` relies on.
- Strategic merge patch (built-in kinds only; 415 for custom resources): merge patch plus
  merging of lists by their ``patchMergeKey`` for the lists the operator's children carry, and
  the ``$patch: delete|replace`` directive. ``$retainKeys``/``$setElementOrder``/
  ``$deleteFromPrimitiveList`` are not emulated.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.kubeapi import errors

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

# patchMergeKey of the lists strategic merge merges (k8s.io/api types), by field name.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "ports": "containerPort", "conditions": "type",
    "ownerReferences": "uid", "hostAliases": "ip", "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
SET_LISTS = {"finalizers"}  # patchStrategy: merge on a list of strings


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(target, patch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, name: str = "") -> Any:
    """A strategic merge patch for built-in objects (see the module docstring)."""
    if not isinstance(patch, dict):
        if isinstance(patch, list) and isinstance(target, list):
            return _merge_list(target, patch, name)
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            merged = strategic_merge_patch(result.get(key), value, key)
            if merged is None and isinstance(value, dict) and value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _merge_list(target: list[Any], patch: list[Any], name: str) -> list[Any]:
    if name in SET_LISTS:
        return list(target) + [v for v in patch if v not in target]
    key = MERGE_KEYS.get(name)
    if key is None or not all(isinstance(i, dict) for i in patch + target):
        return copy.deepcopy(patch)
    result = [copy.deepcopy(i) for i in target]
    for item in patch:
        index = next((n for n, cur in enumerate(result) if cur.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise errors.bad_request(f'json patch: invalid path "{path}"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def decode_json_patch(patch: Any) -> list[dict[str, Any]]:
    """Reject a malformed JSON patch with 400 (``jsonpatch.DecodePatch``)."""
    if not isinstance(patch, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type "
                                 "jsonpatch.Patch")
    for op in patch:
        if not isinstance(op, dict) or op.get("op") not in {
                "add", "remove", "replace", "move", "copy", "test"}:
            kind = op.get("op") if isinstance(op, dict) else op
            raise errors.bad_request(f"Unexpected kind: {kind}")
        if "path" not in op:
            raise errors.bad_request(f"{op['op']} operation missing path")
    return patch


class PatchDoesNotApply(Exception):
    pass


def json_patch(document: Any, patch: list[dict[str, Any]]) -> Any:
    """Apply RFC 6902 ops; ``PatchDoesNotApply`` (-> 422) with evanphx/json-patch's text."""
    doc = copy.deepcopy(document)
    for op in patch:
        kind, path = op["op"], op["path"]
        if kind == "test":
            found, actual = _get(doc, _pointer(path))
            if not found or not _json_equal(actual, op.get("value")):
                raise PatchDoesNotApply(f"testing value {path} failed: test failed")
        elif kind == "add":
            doc = _add(doc, _pointer(path), copy.deepcopy(op.get("value")), kind)
        elif kind == "remove":
            doc = _remove(doc, _pointer(path), kind)[0]
        elif kind == "replace":
            parts = _pointer(path)
            found, _ = _get(doc, parts)
            if not found:
                raise PatchDoesNotApply(f"replace operation does not apply: doc is missing key: "
                                        f"{path}: missing value")
            doc = _remove(doc, parts, kind)[0]
            doc = _add(doc, parts, copy.deepcopy(op.get("value")), kind)
        elif kind in ("move", "copy"):
            source = op.get("from", "")
            found, value = _get(doc, _pointer(source))
            if not found:
                raise PatchDoesNotApply(f"{kind} operation does not apply: doc is missing from "
                                        f"path: {source}: missing value")
            if kind == "move":
                doc = _remove(doc, _pointer(source), kind)[0]
            doc = _add(doc, _pointer(path), copy.deepcopy(value), kind)
    return doc


def _json_equal(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _get(doc: Any, parts: list[str]) -> tuple[bool, Any]:
    node = doc
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _add(doc: Any, parts: list[str], value: Any, kind: str) -> Any:
    if not parts:
        return value
    found, parent = _get(doc, parts[:-1])
    last = parts[-1]
    where = "/" + "/".join(parts)
    if not found or not isinstance(parent, (dict, list)):
        raise PatchDoesNotApply(f"{kind} operation does not apply: doc is missing path: "
                                f'"{where}": missing value')
    if isinstance(parent, dict):
        parent[last] = value
    elif last == "-":
        parent.append(value)
    elif last.isdigit() and int(last) <= len(parent):
        parent.insert(int(last), value)
    else:
        raise PatchDoesNotApply(f"{kind} operation does not apply: doc is missing path: "
                                f'"{where}": missing value')
    return doc


def _remove(doc: Any, parts: list[str], kind: str) -> tuple[Any, Any]:
    found, parent = _get(doc, parts[:-1])
    last = parts[-1] if parts else ""
    where = "/" + "/".join(parts)
    if found and isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if found and isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise PatchDoesNotApply(f"{kind} operation does not apply: doc is missing path: "
                            f'"{where}": missing value')
