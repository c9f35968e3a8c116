# -*- test-case-name: tests.unit.test_zxid -*-
"""Java's integer limits and the parsing rules that depend on them.

ZooKeeper reads numbers with ``Integer.parseInt`` and ``Long.parseLong`` and
trims text with ``String.trim``; zabd refuses and accepts exactly what they
do, with these constants and helpers.
"""
from __future__ import annotations

import re

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
#: Every bit of a long, for two's-complement arithmetic on Python ints.
MASK64 = (1 << 64) - 1
#: What ``String.trim`` removes from both ends: every char up to the space.
JAVA_TRIM = "".join(chr(i) for i in range(33))

_DECIMAL = re.compile(r"[+-]?[0-9]+")  # Long.parseLong's digits (ASCII)


def java_trim(text: str) -> str:
    """Java's ``String.trim``."""
    return text.strip(JAVA_TRIM)


def long_hash_code(value: int) -> int:
    """Java's ``Long.hashCode``: the two halves xored, as an unsigned 32-bit int."""
    unsigned = value & MASK64
    return (unsigned ^ (unsigned >> 32)) & 0xFFFFFFFF


def parse_long(text: str) -> int | None:
    """Java's ``Long.parseLong(text)`` over ASCII digits, or None where Java would throw."""
    if _DECIMAL.fullmatch(text) is None:
        return None
    value = int(text)
    return value if LONG_MIN <= value <= LONG_MAX else None
