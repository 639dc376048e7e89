"""Resource quantities as the Kubernetes API server writes them back (pure, no I/O).

The API server parses every quantity (``resource.ParseQuantity`` in apimachinery) and
serialises it in canonical form: ``1.5`` comes back as ``1500m``, ``1024Mi`` as ``1Gi``,
``cpu: 1`` (a number) as ``"1"``. A StatefulSet built from a pool's ``resources`` therefore
never reads back as written, and comparing the two as written sees drift on every pass.
``canonical`` gives the string the API server will store, so the operator builds its
manifests in that form and compares like with like.

It follows apimachinery's ``quantity.go`` (kube-apiserver 1.37) path by path, quirks
included, because the quirks are what gets stored:

* the fast path keeps a string that already looks canonical exactly as written: ``+1``,
  ``01``, ``5.``, ``1E3``, ``1e+3`` and ``1e0`` are stored as they are;
* a number with no digits is a zero (``Mi``, ``-``, ``.``, ``e3`` are stored as ``0``), except
  where the fast path does not apply and the slow path finds no digits (``Pi``, ``e-10``:
  refused);
* exponents are Go ``int32``s: one outside int32 is truncated (``1e4294967297`` is ``10``)
  and the scale arithmetic wraps; one outside int64 is refused;
* values finer than a nano are rounded up (away from zero); binary-SI values are capped at
  2^63-1; a decimal-SI value past ``E`` is printed with an exponent (``1000E`` -> ``1e21``,
  since kubernetes#140459; older API servers printed the mantissa alone);
* inputs on which kube-apiserver's parser does not return (it writes out 10^shift digits,
  for a shift beyond 2^20: ``1e-2147483000``) are not quantities here.

No value is ever materialised: numbers are kept as (mantissa, decimal exponent), so a
quantity such as ``1e2000000000`` in a pool's spec costs microseconds, not the event loop.
"""

from __future__ import annotations

import json

MAX_INT64 = 2**63 - 1
DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT = "DecimalSI", "BinarySI", "DecimalExponent"
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                     "P": 15, "E": 18}
_DECIMAL_BY_EXPONENT = {e: s for s, e in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_POWER = {e // 10: s for s, e in _BINARY_SUFFIXES.items()}
_DIGITS = "0123456789"
_SUFFIX_LETTERS = "eEinumkKMGTP"
_NANO = -9
#: inf.Dec's Round writes out 10^shift digits; past this shift it does not return.
_HANG_SHIFT = 1 << 20


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
        scale = _int32(scale - len(denom))
        if scale >= _NANO:
            shifted = num + denom
            digits = int(shifted)
            result = digits * mantissa
            if result <= MAX_INT64:
                if fmt == BINARY_SI:
                    if exponent % 10 == 0 and digits & 0x07 != 0:
                        return text  # kept as written
                elif _go_mod(scale, 3) == 0 and not shifted.endswith("000") \
                        and shifted[0] != "0":
                    return text  # kept as written
                return _format(result if positive else -result, scale, fmt)

    # The inf.Dec path: round up to a nano, cap binary-SI at 2^63-1.
    decimal = _decimal(value)
    if decimal is None:
        return None
    unscaled, inf_scale = decimal  # the value is unscaled * 10^-inf_scale
    if base == 10:
        inf_scale = _int32(inf_scale + _int32(-exponent))
    else:
        unscaled <<= exponent
    if unscaled != 0:
        shift = _int32(-_NANO - inf_scale)
        if shift != -(2**31):  # inf.Dec reads that one as no shift at all
            if abs(shift) > _HANG_SHIFT:
                return None  # kube-apiserver never answers: nothing is stored
            if shift < 0:  # finer than a nano: round away from zero
                unscaled, inf_scale = _round_up(unscaled, -shift), -_NANO
    if fmt == BINARY_SI:  # a binary value's scale is its fraction's digits, 0 to 9
        if abs(unscaled) > MAX_INT64 * 10**inf_scale:
            unscaled, inf_scale = (MAX_INT64 if unscaled > 0 else -MAX_INT64), 0
        elif 0 < abs(unscaled) < 10**inf_scale:
            fmt = DECIMAL_SI  # between -1 and 1: no binary form
    return _format(unscaled, _int32(-inf_scale), fmt)


def _format(mantissa: int, exponent: int, fmt: str) -> str:
    """CanonicalizeBytes of ``mantissa * 10^exponent``: no fractional digits, the largest
    suffix that loses nothing (the exponent is an int32, and its sums wrap as Go's do)."""
    if mantissa == 0:
        return "0"
    sign = "-" if mantissa < 0 else ""
    magnitude = abs(mantissa)
    if fmt == BINARY_SI:
        whole = _whole(magnitude, exponent)
        if whole is None or whole < 1024:
            fmt = DECIMAL_SI  # small or fractional values are shown in decimal
        else:
            amount, power = whole, 0
            while amount % 1024 == 0:
                amount, power = amount // 1024, power + 1
            return f"{sign}{amount}{_BINARY_BY_POWER.get(power, '')}"
    zeros = len(str(magnitude)) - len(str(magnitude).rstrip("0"))
    amount = magnitude // 10**zeros
    exponent = _int32(exponent + zeros)
    while _go_mod(exponent, 3) != 0:
        amount, exponent = amount * 10, _int32(exponent - 1)
    if fmt == DECIMAL_SI and exponent in _DECIMAL_BY_EXPONENT:
        return f"{sign}{amount}{_DECIMAL_BY_EXPONENT[exponent]}"
    return f"{sign}{amount}" + (f"e{exponent}" if exponent else "")


def _whole(magnitude: int, exponent: int) -> int | None:
    """``magnitude * 10^exponent`` if it is a whole number (binary-SI values are at most
    2^63-1, so this stays small), else None."""
    if exponent >= 0:
        return magnitude * 10**exponent if exponent <= 19 else None
    whole, rest = divmod(magnitude, 10**-exponent)
    return None if rest else whole


def _round_up(unscaled: int, places: int) -> int:
    """``unscaled / 10^places``, rounded away from zero."""
    magnitude = abs(unscaled)
    # Far below the unit, the smallest non-zero value (10^places is never computed).
    rounded = 1 if places > len(str(magnitude)) else -(-magnitude // 10**places)
    return rounded if unscaled > 0 else -rounded


def _int32(value: int) -> int:
    """Go's int32 conversion: two's complement wrap-around."""
    return (value + 2**31) % 2**32 - 2**31


def _go_mod(value: int, divisor: int) -> int:
    """Go's ``%``: the remainder takes the dividend's sign."""
    remainder = abs(value) % divisor
    return -remainder if value < 0 else remainder


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
    """(base, exponent, format) of a suffix; a decimal exponent is a Go int64 (else the
    suffix is refused) truncated to int32."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        literal = suffix[1:]
        digits = literal[1:] if literal[0] in "+-" else literal
        if not digits or not all(c in _DIGITS for c in digits):
            return None  # strconv.ParseInt refuses it
        exponent = int(literal)
        if not -(2**63) <= exponent <= MAX_INT64:
            return None
        return 10, _int32(exponent), DECIMAL_EXPONENT
    return None


def _decimal(value: str) -> tuple[int, int] | None:
    """inf.Dec.SetString of the number part: (unscaled, scale = digits after the point);
    None without a single digit."""
    negative = value.startswith("-")
    body = value.lstrip("+-")
    whole, _, fraction = body.partition(".")
    if not whole + fraction:
        return None
    unscaled = int(whole + fraction)
    return (-unscaled if negative else unscaled), len(fraction)


__all__ = ["canonical", "canonical_string"]
