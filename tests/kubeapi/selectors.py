"""Server-side ``labelSelector`` and ``fieldSelector`` (apimachinery pkg/labels, pkg/fields).

A real apiserver filters lists and watches itself; a client that filters on its side still
receives (and pays for) every object it can see. Serving the selectors lets a test tell the
two apart. Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``,
``k``, ``!k`` (comma = AND). Field selectors: ``metadata.name`` and ``metadata.namespace``
(plus a kind's own, e.g. Events' ``involvedObject.*``) with ``=``, ``==`` and ``!=``; any
other field is refused with 400 as kube-apiserver does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from tests.kubeapi import errors

Matcher = Callable[[Mapping[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)\s*([^\s!=<>(),]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([^\s!=<>(),]+)\s*(==|=|!=|>|<)\s*([^\s,]*)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def label_matcher(selector: str) -> Matcher:
    """A predicate on an object's labels; 400 BadRequest for a malformed selector."""
    requirements: list[Callable[[Mapping[str, str]], bool]] = []
    for part in _split(selector):
        eq = _EQ.match(part)
        if eq and not re.match(r"^\s*\S+\s+(in|notin)\s*\(", part):
            key, op, value = eq.groups()
            requirements.append(_compare(key, op, value))
            continue
        match = _SET.match(part)
        if not match:
            raise errors.bad_request(f"unable to parse requirement: found '{part.strip()}', "
                                     "expected: in, notin, =, ==, !=, gt, lt")
        bang, key, op, values = match.groups()
        if op:
            if bang:
                raise errors.bad_request(f"unable to parse requirement: {part.strip()}")
            wanted = {v.strip() for v in values.split(",") if v.strip()}
            requirements.append(_in(key, wanted, op == "in"))
        else:
            requirements.append(_exists(key, not bang))
    return lambda obj: all(r((obj.get("metadata") or {}).get("labels") or {})
                           for r in requirements)


def _compare(key: str, op: str, value: str) -> Callable[[Mapping[str, str]], bool]:
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    try:
        bound = int(value)
    except ValueError:
        raise errors.bad_request(f"unable to parse requirement: for 'Gt', 'Lt' operators, the "
                                 f"value must be an integer: {value}") from None
    if op == ">":
        return lambda labels: key in labels and _int(labels[key]) is not None and \
            _int(labels[key]) > bound  # type: ignore[operator]
    return lambda labels: key in labels and _int(labels[key]) is not None and \
        _int(labels[key]) < bound  # type: ignore[operator]


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _in(key: str, values: set[str], inside: bool) -> Callable[[Mapping[str, str]], bool]:
    if inside:
        return lambda labels: key in labels and labels[key] in values
    return lambda labels: key not in labels or labels[key] not in values


def _exists(key: str, present: bool) -> Callable[[Mapping[str, str]], bool]:
    return lambda labels: (key in labels) == present


def _lookup(obj: Mapping[str, Any], dotted: str) -> Any:
    node: Any = obj
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def field_matcher(selector: str, supported: frozenset[str]) -> Matcher:
    """A predicate on the fields a kind supports; 400 for another field."""
    tests: list[Matcher] = []
    for part in _split(selector):
        match = re.match(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise errors.bad_request(f"invalid selector: '{selector}'; can't understand "
                                     f"'{part.strip()}'")
        name, op, value = match.groups()
        if name not in supported:
            raise errors.bad_request(f'field label not supported: {name}')

        def test(obj: Mapping[str, Any], name: str = name, op: str = op,
                 value: str = value) -> bool:
            actual = _lookup(obj, name)
            text = "" if actual is None else str(actual)
            return (text == value) if op != "!=" else (text != value)

        tests.append(test)
    return lambda obj: all(t(obj) for t in tests)


def name_from_field_selector(selector: str | None) -> str | None:
    """``metadata.name=x`` pins a list/watch to one name (RBAC resourceNames then apply)."""
    if not selector:
        return None
    for part in _split(selector):
        match = re.match(r"^\s*metadata\.name\s*(==|=)\s*(\S+)\s*$", part)
        if match:
            return match.group(2)
    return None
