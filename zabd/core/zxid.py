# -*- test-case-name: tests.unit.test_zxid -*-
"""Zxid arithmetic: a zxid is ``epoch << 32 | counter`` (protocol doc 4.3).

The epoch is the leader's term; the counter numbers its txns from 1. Every
layer that splits or builds a zxid does it here, with 3.8's ZxidUtils names.
"""
from __future__ import annotations

from zabd.java.formats import java_hex

EPOCH_SHIFT = 32
#: The counter's bits of a zxid.
COUNTER_MASK = 0xFFFFFFFF


def epoch_of(zxid: int) -> int:
    """The high 32 bits of a zxid (ZxidUtils.getEpochFromZxid)."""
    return zxid >> EPOCH_SHIFT


def counter_of(zxid: int) -> int:
    """The low 32 bits of a zxid (ZxidUtils.getCounterFromZxid)."""
    return zxid & COUNTER_MASK


def make_zxid(epoch: int, counter: int) -> int:
    """ZxidUtils.makeZxid: the epoch's bits above the counter's."""
    return (epoch << EPOCH_SHIFT) | (counter & COUNTER_MASK)


def first_zxid_of(epoch: int) -> int:
    """The zxid a new epoch starts from: its first txn is this plus one."""
    return epoch << EPOCH_SHIFT


def is_first_of_epoch(zxid: int) -> bool:
    """Counter 0: what a server holds after NEWLEADER with no txn of that epoch yet."""
    return zxid & COUNTER_MASK == 0


def zxid_hex(zxid: int) -> str:
    """A zxid as 3.8 prints it (``Long.toHexString``: unsigned, lower case, no prefix)."""
    return java_hex(zxid)
