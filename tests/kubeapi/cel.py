"""``x-kubernetes-validations``: CEL rules on a CRD's schema, evaluated with cel-python.

Each rule is compiled once, when the CRD is installed (a rule that does not compile makes
the CRD unusable, as kube-apiserver refuses such a CRD). On every write each rule runs with
``self`` bound to the value at its node and, for a *transition rule* (one that mentions
``oldSelf``), ``oldSelf`` bound to the value at the same place in the stored object. As in
kube-apiserver:

- transition rules are skipped on create, and where the old value cannot be correlated
  (list items are correlated only in ``x-kubernetes-list-type: map`` lists, by key);
- values are typed by the schema: ``format: date-time`` strings are timestamps, ``number``s
  doubles; at the root, ``self.metadata`` has only ``name`` and ``generateName``;
- a failed rule is a ``field.Error`` at the node (plus ``fieldPath``) with the rule's
  ``message``, else its ``messageExpression``'s result, else ``failed rule: <rule>``; its
  ``reason`` picks the error type (``FieldValueForbidden`` prints ``Forbidden: ...``);
- an evaluation error (``no such key``) is reported as ``<error> evaluating rule: <rule>``;
- rules are not run when the schema validation found a type or enum error (the request then
  also gets "some validation rules were not checked because the object was invalid...").

The Kubernetes CEL libraries are partly provided (the string extensions, ``lists`` and
``regex``); cost budgets, ratcheting and the URL/IP/quantity/semver libraries are not.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from tests.kubeapi import errors
from tests.kubeapi.errors import FieldError
from tests.kubeapi.schema import Node

_OLD_SELF = re.compile(r"\boldSelf\b")
_REASONS = {"FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate",
            "FieldValueInvalid"}


class RuleCompileError(ValueError):
    pass


# -- the Kubernetes CEL library (the part CRDs commonly use) -----------------------------

def _s(value: Any) -> Any:
    return celtypes.StringType(value)


def _index_of(target: Any, needle: Any, start: Any = None) -> Any:
    if isinstance(target, str):
        begin = int(start) if start is not None else 0
        return celtypes.IntType(target.find(str(needle), begin))
    items = list(target)
    return celtypes.IntType(items.index(needle) if needle in items else -1)


def _last_index_of(target: Any, needle: Any) -> Any:
    if isinstance(target, str):
        return celtypes.IntType(target.rfind(str(needle)))
    items = list(target)
    return celtypes.IntType(len(items) - 1 - items[::-1].index(needle) if needle in items
                            else -1)


def _split(text: Any, sep: Any, limit: Any = None) -> Any:
    parts = str(text).split(str(sep)) if limit is None or int(limit) < 0 else \
        str(text).split(str(sep), max(int(limit) - 1, 0))
    return celtypes.ListType([_s(p) for p in parts])


def _substring(text: Any, start: Any, end: Any = None) -> Any:
    return _s(str(text)[int(start):] if end is None else str(text)[int(start):int(end)])


def _join(items: Any, sep: Any = "") -> Any:
    return _s(str(sep).join(str(i) for i in items))


def _is_sorted(items: Any) -> Any:
    values = list(items)
    return celtypes.BoolType(all(a <= b for a, b in itertools.pairwise(values)))


LIBRARY: dict[str, Callable[..., Any]] = {
    "charAt": lambda s, i: _s(str(s)[int(i)] if int(i) < len(str(s)) else ""),
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "lowerAscii": lambda s: _s(str(s).lower()),
    "upperAscii": lambda s: _s(str(s).upper()),
    "replace": lambda s, a, b, n=None: _s(str(s).replace(str(a), str(b), -1 if n is None
                                                           else int(n))),
    "split": _split,
    "substring": _substring,
    "trim": lambda s: _s(str(s).strip()),
    "join": _join,
    "isSorted": _is_sorted,
    "sum": lambda items: sum(items, celtypes.IntType(0)) if all(
        isinstance(i, celtypes.IntType) for i in items) else sum(items),
    "min": lambda items: min(items),
    "max": lambda items: max(items),
    "find": lambda s, rx: _s(m.group(0) if (m := re.search(str(rx), str(s))) else ""),
    "findAll": lambda s, rx, n=None: celtypes.ListType(
        [_s(x) for x in re.findall(str(rx), str(s))][: None if n is None else int(n)]),
}


# -- rules -------------------------------------------------------------------------------

@dataclass
class Rule:
    rule: str
    message: str
    message_expression: str
    reason: str
    field_path: str
    transition: bool
    optional_old_self: bool
    program: Any
    message_program: Any

    def error_string(self) -> str:
        return self.message.strip() if self.message else self.rule.strip()

    def default_message(self) -> str:
        return self.message.strip() if self.message else f"failed rule: {self.rule.strip()}"


_ENV = celpy.Environment()


def _compile(text: str) -> Any:
    try:
        return _ENV.program(_ENV.compile(text), functions=LIBRARY)
    except CELParseError as exc:
        raise RuleCompileError(f"compilation failed: {exc}") from exc


def compile_rule(raw: dict[str, Any]) -> Rule:
    text = raw["rule"]
    message_expression = raw.get("messageExpression", "")
    reason = raw.get("reason", "FieldValueInvalid")
    if reason not in _REASONS:
        raise RuleCompileError(f"reason: Unsupported value: {reason!r}")
    return Rule(
        rule=text, message=raw.get("message", ""), message_expression=message_expression,
        reason=reason, field_path=raw.get("fieldPath", ""),
        transition=bool(_OLD_SELF.search(text)),
        optional_old_self=bool(raw.get("optionalOldSelf")),
        program=_compile(text),
        message_program=_compile(message_expression) if message_expression else None,
    )


def attach_rules(node: Node, raw: dict[str, Any]) -> bool:
    """Compile the rules of ``raw`` onto the matching ``node`` tree; True if any."""
    node.rules = [compile_rule(r) for r in raw.get("x-kubernetes-validations") or ()]
    below = bool(node.rules)
    for name, sub in (raw.get("properties") or {}).items():
        below |= attach_rules(node.properties[name], sub)
    if node.additional is not None and isinstance(raw.get("additionalProperties"), dict):
        below |= attach_rules(node.additional, raw["additionalProperties"])
    if node.items is not None and isinstance(raw.get("items"), dict):
        below |= attach_rules(node.items, raw["items"])
    node.rules_below = below
    return below


# -- values ------------------------------------------------------------------------------

def to_cel(value: Any, node: Node | None, is_root: bool = False) -> Any:
    """A JSON value as CEL sees it under ``node`` (schema-typed)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        if node is not None and node.type == "number":
            return celtypes.DoubleType(value)
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        if node is not None and node.format == "date-time":
            try:
                return celtypes.TimestampType(_timestamp(value))
            except ValueError:
                return celtypes.StringType(value)
        return celtypes.StringType(value)
    if isinstance(value, list):
        items = node.items if node is not None else None
        return celtypes.ListType([to_cel(v, items) for v in value])
    out = {}
    for key, item in value.items():
        if is_root and key == "metadata" and isinstance(item, dict):
            item = {k: v for k, v in item.items() if k in ("name", "generateName")}
            out[celtypes.StringType(key)] = to_cel(item, None)
            continue
        out[celtypes.StringType(key)] = to_cel(item, node.child(key) if node else None)
    return celtypes.MapType(out)


def _timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))


# -- evaluation --------------------------------------------------------------------------

def validate(new: Any, old: Any, root: Node) -> list[FieldError]:
    """Every rule under ``root`` on ``new`` (``old`` is the stored object, None on create)."""
    out: list[FieldError] = []
    if root.rules_below:
        _walk(new, old, root, "", out, is_root=True)
    return out


def _walk(new: Any, old: Any, node: Node, path: str, out: list[FieldError],
          is_root: bool = False) -> None:
    if node.rules:
        _run(new, old, node, path, out, is_root)
    if isinstance(new, dict):
        prefix = f"{path}." if path else ""
        for key, item in new.items():
            if is_root and key == "metadata":
                continue
            sub = node.properties.get(key)
            if sub is not None:
                if sub.rules_below:
                    old_item = old.get(key) if isinstance(old, dict) else None
                    _walk(item, old_item, sub, prefix + key, out)
            elif node.additional is not None and node.additional.rules_below:
                old_item = old.get(key) if isinstance(old, dict) else None
                _walk(item, old_item, node.additional, f"{path}[{key}]", out)
    elif isinstance(new, list) and node.items is not None and node.items.rules_below:
        for index, item in enumerate(new):
            _walk(item, _correlate(item, old, node), node.items, f"{path}[{index}]", out)


def _correlate(item: Any, old: Any, node: Node) -> Any:
    """The old list item that ``item`` continues: only map lists correlate (by key)."""
    if node.list_type != "map" or not isinstance(old, list) or not isinstance(item, dict):
        return None
    key = {k: item.get(k) for k in node.map_keys}
    for candidate in old:
        if isinstance(candidate, dict) and {k: candidate.get(k) for k in node.map_keys} == key:
            return candidate
    return None


def _error_text(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    missing = re.match(r"no such member in mapping: '(.*)'", text)
    if missing:
        return f"no such key: {missing.group(1)}"
    return text


# Rules are pure functions of (self, oldSelf): their outcome is memoised per node, path and
# values, since cel-python's tree walking (about 1 ms a rule) would dominate a busy test (a
# status write re-evaluates the spec's rules on an unchanged spec).
_MEMO: collections.OrderedDict[tuple[int, str, str, str], list[FieldError]] = \
    collections.OrderedDict()
_MEMO_SIZE = 20_000


def _run(new: Any, old: Any, node: Node, path: str, out: list[FieldError],
         is_root: bool) -> None:
    key = (id(node), path, json.dumps(new, sort_keys=True), json.dumps(old, sort_keys=True))
    found = _MEMO.get(key)
    if found is None:
        found = []
        _evaluate(new, old, node, path, found, is_root)
        _MEMO[key] = found
        if len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    out.extend(found)


def _evaluate(new: Any, old: Any, node: Node, path: str, out: list[FieldError],
              is_root: bool) -> None:
    activation: dict[str, Any] | None = None
    type_name = node.type or ""
    where = path or "<nil>"
    for rule in node.rules:
        if rule.transition and old is None and not rule.optional_old_self:
            continue
        if activation is None:
            activation = {"self": to_cel(new, node, is_root)}
            activation["oldSelf"] = to_cel(old, node, is_root) if old is not None else None
        try:
            result = rule.program.evaluate(activation)
        except CELEvalError as exc:
            out.append(errors.invalid(where, type_name,
                                      f"{_error_text(exc)} evaluating rule: "
                                      f"{rule.error_string()}"))
            continue
        if isinstance(result, celtypes.BoolType) and bool(result):
            continue
        field = where
        if rule.field_path:
            field = (path + rule.field_path) if rule.field_path.startswith(".") else \
                f"{path}.{rule.field_path}"
        message = rule.default_message()
        if rule.message_program is not None:
            try:
                produced = rule.message_program.evaluate(activation)
                if isinstance(produced, str) and produced.strip():
                    message = str(produced)
            except CELEvalError:
                pass
        out.append(_for_reason(rule.reason, field, type_name, message))


def _for_reason(reason: str, field: str, value: Any, message: str) -> FieldError:
    if reason == "FieldValueForbidden":
        return errors.forbidden(field, message)
    if reason == "FieldValueRequired":
        return errors.required(field, message)
    if reason == "FieldValueDuplicate":
        return errors.duplicate(field, value)
    return errors.invalid(field, value, message)


def iter_rules(node: Node) -> Iterator[Rule]:
    yield from node.rules
    for child in [*node.properties.values(), node.additional, node.items]:
        if child is not None:
            yield from iter_rules(child)
