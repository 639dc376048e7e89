"""CRD structural schemas: pruning, null pruning, defaulting and OpenAPI validation, the way
apiextensions-apiserver applies them to a custom resource.

On the way in (create, update, patch; and on read, for objects stored before a default
existed) a custom resource is, in this order:

1. pruned: fields the schema does not declare are dropped (kept under
   ``x-kubernetes-preserve-unknown-fields``), ``metadata`` is cut down to ``ObjectMeta``;
   the dropped paths become ``Warning`` headers, or a 400 under ``fieldValidation=Strict``;
2. rid of ``null`` values the schema does not allow (non-``nullable``, no default);
3. defaulted: a property's ``default`` fills it when absent (deep-copied);
4. validated (after the kind's strategy, e.g. status isolation): types (``integer`` vs
   ``number``, ``x-kubernetes-int-or-string``, ``nullable``), ``format``, ``required``,
   ``enum``, bounds, lengths, item counts, ``pattern``, then ``x-kubernetes-list-type``
   set/map uniqueness. Messages are kube-openapi's (``spec.replicas in body should be greater
   than or equal to 0``) wrapped in ``field.Error``s, so a 422 names each field.

The schema is compiled once per CRD version into ``Node`` trees (regexes compiled, CEL rules
attached by ``tests.kubeapi.cel``); every request only walks the object.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.kubeapi import errors
from tests.kubeapi.errors import FieldError, go_number

MISSING: Any = object()

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})

_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FORMATS = {"date-time": _DATE_TIME, "date": _DATE}


@dataclass
class Node:
    """One compiled schema node."""

    type: str | None = None
    format: str | None = None
    nullable: bool = False
    default: Any = MISSING
    properties: dict[str, Node] = field(default_factory=dict)
    additional: Node | None = None
    items: Node | None = None
    preserve_unknown: bool = False
    int_or_string: bool = False
    embedded: bool = False
    required: tuple[str, ...] = ()
    enum: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: tuple[str, re.Pattern[str]] | None = None
    min_items: int | None = None
    max_items: int | None = None
    min_properties: int | None = None
    max_properties: int | None = None
    list_type: str | None = None
    map_keys: tuple[str, ...] = ()
    rules: list[Any] = field(default_factory=list)  # tests.kubeapi.cel.Rule
    rules_below: bool = False  # some node at or under this one has CEL rules

    def child(self, key: str) -> Node | None:
        node = self.properties.get(key)
        return node if node is not None else self.additional


def compile_schema(raw: dict[str, Any]) -> Node:
    """The structural schema of one ``openAPIV3Schema`` (``$ref``-free, as CRDs must be)."""
    node = Node(
        type=raw.get("type"), format=raw.get("format"), nullable=bool(raw.get("nullable")),
        default=copy.deepcopy(raw["default"]) if "default" in raw else MISSING,
        preserve_unknown=bool(raw.get("x-kubernetes-preserve-unknown-fields")),
        int_or_string=bool(raw.get("x-kubernetes-int-or-string")),
        embedded=bool(raw.get("x-kubernetes-embedded-resource")),
        required=tuple(raw.get("required") or ()), enum=raw.get("enum"),
        minimum=raw.get("minimum"), maximum=raw.get("maximum"),
        exclusive_minimum=bool(raw.get("exclusiveMinimum")),
        exclusive_maximum=bool(raw.get("exclusiveMaximum")), multiple_of=raw.get("multipleOf"),
        min_length=raw.get("minLength"), max_length=raw.get("maxLength"),
        min_items=raw.get("minItems"), max_items=raw.get("maxItems"),
        min_properties=raw.get("minProperties"), max_properties=raw.get("maxProperties"),
        list_type=raw.get("x-kubernetes-list-type"),
        map_keys=tuple(raw.get("x-kubernetes-list-map-keys") or ()),
    )
    if "pattern" in raw:
        # ECMA-262 in the schema; Go's RE2 in the apiserver; Python's re covers what CRDs use.
        node.pattern = (raw["pattern"], re.compile(raw["pattern"]))
    for name, sub in (raw.get("properties") or {}).items():
        node.properties[name] = compile_schema(sub)
    if isinstance(raw.get("additionalProperties"), dict):
        node.additional = compile_schema(raw["additionalProperties"])
    if isinstance(raw.get("items"), dict):
        node.items = compile_schema(raw["items"])
    return node


# -- pruning -----------------------------------------------------------------------------

def prune(obj: dict[str, Any], root: Node) -> list[str]:
    """Drop undeclared fields in place; the dropped paths (``spec.foo``) in order."""
    dropped: list[str] = []
    _prune_object(obj, root, "", dropped, is_root=True)
    return dropped


def _prune_object(obj: dict[str, Any], node: Node, path: str, dropped: list[str],
                  is_root: bool = False) -> None:
    for key in list(obj):
        sub_path = f"{path}.{key}" if path else key
        if (is_root or node.embedded) and key in ("apiVersion", "kind"):
            continue
        if (is_root or node.embedded) and key == "metadata":
            meta = obj[key]
            if isinstance(meta, dict):
                for meta_key in list(meta):
                    if meta_key not in OBJECT_META_FIELDS:
                        del meta[meta_key]
                        dropped.append(f"{sub_path}.{meta_key}")
            continue
        sub = node.properties.get(key)
        if sub is None:
            sub = node.additional
        if sub is None:
            if not node.preserve_unknown:
                del obj[key]
                dropped.append(sub_path)
            continue
        _prune_value(obj[key], sub, sub_path, dropped)


def _prune_value(value: Any, node: Node, path: str, dropped: list[str]) -> None:
    if isinstance(value, dict):
        _prune_object(value, node, path, dropped)
    elif isinstance(value, list) and node.items is not None:
        for index, item in enumerate(value):
            _prune_value(item, node.items, f"{path}[{index}]", dropped)


# -- nulls and defaults ------------------------------------------------------------------

def prune_nulls(value: Any, node: Node | None) -> None:
    """PruneNonNullableNullsWithoutDefaults: a ``null`` the schema neither allows nor
    defaults is dropped (before defaulting)."""
    if node is None:
        return
    if isinstance(value, dict):
        for key in list(value):
            sub = node.child(key)
            if value[key] is None and sub is not None and not sub.nullable \
                    and sub.default is MISSING:
                del value[key]
            else:
                prune_nulls(value[key], sub)
    elif isinstance(value, list):
        for item in value:
            prune_nulls(item, node.items)


def apply_defaults(value: Any, node: Node | None) -> None:
    """Fill absent (or non-nullable ``null``) properties with their defaults, recursively."""
    if node is None:
        return
    if isinstance(value, dict):
        for key, sub in node.properties.items():
            if sub.default is not MISSING and (
                    key not in value or (value[key] is None and not sub.nullable)):
                value[key] = copy.deepcopy(sub.default)
        if node.additional is not None and node.additional.default is not MISSING:
            for key in value:
                if value[key] is None and not node.additional.nullable:
                    value[key] = copy.deepcopy(node.additional.default)
        for key, item in value.items():
            if key == "metadata" and node.properties.get("metadata") is None:
                continue
            apply_defaults(item, node.child(key))
    elif isinstance(value, list):
        for item in value:
            apply_defaults(item, node.items)


def has_defaults(node: Node) -> bool:
    if node.default is not MISSING:
        return True
    children = list(node.properties.values()) + [n for n in (node.additional, node.items) if n]
    return any(has_defaults(c) for c in children)


# -- validation --------------------------------------------------------------------------

def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def validate(obj: dict[str, Any], root: Node) -> list[FieldError]:
    """kube-openapi's schema validation plus list-type uniqueness, as field errors."""
    out: list[FieldError] = []
    _validate(obj, root, "", out, is_root=True)
    return out


def _type_ok(value: Any, node: Node) -> bool:
    if value is None:
        return node.nullable or (node.type is None and not node.int_or_string)
    if node.int_or_string:
        return json_type(value) in ("integer", "string")
    if node.type is None:
        return True
    actual = json_type(value)
    return actual == node.type or (node.type == "number" and actual == "integer")


def _validate_names(meta: Any, node: Node | None, path: str, out: list[FieldError]) -> None:
    """Of ``metadata``, a CRD's schema may restrict ``name`` and ``generateName`` only, and
    kube-apiserver enforces those (the rest is ObjectMeta's own validation)."""
    if node is None or not isinstance(meta, dict):
        return
    for key in ("name", "generateName"):
        sub = node.properties.get(key)
        if sub is not None and key in meta:
            _validate(meta[key], sub, f"{path}.{key}", out)


def _validate(value: Any, node: Node, path: str, out: list[FieldError],
              is_root: bool = False) -> None:
    where = path or "<nil>"
    if not _type_ok(value, node):
        expected = "integer,string" if node.int_or_string else (node.type or "")
        actual = json_type(value)
        out.append(errors.type_invalid(where, actual,
                                       f"{path} in body must be of type {expected}: "
                                       f'"{actual}"'))
        return
    if value is None:
        return
    if node.enum is not None and value not in node.enum:
        allowed = [v if isinstance(v, str) else _json(v) for v in node.enum]
        out.append(errors.not_supported(where, value, allowed))
    if isinstance(value, str):
        _validate_string(value, node, path, out)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _validate_number(value, node, path, out)
    elif isinstance(value, list):
        _validate_array(value, node, path, out)
    elif isinstance(value, dict):
        _validate_object(value, node, path, out, is_root)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _validate_string(value: str, node: Node, path: str, out: list[FieldError]) -> None:
    if node.max_length is not None and len(value) > node.max_length:
        out.append(errors.too_long(path, node.max_length))
    if node.min_length is not None and len(value) < node.min_length:
        out.append(errors.invalid(path, value, f"{path} in body should be at least "
                                               f"{node.min_length} chars long"))
    if node.pattern is not None and not node.pattern[1].search(value):
        out.append(errors.invalid(path, value,
                                  f"{path} in body should match '{node.pattern[0]}'"))
    checker = _FORMATS.get(node.format or "")
    if checker is not None and not checker.match(value):
        out.append(errors.type_invalid(path, value, f"{path} in body must be of type "
                                                    f'{node.format}: "{value}"'))


def _validate_number(value: float, node: Node, path: str, out: list[FieldError]) -> None:
    shown = int(value) if isinstance(value, float) and value.is_integer() else value
    if node.minimum is not None:
        low = go_number(node.minimum)
        if node.exclusive_minimum and value <= node.minimum:
            out.append(errors.invalid(path, shown, f"{path} in body should be greater than "
                                                   f"{low}"))
        elif value < node.minimum:
            out.append(errors.invalid(path, shown, f"{path} in body should be greater than or "
                                                   f"equal to {low}"))
    if node.maximum is not None:
        high = go_number(node.maximum)
        if node.exclusive_maximum and value >= node.maximum:
            out.append(errors.invalid(path, shown, f"{path} in body should be less than "
                                                   f"{high}"))
        elif value > node.maximum:
            out.append(errors.invalid(path, shown, f"{path} in body should be less than or "
                                                   f"equal to {high}"))
    if node.multiple_of and (value / node.multiple_of) % 1 != 0:
        out.append(errors.invalid(path, shown, f"{path} in body should be a multiple of "
                                               f"{go_number(node.multiple_of)}"))


def _validate_array(value: list[Any], node: Node, path: str, out: list[FieldError]) -> None:
    if node.max_items is not None and len(value) > node.max_items:
        out.append(errors.too_many(path, len(value), node.max_items))
    if node.min_items is not None and len(value) < node.min_items:
        out.append(errors.invalid(path, len(value), f"{path} in body should have at least "
                                                    f"{node.min_items} items"))
    if node.items is not None:
        for index, item in enumerate(value):
            _validate(item, node.items, f"{path}[{index}]", out)
    if node.list_type == "set":
        seen: list[str] = []
        for index, item in enumerate(value):
            key = _json(item)
            if key in seen:
                out.append(errors.duplicate(f"{path}[{index}]", item))
            seen.append(key)
    elif node.list_type == "map":
        seen_keys: list[str] = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key_values = {k: item.get(k) for k in node.map_keys if k in item}
            key = _json(key_values)
            if key in seen_keys:
                out.append(errors.duplicate(f"{path}[{index}]", key_values))
            seen_keys.append(key)


def _validate_object(value: dict[str, Any], node: Node, path: str, out: list[FieldError],
                     is_root: bool) -> None:
    prefix = f"{path}." if path else ""
    for name in node.required:
        if name not in value:
            out.append(errors.required(prefix + name))
    if node.max_properties is not None and len(value) > node.max_properties:
        out.append(errors.too_many(path, len(value), node.max_properties))
    if node.min_properties is not None and len(value) < node.min_properties:
        out.append(errors.invalid(path, len(value), f"{path} in body should have at least "
                                                    f"{node.min_properties} properties"))
    for key, item in value.items():
        if (is_root or node.embedded) and key == "metadata":
            _validate_names(item, node.properties.get("metadata"), prefix + key, out)
            continue
        sub = node.child(key)
        if sub is not None:
            _validate(item, sub, prefix + key, out)
