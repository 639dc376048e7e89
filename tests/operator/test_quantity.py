"""Quantities in the API server's canonical form (apimachinery's resource.Quantity): what a
StatefulSet's resources read back as, so the operator compares like with like."""

from __future__ import annotations

import pytest
from duraflow_operator.quantity import canonical, canonical_string

CANONICAL = [
    # zero, however written
    ("0", "0"), ("0.0", "0"), ("-0", "0"), ("0Mi", "0"), ("0m", "0"), ("00", "0"),
    # decimal SI: no fractional digits, the largest suffix that loses nothing
    ("1", "1"), ("1000m", "1"), ("0.5", "500m"), (".5", "500m"), ("1.5", "1500m"),
    ("500m", "500m"), ("100m", "100m"), ("0.1", "100m"), ("1000", "1k"), ("1500", "1500"),
    ("10", "10"), ("100", "100"), ("1000000", "1M"), ("2500000", "2500k"), ("1.5G", "1500M"),
    ("1k", "1k"), ("12M", "12M"), ("1T", "1T"), ("1E", "1E"), ("-1.5", "-1500m"),
    ("0.1m", "100u"), ("1u", "1u"), ("100n", "100n"), ("0.00001m", "10n"),
    # finer than a nano: rounded up, away from zero
    ("0.0000000001", "1n"), ("1.0000000001", "1000000001n"), ("-0.0000000001", "-1n"),
    # binary SI: kept binary while the value is a whole number of at least 1024
    ("1Ki", "1Ki"), ("1Mi", "1Mi"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"),
    ("1.5Gi", "1536Mi"), ("0.5Gi", "512Mi"), ("2048Ki", "2Mi"), ("1024Ki", "1Mi"),
    ("1.5Ki", "1536"), ("0.5Ki", "512"), ("0.5Mi", "512Ki"), ("1Ei", "1Ei"),
    ("0.1Ki", "102400m"), ("1025Ki", "1025Ki"), ("3072Ki", "3Mi"), ("-1024Mi", "-1Gi"),
    # decimal exponent: kept as an exponent, a multiple of 3
    ("1e3", "1e3"), ("10e3", "10e3"), ("1e6", "1e6"), ("1000e3", "1e6"), ("1.5e3", "1500"),
    ("1e-3", "1e-3"), ("1e-7", "100e-9"), ("12e6", "12e6"), ("1e2", "100"), ("1e4", "10e3"),
    # a string that already looks canonical is kept exactly as written (the fast path's cache)
    ("+1", "+1"), ("01", "01"), ("+1Gi", "+1Gi"), ("1E3", "1E3"), ("1e+3", "1e+3"),
    ("1e0", "1e0"), ("5.", "5."), ("-01", "-01"), ("+1e3", "+1e3"),
    # ... but not when it does not (a scale off a multiple of 3, "000", a leading zero)
    ("+1.5", "1500m"), ("01000", "1k"), ("1E4", "10e3"), ("1e+21", "1e+21"),
    # a number without digits is a zero to the scanner (a suffix, a sign, a dot) ...
    ("Mi", "0"), ("-", "0"), ("+", "0"), (".", "0"), ("e3", "0"), ("Ti", "0"), (".m", "0"),
    ("e-9", "0"),
    # exponents are int32: 2^32 truncates to 0 (kept as written), 2^32+1 to 1
    ("1e4294967296", "1e4294967296"), ("1e4294967297", "10"), ("1e4294967295", "100e-3"),
    ("1e-2147483649", "10e2147483646"), ("1000e2147483647", "1e-2147483646"),
    # decimal SI past E: an exponent (kubernetes#140459; the mantissa alone before)
    ("1000E", "1e21"), ("1000000000000000000000", "1e21"),
    # binary SI is capped at 2^63-1
    ("8Ei", "9223372036854775807"), ("-12Ei", "-9223372036854775807"),
    # huge exponents, computed without materialising the number
    ("1e30000001", "10e30000000"), ("1e2147483647", "10e2147483646"), ("7e-1000", "1e-9"),
    ("1000000000000000000e1000", "10e1017"),
]


@pytest.mark.parametrize(("written", "stored"), CANONICAL)
def test_quantities_read_back_in_canonical_form(written: str, stored: str) -> None:
    assert canonical_string(written) == stored
    assert canonical(written) == stored


@pytest.mark.parametrize(("number", "stored"), [
    (1, "1"), (2, "2"), (0.5, "500m"), (1.5, "1500m"), (0.25, "250m"), (1000, "1k"),
    (1024, "1024"), (0, "0"), (1e16, "10e15"), (1e-7, "100e-9"),
])
def test_yaml_numbers_are_sent_as_json_numbers_and_read_back_as_strings(
    number: float, stored: str
) -> None:
    assert canonical(number) == stored


@pytest.mark.parametrize("written", [
    "", "1.2.3", "abc", "1Kb", "1 Gi", "1e", "1e1.5", "--1", "1Gi2", "1mm", "1e+",
    # a digit-less number the int64 path does not take: inf.Dec finds no digit
    "Pi", "Ei", ".Pi", "e-10", "e-2147483648",
    # an exponent outside int64
    "1e9223372036854775808",
    # kube-apiserver 1.37 never returns from these (rounding writes out 2^31 digits)
    "1e-2147483000", "1e2147483648", "1000000000000000000e2147483000",
])
def test_what_is_not_a_quantity_is_left_alone(written: str) -> None:
    assert canonical_string(written) is None
    assert canonical(written) == written


def test_non_quantities_pass_through() -> None:
    assert canonical(True) is True
    assert canonical(None) is None
    assert canonical({"cpu": 1}) == {"cpu": 1}
    assert canonical(" 1 ") == "1"  # the API server trims before parsing


MANTISSAS = ["", ".", "0", "0.0", "00", "01", "1", "5", "8", "12", "123", "999", "1000", "1024",
             "1.", "5.", ".5", "1.5", "-1.5", "+1", "+01", "-0", "-", "+", "00.", "-.5",
             "999999999999999999", "1000000000000000000", "9223372036854775.808",
             "0.0000000001", "1.0000000001", "1234567890123456789012345678901234567890"]
SUFFIXES = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi",
            "Ei", "E3", "e+21", "e03", "e-4294967297", "e-4294967296", "e-2147483649",
            "e-2147483648", "e-2147483000", "e-1000", "e-19", "e-10", "e-9", "e-1", "e0",
            "e1", "e3", "e19", "e21", "e1000", "e2147483000", "e2147483647", "e2147483648",
            "e4294967296", "e4294967297", "e", "e+", "K", "ki", "x", "Ki5", "ee3"]


def test_the_test_api_server_stores_what_the_operator_predicts() -> None:
    """The strict test API server has its own implementation (decimal-based; it must not
    share the code it tests): on every mantissa/suffix pair of this grid the two agree on
    the stored string, and on which inputs are no quantity at all."""
    from tests.kubeapi import quantity as server

    def stored(text: str) -> str | None:
        try:
            return server.canonical(text)
        except server.QuantityError:
            return None

    grid = [m + s for m in MANTISSAS for s in SUFFIXES]
    differ = [(t, canonical_string(t), stored(t)) for t in grid
              if canonical_string(t) != stored(t)]
    assert differ == []
