"""Name, label and annotation rules (apimachinery pkg/util/validation and
pkg/api/validation/objectmeta.go), with kube-apiserver's messages.

Which name rule applies is the kind's: a Service name is a DNS-1035 label (it becomes a DNS
name), most objects need a DNS-1123 subdomain, custom resources too. Label keys are qualified
names (optional DNS subdomain prefix ``/`` name of at most 63), label values at most 63
characters of ``[A-Za-z0-9_.-]`` starting and ending alphanumeric.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tests.kubeapi import errors
from tests.kubeapi.errors import FieldError

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"

_DNS1123_LABEL = re.compile(f"^{DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL = re.compile(f"^{DNS1035_LABEL_FMT}$")
_QUALIFIED_NAME = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_LABEL_VALUE = re.compile(f"^{LABEL_VALUE_FMT}$")

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
TOTAL_ANNOTATION_SIZE = 256 * 1024


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def _regex_error(what: str, fmt: str, *examples: str) -> str:
    text = what
    if examples:
        text += " (e.g. " + ",  or ".join(f"'{e}'" for e in examples) + ", "
    else:
        text += " ("
    return text + f"regex used for validation is '{fmt}')"


def _check(value: str, maximum: int, pattern: re.Pattern[str], message: str, fmt: str,
           *examples: str) -> list[str]:
    out = [_max_len(maximum)] if len(value) > maximum else []
    if not pattern.match(value):
        out.append(_regex_error(message, fmt, *examples))
    return out


# (max length, pattern, message, regex shown, examples) of each DNS rule (IsDNS1123Label...).
_DNS_RULES: dict[str, tuple[int, re.Pattern[str], str, str, tuple[str, ...]]] = {
    "label": (LABEL_MAX, _DNS1123_LABEL,
              "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
              "'-', and must start and end with an alphanumeric character",
              DNS1123_LABEL_FMT, ("my-name", "123-abc")),
    "subdomain": (SUBDOMAIN_MAX, _DNS1123_SUBDOMAIN,
                  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                  "characters, '-' or '.', and must start and end with an alphanumeric character",
                  DNS1123_SUBDOMAIN_FMT, ("example.com",)),
    "1035": (LABEL_MAX, _DNS1035_LABEL,
             "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
             "with an alphabetic character, and end with an alphanumeric character",
             DNS1035_LABEL_FMT, ("my-name", "abc-123")),
}


def _dns(rule: str, value: str) -> list[str]:
    maximum, pattern, message, fmt, examples = _DNS_RULES[rule]
    return _check(value, maximum, pattern, message, fmt, *examples)


def dns1123_label(value: str) -> list[str]:
    return _dns("label", value)


def dns1123_subdomain(value: str) -> list[str]:
    return _dns("subdomain", value)


def dns1035_label(value: str) -> list[str]:
    return _dns("1035", value)


def qualified_name(value: str) -> list[str]:
    """IsQualifiedName: ``[prefix/]name``, prefix a DNS subdomain, name at most 63."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
        prefix = None
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part " + "must be non-empty"]
    else:
        return [_regex_error(
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character", QUALIFIED_NAME_FMT,
            "MyName", "my.name", "123-abc") + " with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"]
    out = []
    if prefix is not None:
        out += ["prefix part " + m for m in dns1123_subdomain(prefix)]
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > LABEL_MAX:
        out.append("name part " + _max_len(LABEL_MAX))
    if name and not _QUALIFIED_NAME.match(name):
        out.append("name part " + _regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character", QUALIFIED_NAME_FMT, "MyName", "my.name",
            "123-abc"))
    return out


def label_value(value: str) -> list[str]:
    return _check(value, LABEL_MAX, _LABEL_VALUE,
                  "a valid label must be an empty string or consist of alphanumeric characters, "
                  "'-', '_' or '.', and must start and end with an alphanumeric character",
                  LABEL_VALUE_FMT, "MyValue", "my_value", "12345")


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """ValidateLabels: every key a qualified name, every value a label value."""
    out: list[FieldError] = []
    if not isinstance(labels, Mapping):
        return out
    for key, value in labels.items():
        out += [errors.invalid(path, key, m) for m in qualified_name(str(key))]
        if not isinstance(value, str):
            continue
        out += [errors.invalid(path, value, m) for m in label_value(value)]
    return out


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    out: list[FieldError] = []
    if not isinstance(annotations, Mapping):
        return out
    total = 0
    for key, value in annotations.items():
        out += [errors.invalid(path, key, m) for m in qualified_name(str(key).lower())]
        total += len(str(key)) + len(str(value))
    if total > TOTAL_ANNOTATION_SIZE:
        out.append(errors.too_long(path, TOTAL_ANNOTATION_SIZE))
    return out


NAME_RULES = {
    "DNS1123Subdomain": dns1123_subdomain,
    "DNS1123Label": dns1123_label,
    "DNS1035Label": dns1035_label,
}


def validate_name(name: str, rule: str, path: str = "metadata.name",
                  prefix: bool = False) -> list[FieldError]:
    """The kind's name rule; ``prefix`` for generateName (a trailing '-' is fine)."""
    check = NAME_RULES[rule]
    # maskTrailingDash: a generateName may end in '-' (and only that is forgiven).
    candidate = name[:-2] + "a" if prefix and len(name) > 1 and name.endswith("-") else name
    return [errors.invalid(path, name, m) for m in check(candidate)]


def path_segment_name(name: str) -> list[str]:
    """ValidatePathSegmentName: names become URL path segments."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]
