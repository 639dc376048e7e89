"""``resource.Quantity`` as kube-apiserver parses and prints it (k8s.io/apimachinery
pkg/api/resource/quantity.go).

A built-in object's quantities (``resources.requests/limits`` ...) are decoded into a
``Quantity`` and written back in canonical form, so what a client reads back can differ from
what it sent: ``1`` -> ``"1"``, ``0.5`` -> ``"500m"``, ``1024Mi`` -> ``"1Gi"``, ``1000m`` ->
``"1"``. A controller comparing desired with actual sees "drift" on every pass unless it
compares canonical forms, which is what this module lets a test catch.

Rules: the suffix picks the format (binary ``Ki..Ei``, decimal SI ``n u m "" k M G T P E``,
or an exponent ``e3``); values below nano precision round up (away from zero); the canonical
form is the integer mantissa with the largest exponent (a multiple of 3, or of 10 in base 1024)
that keeps it integral; binary values under 1024 in magnitude, or with a fraction, print
decimal.
"""

from __future__ import annotations

import re
from fractions import Fraction

_FORMAT = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
FORMAT_ERROR = ("quantities must match the regular expression "
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
SUFFIX_ERROR = "unable to parse quantity's suffix"

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}
_NANO = Fraction(1, 10**9)


class QuantityError(ValueError):
    pass


def parse(text: str | int | float) -> tuple[Fraction, str]:
    """(exact value, format) with format ``BinarySI``, ``DecimalSI`` or ``DecimalExponent``."""
    if isinstance(text, bool):
        raise QuantityError(FORMAT_ERROR)
    raw = text if isinstance(text, str) else repr(text)
    match = _FORMAT.match(raw.strip() if isinstance(text, str) else raw)
    if not match or raw != raw.strip():
        raise QuantityError(FORMAT_ERROR)
    number, suffix = match.groups()
    digits = number.lstrip("+-")
    if digits.count(".") > 1 or not digits.replace(".", ""):
        raise QuantityError(FORMAT_ERROR)
    value = Fraction(digits)
    if number.startswith("-"):
        value = -value
    if suffix in _BINARY:
        value *= 1024 ** _BINARY[suffix]
        fmt = "BinarySI"
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
        fmt = "DecimalSI"
    elif re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        value *= Fraction(10) ** int(suffix[1:])
        fmt = "DecimalExponent"
    else:
        raise QuantityError(SUFFIX_ERROR)
    # Below nano precision rounds up, away from zero.
    scaled = value / _NANO
    if scaled.denominator != 1:
        whole = Fraction(-((-abs(scaled)) // 1))
        value = (whole if value > 0 else -whole) * _NANO
    return value, fmt


def canonical(text: str | int | float) -> str:
    """The string kube-apiserver stores and returns for a quantity."""
    value, fmt = parse(text)
    if value == 0:
        return "0"
    if fmt == "BinarySI" and (-1024 < value < 1024 or value.denominator != 1):
        fmt = "DecimalSI"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if fmt == "BinarySI":
        mantissa, power = int(magnitude), 0
        while mantissa % 1024 == 0 and power < 6:
            mantissa //= 1024
            power += 1
        return f"{sign}{mantissa}{_BINARY_SUFFIX.get(power, '')}"
    # Largest multiple of 3 keeping the mantissa integral (precision is nano at most).
    exponent: int = -9
    while (magnitude / Fraction(10) ** (exponent + 3)).denominator == 1:
        exponent += 3
    scaled = magnitude / Fraction(10) ** exponent
    assert scaled.denominator == 1
    if fmt == "DecimalSI" and exponent in _DECIMAL_SUFFIX:
        suffix = _DECIMAL_SUFFIX[exponent]
    else:
        suffix = f"e{exponent}" if exponent else ""
    return f"{sign}{scaled.numerator}{suffix}"


def value(text: str | int | float) -> Fraction:
    return parse(text)[0]
