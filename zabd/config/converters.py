# -*- test-case-name: tests.unit.test_config -*-
"""
zoo.cfg value converters: each takes the value as written and returns it typed, or raises BadValue.

The key table in :mod:`zabd.config.keys` names one per key; the ranges are
Java's, since 3.8 reads the same values with ``Integer.parseInt`` and kin.
"""

from __future__ import annotations

import re
from typing import Callable

from zabd.java.limits import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN


class BadValue(Exception):
    """A value that does not convert; the caller adds key and line."""


Converter = Callable[[str], object]


def integer(low: int, high: int, what: str | None = None) -> Converter:
    def convert(value: str) -> int:
        if re.fullmatch(r"[+-]?[0-9]+", value) and low <= int(value) <= high:
            return int(value)
        raise BadValue(f"expected {what or 'an integer'}, got {value!r}")
    return convert


any_int = integer(INT_MIN, INT_MAX)
any_long = integer(LONG_MIN, LONG_MAX)
positive = integer(1, INT_MAX, "a positive integer")
non_negative = integer(0, INT_MAX, "a non-negative integer")
port = integer(1, 65535, "a port number from 1 to 65535")
port_or_zero = integer(0, 65535, "a port number from 0 to 65535")
timeout = integer(-1, INT_MAX, "-1 or a non-negative integer")


def boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    raise BadValue(f"expected true, false, yes or no, got {value!r}")


def text(value: str) -> str:
    if not value:
        raise BadValue("expected a value, got nothing")
    return value


def url_path(value: str) -> str:
    if not value.startswith("/"):
        raise BadValue(f"expected a path starting with '/', got {value!r}")
    return value


def super_digest(value: str) -> str:
    if ":" not in value:
        raise BadValue(f"expected user:base64-sha1-digest, got {value!r}")
    return value


def election_alg(value: str) -> int:
    if value != "3":
        raise BadValue(f"only 3 (fast leader election) is supported, got {value!r}")
    return 3


def peer_type(value: str) -> str:
    if value.lower() not in ("participant", "observer"):
        raise BadValue(f"expected participant or observer, got {value!r}")
    return value.lower()


def yes_no(value: str) -> bool:
    # 3.8 serves clients on the leader unless the value is exactly "no"; zabd
    # takes the obvious spellings at their word and refuses the rest.
    lowered = value.lower()
    if lowered in ("yes", "no", "true", "false"):
        return lowered in ("yes", "true")
    raise BadValue(f"expected yes or no, got {value!r}")


def true_false(value: str) -> bool:
    # 3.8 reads these with Boolean.parseBoolean, where anything but "true" is
    # false: zabd refuses the rest rather than read "yes" as false.
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise BadValue(f"expected true or false, got {value!r}")


def unless_false(value: str) -> bool:
    # Checked as a boolean, then read as zabd always has: only "false" turns it off.
    boolean(value)
    return value.lower() != "false"


def only_true(value: str) -> bool:
    # Checked as a boolean, then read as zabd always has: only "true" turns it on.
    boolean(value)
    return value.lower() == "true"


def real(value: str) -> float:
    if re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[dDfF]?", value):
        return float(value.rstrip("dDfF"))
    raise BadValue(f"expected a number, got {value!r}")
