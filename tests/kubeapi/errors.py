"""kube-apiserver's error shapes: ``metav1.Status`` bodies and ``field.Error`` messages.

Clients branch on these (kopf on the HTTP code, kubectl and client-go on ``reason``, people on
``message``), so they are built the way apimachinery builds them: ``field.Error.ErrorBody``
(value printed with Go's ``%v``/``%q``), ``errors.NewInvalid`` (``<Kind>.<group> "<name>" is
invalid: <field>: <body>``, several errors bracketed and de-duplicated), ``NewNotFound``,
``NewConflict``, ``NewForbidden`` and friends. One place, so every rule speaks alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# field.ErrorType -> its String() (apimachinery/pkg/util/validation/field/errors.go).
_TYPE_TEXT = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
# These print no bad value, whatever it is.
_NO_VALUE = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}
OMIT = object()  # field.omitValue: print the type only


def go_value(value: Any) -> str:
    """A bad value as ``field.Error`` prints it: strings quoted (``%q``), numbers and
    booleans bare (``%v``), null as ``"null"``, maps and lists in Go's ``%#v`` spirit."""
    if value is None:
        return '"null"'
    if hasattr(value, "go_repr"):
        return str(value.go_repr())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)}:{_go_inner(v)}" for k, v in value.items())
        return "map[string]interface {}{" + inner + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_inner(v) for v in value) + "}"
    return str(value)


def _go_inner(value: Any) -> str:
    if value is None:
        return "interface {}(nil)"
    return go_value(value)


def go_number(value: float | int) -> str:
    """Go's ``%v`` of a float64: integral values print without a fraction."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: the type (``FieldValueInvalid``...), the dotted path, the bad
    value and a detail; ``str()`` is the message kube-apiserver shows."""

    type: str
    field: str
    value: Any = OMIT
    detail: str = ""

    def body(self) -> str:
        text = _TYPE_TEXT[self.type]
        if self.type not in _NO_VALUE and self.value is not OMIT:
            text = f"{text}: {go_value(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, "", detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueTypeInvalid", path, value, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, "", detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value)


def not_supported(path: str, value: Any, allowed: list[str]) -> FieldError:
    detail = ("supported values: " + ", ".join(json.dumps(v) for v in allowed)) if allowed else ""
    return FieldError("FieldValueNotSupported", path, value, detail)


def too_long(path: str, maximum: int) -> FieldError:
    # kube 1.32+ wording (field.TooLong); older servers said "may not be longer than N".
    return FieldError("FieldValueTooLong", path, "", f"may not be more than {maximum} bytes")


def too_many(path: str, actual: int, maximum: int) -> FieldError:
    return FieldError("FieldValueTooMany", path, actual, f"must have at most {maximum} items")


def aggregate(errors: list[FieldError]) -> str:
    """``ErrorList.ToAggregate()``'s text: one message, or ``[a, b]``; duplicates once."""
    seen: list[str] = []
    for error in errors:
        text = str(error)
        if text not in seen:
            seen.append(text)
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


@dataclass
class APIError(Exception):
    """A request refused with a ``metav1.Status`` body."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": self.message,
                                "reason": self.reason}
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"


def qualified(group: str, name: str) -> str:
    """``schema.GroupResource``/``GroupKind``'s ``String()``: ``name.group`` or ``name``."""
    return f"{name}.{group}" if group else name


def _details(group: str, kind: str, name: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    out["kind"] = kind
    return out


def invalid_object(group: str, kind: str, name: str, errors: list[FieldError]) -> APIError:
    """422 ``Invalid`` (``errors.NewInvalid``), one cause per field error."""
    causes = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors]
    details = _details(group, kind, name)
    details["causes"] = causes
    message = f"{qualified(group, kind)} {json.dumps(name)} is invalid"
    if errors:
        message += ": " + aggregate(errors)
    return APIError(422, "Invalid", message, details)


def not_found(group: str, plural: str, name: str) -> APIError:
    return APIError(404, "NotFound", f"{qualified(group, plural)} {json.dumps(name)} not found",
                    _details(group, plural, name))


def already_exists(group: str, plural: str, name: str) -> APIError:
    return APIError(409, "AlreadyExists",
                    f"{qualified(group, plural)} {json.dumps(name)} already exists",
                    _details(group, plural, name))


def conflict(group: str, plural: str, name: str, why: str = "") -> APIError:
    why = why or ("the object has been modified; please apply your changes to the latest "
                  "version and try again")
    return APIError(409, "Conflict", f"Operation cannot be fulfilled on "
                    f"{qualified(group, plural)} {json.dumps(name)}: {why}",
                    _details(group, plural, name))


def forbidden_error(group: str, plural: str, name: str | None, why: str) -> APIError:
    """403 (``errors.NewForbidden``): ``<plural>.<group> "<name>" is forbidden: <why>``."""
    subject = qualified(group, plural)
    if name:
        subject += f" {json.dumps(name)}"
    return APIError(403, "Forbidden", f"{subject} is forbidden: {why}",
                    _details(group, plural, name))


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def expired(message: str) -> APIError:
    return APIError(410, "Expired", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(message: str) -> APIError:
    return APIError(415, "UnsupportedMediaType", message)


def unprocessable(message: str) -> APIError:
    """422 from ``errors.NewGenericServerResponse`` (a JSON patch that does not apply,
    e.g. a failed ``test`` op): no kind, the patch error as the only cause."""
    return APIError(422, "Invalid", "the server rejected our request due to an error in our "
                    "request", {"causes": [{"reason": "UnexpectedServerResponse",
                                            "message": message}]})
