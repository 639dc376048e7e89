"""Quantities as kube-apiserver 1.37 stores them, quirks included: its parser keeps a string
that already looks canonical as written, reads a number without digits as zero, truncates
exponents to int32, and never returns from a few inputs (refused here instead)."""

from __future__ import annotations

import pytest

from tests.kubeapi import quantity
from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.support import apps_path, statefulset

STS = apps_path("statefulsets")


@pytest.mark.parametrize(("written", "stored"), [
    # kept exactly as written: the int64 fast path caches a canonical-looking string
    ("+1", "+1"), ("01", "01"), ("1E3", "1E3"), ("1e+3", "1e+3"), ("1e0", "1e0"),
    ("5.", "5."), ("+1Gi", "+1Gi"), ("-01", "-01"),
    # not kept when the scale is off a multiple of 3, ends in 000 or starts with 0
    ("+1.5", "1500m"), ("01000", "1k"), ("1E4", "10e3"), ("0.5", "500m"),
    # no digits: zero (a suffix, a sign, a dot, an exponent alone)
    ("Mi", "0"), ("-", "0"), ("+", "0"), (".", "0"), ("e3", "0"), ("Ti", "0"), ("e-9", "0"),
    # int32 exponents: 2^32 truncates to 0, 2^32+1 to 1; scales wrap
    ("1e4294967296", "1e4294967296"), ("1e4294967297", "10"),
    ("1e-2147483649", "10e2147483646"), ("1000e2147483647", "1e-2147483646"),
    # past E (kubernetes#140459), the binary cap, rounding up to a nano
    ("1000E", "1e21"), ("8Ei", "9223372036854775807"), ("7e-1000", "1e-9"),
    ("1e2147483647", "10e2147483646"),
])
def test_quirks_are_stored_as_kube_apiserver_stores_them(written: str, stored: str) -> None:
    assert quantity.canonical(written) == stored


@pytest.mark.parametrize(("written", "error"), [
    ("Pi", quantity.NUMERIC_ERROR), ("e-10", quantity.NUMERIC_ERROR),
    ("1e9223372036854775808", quantity.SUFFIX_ERROR), ("1e+", quantity.SUFFIX_ERROR),
    ("1.2.3", quantity.FORMAT_ERROR), ("", quantity.FORMAT_ERROR),
    ("1e-2147483000", quantity.HANG_ERROR), ("1e2147483648", quantity.HANG_ERROR),
])
def test_what_kube_apiserver_refuses_or_never_answers_is_refused(written: str,
                                                                 error: str) -> None:
    with pytest.raises(quantity.QuantityError) as refused:
        quantity.canonical(written)
    assert str(refused.value) == error


def test_huge_exponents_compare_without_being_materialised() -> None:
    assert quantity.value("1e2000000000") > quantity.value("9e1999999999")
    assert quantity.value("-1e-2000") < 0


async def test_a_statefulset_stores_the_quirks(kube_cluster: StrictCluster) -> None:
    body = statefulset(resources={"requests": {"cpu": "+1", "memory": "Mi"},
                                  "limits": {"cpu": "1E3", "memory": "1e4294967297"}})
    created = (await kube_cluster.admin.create(STS, body)).ok()
    resources = created["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "+1", "memory": "0"},
                         "limits": {"cpu": "1E3", "memory": "10"}}
    refused = await kube_cluster.admin.create(STS, statefulset(
        "bad", resources={"limits": {"cpu": "Pi"}}))
    assert (refused.status, refused.message) == (400, 'StatefulSet in version "v1" cannot be '
                                                      'handled as a StatefulSet: '
                                                      + quantity.NUMERIC_ERROR)
