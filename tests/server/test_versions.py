"""Versions sort as winget orders them: the pairs are winget's own rules (its version tests),
checked both by the Python key and by the database comparing the stored key."""

import pytest

from lunaris_server.core.versions import newest, sort_key
from lunaris_server.updates.constraints import parse

LESS = [
    ("1", "2"),
    ("1.0.0", "2.0.0"),
    ("0.0.1", "0.0.2"),
    ("0.0.1-alpha", "0.0.2-alpha"),
    ("0.0.1-beta", "0.0.2-alpha"),
    ("13.9.8", "14.1"),
    ("1.9", "1.10"),
    ("1-rc", "1"),
    ("1.2-rc", "1.2"),
    ("1.0-rc", "1.0"),
    ("1.0.0-rc", "1"),
    ("22.0.0-rc.1", "22.0.0"),
    ("22.0.0-rc.1", "22.0.0.1"),
    ("22.0.0-rc.1", "22.0.0.1-rc"),
    ("22.0.0-rc.1", "22.0.0-rc.1.1"),
    ("22.0.0-rc.1.1", "22.0.0-rc.1.2"),
    ("22.0.0-rc.1.2", "22.0.0-rc.2"),
    ("v0.0.1", "0.0.2"),
    ("v0.0.1", "v0.0.2"),
    ("1.a2", "1.b1"),
    ("1.A2", "1.b1"),
    ("alpha", "beta"),
    ("1.0", "latest"),
    ("100", "latest"),
    ("943849587389754876.1", "latest"),
    ("unknown", "1.0"),
    ("unknown", "1.fork"),
    ("unknown", ""),
    ("< 1.0", "1.0"),
    ("< 1.0", "> 1.0"),
    ("1.0", "> 1.0"),
    ("0.9", "< 1.0"),
    ("> 1.0", "1.1"),
    ("1.0.0-rc", "< 1.0"),
    ("< latest", "latest"),
    ("latest", "> latest"),
    ("9999", "< latest"),
    ("8.7.9", "8.8"),
    ("8.8", "8.8.0.1"),
    ("23.01", "23.1.1"),
    ("2", "10"),
    ("99999999999999999999", "1"),  # beyond 64 bits: text, not a number
    ("1.0.1-beta", "1.0.1"),
    ("1.2.3", "1.2.3.4"),
]
EQUAL = [
    ("1.0", "1.0.0"),
    ("1.2.00.3", "1.2.0.3"),
    ("1.2.003.4", "1.2.3.4"),
    ("01.02.03.04", "1.2.3.4"),
    ("1.2.03-beta", "1.2.3-beta"),
    ("1.0", "1.0 "),
    ("1.0", "1. 0"),
    ("1.0", "1.0."),
    ("1.0", "Version 1.0"),
    ("foo1", "bar1"),
    ("latest", "LATEST"),
    ("unknown", "UNKNOWN"),
    ("< 1.0", "< 1.0.0"),
    ("> 1.0", "> 1.0.0"),
    ("1.0-BETA", "1.0-beta"),
    ("", "0"),
]


@pytest.mark.parametrize(("older", "newer"), LESS)
def test_winget_calls_these_older(older: str, newer: str):
    assert sort_key(older) < sort_key(newer)
    assert newest([newer, older]) == newer


@pytest.mark.parametrize(("one", "other"), EQUAL)
def test_winget_calls_these_equal(one: str, other: str):
    assert sort_key(one) == sort_key(other)


def test_the_key_is_ascii_and_bounded():
    for version in ["1.2.3", "应用-1.0", "x" * 128, ".".join(["a"] * 64)]:
        key = sort_key(version)
        assert key.isascii()
        assert len(key) <= 512


@pytest.mark.parametrize(
    ("version", "prefix", "starts"),
    [
        ("1.4.2", "1.4", True),
        ("1.4", "1.4", True),
        ("1.40", "1.4", False),
        ("1.0", "1.0", True),
        ("1", "1.0", False),
        ("10.1", "1", False),
    ],
)
def test_wildcard_prefixes_compare_whole_parts(version: str, prefix: str, starts: bool):
    assert parse(f"{prefix}.*").allows(version) is starts
