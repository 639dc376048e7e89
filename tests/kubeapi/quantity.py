"""``resource.Quantity`` as kube-apiserver 1.37 parses and prints it (k8s.io/apimachinery
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
decimal; a decimal-SI value past ``E`` prints with an exponent (since kubernetes#140459).

The parser's quirks are stored, so they are reproduced (kubernetes' own tests record them as
known deviations, kubernetes#141166):

* when the number fits an int64 and already looks canonical (a scale that is a multiple of
  3, no ``000`` at its end, no leading zero), the string is stored *as written*: ``+1``,
  ``01``, ``5.``, ``1E3``, ``1e+3``, ``1e0``;
* a number without digits is zero (``Mi``, ``-``, ``.``, ``e3``), unless the int64 path does
  not take it (``Pi``, ``e-10``), which needs digits;
* the exponent is truncated to int32 (``1e4294967297`` is ``10``) and scales wrap; an
  exponent outside int64 is a suffix error;
* kube-apiserver does not return from some inputs (rounding ``1e-2147483000`` to a nano
  writes out 2^31 digits): refused here with a 400 instead of hanging.

A JSON number is read as Python's float or int and printed with ``repr``: a literal such as
``1e3`` (which kube-apiserver would keep as written) reaches this module as ``1000.0``.
"""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

FORMAT_ERROR = ("quantities must match the regular expression "
                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
SUFFIX_ERROR = "unable to parse quantity's suffix"
NUMERIC_ERROR = "unable to parse numeric part of quantity"
HANG_ERROR = ("kube-apiserver 1.37 does not return from parsing this quantity (it rounds it "
              "to a nano by writing out more than 2^20 digits)")

#: sign, leading zeros, numerator, "." and denominator, suffix (parseQuantityString).
_SHAPE = re.compile(r"([+-]?)(0*)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v // 10: k for k, v in _BINARY.items()}
_EXPONENT = re.compile(r"[eE]([+-]?[0-9]+)")
_INT64 = 2**63 - 1
_NANO = Decimal("1e-9")


class QuantityError(ValueError):
    pass


def _wrap(value: int) -> int:
    """A Go int32 conversion."""
    return (value + 2**31) % 2**32 - 2**31


def _context(digits: int) -> decimal.Context:
    """Exact arithmetic on numbers of about ``digits`` digits, any exponent."""
    return decimal.Context(prec=digits + 40, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                           rounding=decimal.ROUND_UP, traps=[decimal.InvalidOperation])


def parse(text: str | int | float) -> tuple[Decimal, str, str | None]:
    """(exact value, format, the string stored as written or None) with format
    ``BinarySI``, ``DecimalSI`` or ``DecimalExponent``."""
    if isinstance(text, bool):
        raise QuantityError(FORMAT_ERROR)
    raw = text.strip() if isinstance(text, str) else repr(text)
    if raw == "":
        raise QuantityError(FORMAT_ERROR)
    if raw == "0":
        return Decimal(0), "DecimalSI", raw
    shape = _SHAPE.fullmatch(raw)
    if shape is None:
        raise QuantityError(FORMAT_ERROR)
    sign, zeros, whole, fraction, suffix = shape.groups()
    fraction = fraction or ""
    numerator = whole or "0"
    if suffix in _DECIMAL:
        base, power, fmt = 10, _DECIMAL[suffix], "DecimalSI"
    elif suffix in _BINARY:
        base, power, fmt = 2, _BINARY[suffix], "BinarySI"
    elif (exponent := _EXPONENT.fullmatch(suffix)) and -2**63 <= int(exponent[1]) <= _INT64:
        base, power, fmt = 10, _wrap(int(exponent[1])), "DecimalExponent"
    else:
        raise QuantityError(SUFFIX_ERROR)
    context = _context(len(raw))

    # int64 arithmetic when the digits fit: no rounding, and a canonical-looking string
    # is kept as written.
    if base == 2:
        room = 15 - len(numerator) - power * 3 // 10 - 1 if not fraction else -1
        scale = 0 if not fraction else None
    else:
        room = 18 - len(numerator) - len(fraction)
        scale = power
    if room >= 0 and scale is not None:
        scale = _wrap(scale - len(fraction))
        digits = numerator + fraction
        amount = int(digits) * (2**power if base == 2 else 1)
        if scale >= -9 and amount <= _INT64:
            value = context.scaleb(Decimal(-amount if sign == "-" else amount), scale)
            if base == 2:
                kept = power % 10 == 0 and int(digits) % 8 != 0
            else:
                kept = scale % 3 == 0 and not digits.endswith("000") and digits[0] != "0"
            return value, fmt, raw if kept else None

    # Arbitrary precision: round up (away from zero) to a nano, cap binary at 2^63-1.
    if not zeros + whole + fraction:  # inf.Dec.SetString needs a digit
        raise QuantityError(NUMERIC_ERROR)
    value = Decimal(sign + (whole or "0") + "." + (fraction or "0"))
    if base == 10:
        scale = _wrap(len(fraction) + _wrap(-power))  # inf.Dec's scale: digits after the point
        value = context.scaleb(value, len(fraction) - scale)
    else:
        scale = len(fraction)
        value = context.multiply(value, Decimal(2**power))
    if value != 0:
        shift = _wrap(9 - scale)
        if shift != -2**31 and abs(shift) > 2**20:
            raise QuantityError(HANG_ERROR)
        if shift < 0 and shift != -2**31:
            value = value.quantize(_NANO, rounding=decimal.ROUND_UP, context=context)
    if base == 2 and value.copy_abs() > _INT64:
        value = Decimal(_INT64).copy_sign(value)
    if base == 2 and 0 < value.copy_abs() < 1:
        fmt = "DecimalSI"
    return value, fmt, None


def canonical(text: str | int | float) -> str:
    """The string kube-apiserver stores and returns for a quantity."""
    value, fmt, kept = parse(text)
    if kept is not None:
        return kept
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    if fmt == "BinarySI" and value.copy_abs() >= 1024 and value == value.to_integral_value():
        mantissa, power = int(value.copy_abs()), 0
        while mantissa % 1024 == 0:
            mantissa //= 1024
            power += 1
        return f"{sign}{mantissa}{_BINARY_SUFFIX.get(power, '')}"
    # The integer mantissa without trailing zeros; the exponent lowered to a multiple of 3
    # (an int32: Go's sums wrap).
    _, digit_tuple, exponent = value.copy_abs().normalize(_context(len(str(value)))).as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digit_tuple)))
    exponent = _wrap(exponent)
    while exponent % 3 != 0:
        mantissa, exponent = mantissa * 10, _wrap(exponent - 1)
    if fmt != "DecimalExponent" and exponent in _DECIMAL_SUFFIX:
        suffix = _DECIMAL_SUFFIX[exponent]
    else:
        suffix = f"e{exponent}" if exponent else ""
    return f"{sign}{mantissa}{suffix}"


def value(text: str | int | float) -> Decimal:
    """The exact value (comparable without materialising a huge exponent)."""
    return parse(text)[0]
