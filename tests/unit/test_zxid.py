"""Tests for zabd.core.zxid and zabd.java.limits: the shared primitives."""
from __future__ import annotations

from zabd.core.zxid import counter_of, epoch_of, first_zxid_of, is_first_of_epoch, make_zxid, zxid_hex
from zabd.java.limits import (
    INT_MAX,
    INT_MIN,
    JAVA_TRIM,
    LONG_MAX,
    LONG_MIN,
    java_trim,
    long_hash_code,
    parse_long,
)


def test_a_zxid_is_epoch_and_counter() -> None:
    zxid = make_zxid(5, 7)
    assert zxid == 0x5_0000_0007
    assert (epoch_of(zxid), counter_of(zxid)) == (5, 7)
    assert first_zxid_of(5) == 0x5_0000_0000 and is_first_of_epoch(first_zxid_of(5))
    assert not is_first_of_epoch(zxid)


def test_zxids_print_as_java_long_hex() -> None:
    assert zxid_hex(0x1_0000_0002) == "100000002"
    assert zxid_hex(-1) == "ffffffffffffffff"


def test_java_limits() -> None:
    assert (INT_MIN, INT_MAX) == (-2**31, 2**31 - 1)
    assert (LONG_MIN, LONG_MAX) == (-2**63, 2**63 - 1)
    assert len(JAVA_TRIM) == 33 and java_trim("\x00 a b\x1f ") == "a b"
    assert parse_long("+42") == 42 and parse_long("-9223372036854775808") == LONG_MIN
    assert long_hash_code(1) == 1 and long_hash_code(-1) == 0 and long_hash_code(1 << 32) == 1
    assert parse_long("9223372036854775808") is None and parse_long("4 2") is None and parse_long("") is None
