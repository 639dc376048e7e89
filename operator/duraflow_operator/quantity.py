"""Resource quantities as the Kubernetes API server writes them back (pure, no I/O).

The API server parses every quantity (``resource.ParseQuantity`` in apimachinery) and
serialises it in canonical form: ``1.5`` comes back as ``1500m``, ``1024Mi`` as ``1Gi``,
``cpu: 1`` (a number) as ``"1"``. A StatefulSet built from a pool's ``resources`` therefore
never reads back as written, and comparing the two as written sees drift on every pass.
``canonical`` gives the string the API server will store, so the operator builds its
manifests in that form and compares like with like.

It follows apimachinery's ``quantity.go`` rule by rule, quirks included: the fast path keeps
a string that already looks canonical exactly as written (so ``+1`` and ``01`` stay as they
are), values finer than a nano are rounded up (away from zero), binary-SI values are capped
at 2^63-1, and a decimal-SI exponent past ``E`` gets no suffix (the Go code finds none).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

NANO = 10**9
MAX_INT64 = 2**63 - 1
DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT = "DecimalSI", "BinarySI", "DecimalExponent"
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_POWER = {e // 10: s for s, e in _BINARY_SUFFIXES.items()}
_DIGITS = "0123456789"
_SUFFIX_LETTERS = "eEinumkKMGTP"


def canonical(value: object) -> object:
    """What the API server stores for the quantity ``value`` (a string, or a JSON number);
    anything that is not a quantity is returned unchanged (the API server refuses it)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        text = json.dumps(value)
    elif isinstance(value, str):
        text = value.strip()  # UnmarshalJSON trims whitespace before parsing
    else:
        return value
    result = canonical_string(text)
    return value if result is None else result


def canonical_string(text: str) -> str | None:
    """ParseQuantity + String(); None when ``text`` is not a quantity."""
    if text == "":
        return None
    if text == "0":
        return "0"
    scanned = _scan(text)
    if scanned is None:
        return None
    positive, value, num, denom, suffix = scanned
    interpreted = _interpret(suffix)
    if interpreted is None:
        return None
    base, exponent, fmt = interpreted

    # The int64 fast path (exact, no rounding needed).
    if fmt == BINARY_SI:
        scale, mantissa = 0, 1
        if exponent >= 0 and not denom:
            mantissa = 1 << exponent
            precision = 15 - len(num) - (exponent * 3 // 10) - 1
        else:
            precision = -1
    else:
        scale, mantissa = exponent, 1
        precision = 18 - (len(num) + len(denom))
    if precision >= 0:
        scale -= len(denom)
        if scale >= -9:
            shifted = num + denom
            digits = int(shifted)
            result = digits * mantissa
            if result <= MAX_INT64:
                if fmt == BINARY_SI:
                    if exponent % 10 == 0 and digits & 0x07 != 0:
                        return text  # kept as written
                elif scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0":
                    return text  # kept as written
                nanos = result * 10 ** (scale + 9)
                return _format(nanos if positive else -nanos, fmt)

    # The arbitrary-precision path: round up to a nano, cap binary-SI at 2^63-1.
    amount = _decimal(value)
    if amount is None:
        return None
    amount *= Fraction(base) ** exponent
    nanos = math.ceil(abs(amount) * NANO)  # rounded up, away from zero
    if fmt == BINARY_SI and nanos > MAX_INT64 * NANO:
        nanos = MAX_INT64 * NANO
    return _format(nanos if amount >= 0 else -nanos, fmt)


def _format(nanos: int, fmt: str) -> str:
    """CanonicalizeBytes: no fractional digits, the largest suffix that loses nothing."""
    if nanos == 0:
        return "0"
    sign = "-" if nanos < 0 else ""
    magnitude = abs(nanos)
    if fmt == BINARY_SI and (magnitude < 1024 * NANO or magnitude % NANO):
        fmt = DECIMAL_SI  # small or fractional values are shown in decimal
    if fmt == BINARY_SI:
        amount, power = magnitude // NANO, 0
        while amount >= 1024 and amount % 1024 == 0:
            amount, power = amount // 1024, power + 1
        return f"{sign}{amount}{_BINARY_BY_POWER.get(power, '')}"
    amount, exponent = magnitude, -9
    while amount >= 10 and amount % 10 == 0:
        amount, exponent = amount // 10, exponent + 1
    while exponent % 3:
        amount, exponent = amount * 10, exponent - 1
    if fmt == DECIMAL_EXPONENT:
        return f"{sign}{amount}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{amount}{_DECIMAL_BY_EXPONENT.get(exponent, '')}"


def _scan(text: str) -> tuple[bool, str, str, str, str] | None:
    """parseQuantityString: (positive, value, numerator, denominator, suffix)."""
    positive, pos, end = True, 0, len(text)
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while True:  # leading zeros
        if pos >= end:
            return positive, "0", "0", "", ""
        if text[pos] != "0":
            break
        pos += 1
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, text, num, "", ""
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value, suffix_start = text[:pos], pos
    while pos < end and text[pos] in _SUFFIX_LETTERS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        return None  # something after the suffix's digits
    return positive, value, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str] | None:
    """(base, exponent, format) of a suffix."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:].lstrip("+-")
        if not digits or len(suffix) - len(digits) > 2 or not all(c in _DIGITS for c in digits):
            return None
        exponent = int(suffix[1:])
        if abs(exponent) > 2**31 - 1:
            return None  # the Go code truncates to int32; no such quantity is meaningful
        return 10, exponent, DECIMAL_EXPONENT
    return None


def _decimal(value: str) -> Fraction | None:
    """inf.Dec.SetString of the number part (sign, digits, optional fraction)."""
    sign = -1 if value.startswith("-") else 1
    body = value.lstrip("+-")
    whole, _, fraction = body.partition(".")
    if not (whole + fraction) or not all(c in _DIGITS for c in whole + fraction):
        return None
    return sign * Fraction(int(whole or "0") * 10 ** len(fraction) + int(fraction or "0"),
                           10 ** len(fraction))


__all__ = ["canonical", "canonical_string"]
