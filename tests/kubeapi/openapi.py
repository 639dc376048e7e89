"""Decoding a built-in object against its OpenAPI schema (the JSON schemas that
kubernetes-validate ships, strict variant), the way kube-apiserver's JSON decoder does.

kube-apiserver decodes a built-in object into its Go type before anything else, so:

- a wrong JSON type (``containerPort: "8080"``), an unparsable quantity or time is a
  **400** ``BadRequest`` "<Kind> in version "v1" cannot be handled as a <Kind>: ...";
- an unknown field is dropped with a ``Warning`` header, or refused with 400
  ``strict decoding error: unknown field "spec.foo"`` under ``fieldValidation=Strict``;
- ``null``s and empty optional maps/lists vanish (Go zero values, ``omitempty``);
- quantities come back canonical (``tests.kubeapi.quantity``), ``MicroTime`` needs exactly
  six fractional digits (``2006-01-02T15:04:05.000000Z07:00``), ``Time`` is RFC 3339;
- a property the schema lists as ``required`` and that is missing is a 422 ``Required value``.

Schemas are loaded once per process; each definition is resolved lazily and cached.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import kubernetes_validate.utils as kv  # type: ignore[import-untyped]

from tests.kubeapi import errors, quantity
from tests.kubeapi.errors import FieldError

K8S_VERSION = "1.37.0"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_RFC3339_MICRO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
_MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
_ANY = {"io.k8s.apimachinery.pkg.runtime.RawExtension",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps"}


class DecodeError(Exception):
    """The body cannot be decoded into the Go type (-> 400)."""


@dataclass
class Decoded:
    unknown: list[str] = field(default_factory=list)
    required: list[FieldError] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def _definitions() -> dict[str, Any]:
    path = f"kubernetes-json-schema/v{K8S_VERSION}-local-strict/_definitions.json"
    defs: dict[str, Any] = kv.schema_contents(path, K8S_VERSION)["$defs"]
    return defs


@functools.cache
def definition_for(group: str, version: str, kind: str) -> str:
    short = group.split(".")[0] if group else "core"
    suffix = f".{version}.{kind}"
    names = [n for n in _definitions() if n.endswith(suffix)]
    preferred = [n for n in names if f".{short}{suffix}" in n]
    if not (preferred or names):
        raise KeyError(f"no OpenAPI schema for {group}/{version} {kind}")
    return (preferred or names)[0]


def _ref(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    if declared is None:
        return set()
    return set(declared) if isinstance(declared, list) else {declared}


def _go_type(schema: dict[str, Any], name: str | None) -> str:
    types = _types(schema) - {"null"}
    if name:
        return name.rsplit(".", 2)[-2] + "." + name.rsplit(".", 1)[-1]
    if "integer" in types:
        return schema.get("format") or "int64"
    if "number" in types:
        return "float64"
    if "boolean" in types:
        return "bool"
    if "array" in types:
        return "[]" + _go_type(schema.get("items") or {}, _ref(schema.get("items") or {}))
    if "object" in types:
        return "map[string]string"
    return "string"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {json.dumps(value)}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def decode(obj: dict[str, Any], group: str, version: str, kind: str) -> tuple[Any, Decoded]:
    """The object as the server stores it (a new dict), and what decoding noticed."""
    name = definition_for(group, version, kind)
    report = Decoded()
    value = _walk(obj, {"$ref": f"#/$defs/{name}"}, "", "", report)
    return value, report


def _walk(value: Any, schema: dict[str, Any], path: str, struct: str,
          report: Decoded) -> Any:
    """``struct`` is the innermost Go struct around ``value`` (for decode errors)."""
    struct_path = f"{struct}.{_strip_indices(path)}"
    name = _ref(schema)
    if name is not None:
        if name in _ANY:
            return value
        resolved = _definitions()[name]
        if name == _QUANTITY:
            return _quantity(value, path, struct_path)
        if name == _INT_OR_STRING:
            if not isinstance(value, (int, str)) or isinstance(value, bool):
                raise DecodeError(_unmarshal(value, struct_path, "intstr.IntOrString"))
            return value
        if name in (_TIME, _MICRO_TIME):
            return _time(value, name == _MICRO_TIME)
        schema = {**resolved, "_name": name}
    types = _types(schema) - {"null"}
    go = _go_type(schema, schema.get("_name") if "object" in types else None)
    if isinstance(value, dict):
        if types and "object" not in types:
            raise DecodeError(_unmarshal(value, struct_path, go))
        return _object(value, schema, path, report)
    if isinstance(value, list):
        if types and "array" not in types:
            raise DecodeError(_unmarshal(value, struct_path, go))
        items = schema.get("items") or {}
        return [_walk(v, items, f"{path}[{i}]", struct, report)
                for i, v in enumerate(value)]
    if isinstance(value, bool):
        if types and "boolean" not in types:
            raise DecodeError(_unmarshal(value, struct_path, go))
    elif isinstance(value, int):
        if types and not types & {"integer", "number"}:
            raise DecodeError(_unmarshal(value, struct_path, go))
        if "integer" in types and schema.get("format") == "int32" and \
                not -2**31 <= value < 2**31:
            raise DecodeError(_unmarshal(value, struct_path, "int32"))
    elif isinstance(value, float):
        if types and "number" not in types:
            raise DecodeError(_unmarshal(value, struct_path, go))
        if value.is_integer():
            return int(value)
    elif isinstance(value, str) and types and "string" not in types:
        raise DecodeError(_unmarshal(value, struct_path, go))
    return value


def _object(value: dict[str, Any], schema: dict[str, Any], path: str,
            report: Decoded) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    struct = schema.get("_name", "").rsplit(".", 1)[-1]
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub_path = f"{path}.{key}" if path else key
        if key in properties:
            sub = properties[key]
        elif isinstance(additional, dict):
            sub = additional
            sub_path = f"{path}[{key}]"
        elif not properties and additional is not False:
            out[key] = item
            continue
        else:
            report.unknown.append(sub_path)
            continue
        if item is None:
            continue
        decoded = _walk(item, sub, sub_path, struct, report)
        if decoded in ({}, []) and key not in (schema.get("required") or ()) and \
                (isinstance(decoded, list) or _is_map(sub)):
            continue  # omitempty map/slice
        out[key] = decoded
    for key in schema.get("required") or ():
        if key not in out and properties:
            report.required.append(errors.required(f"{path}.{key}" if path else key))
    return out


def _is_map(schema: dict[str, Any]) -> bool:
    return isinstance(schema.get("additionalProperties"), dict) and _ref(schema) is None


def _strip_indices(path: str) -> str:
    return re.sub(r"\[[^\]]*\]", "", path)


def _unmarshal(value: Any, struct_path: str, go_type: str) -> str:
    return (f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct_path} "
            f"of type {go_type}")


def _quantity(value: Any, path: str, struct_path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DecodeError(_unmarshal(value, struct_path, "resource.Quantity"))
    try:
        return quantity.canonical(value)
    except quantity.QuantityError as exc:
        raise DecodeError(str(exc)) from None


def _time(value: Any, micro: bool) -> Any:
    layout = "2006-01-02T15:04:05.000000Z07:00" if micro else "2006-01-02T15:04:05Z07:00"
    if not isinstance(value, str):
        raise DecodeError(f"json: cannot unmarshal {_json_kind(value)} into Go value of type "
                          "string")
    if not (_RFC3339_MICRO if micro else _RFC3339).match(value):
        raise DecodeError(f'parsing time "{value}" as "{layout}": cannot parse "{value}" as '
                          f'"{layout}"')
    return value
