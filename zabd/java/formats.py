"""
Java's ways of printing numbers and dates, reproduced for ZooKeeper's output.

The four-letter words are compared byte for byte with a real ZooKeeper, so
numbers and dates must look as Java's ``Double.toString``, ``Date.toString``
and ``Long.toHexString`` make them, not as Python's ``str`` does.  These
helpers know nothing of ZooKeeper; they are kept apart so the command
renderers in ``fourletter.py`` read as the text they produce.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone, tzinfo
from decimal import Decimal


def java_double(value: float) -> str:
    """
    Format a float as Java's ``Double.toString`` does (``0.0``, ``2.2208``, ``1.0E-4``).

    :param value: the number.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    assert isinstance(digits_tuple.exponent, int)
    # position of the decimal point relative to the start of `digits`
    point = len(digits) + digits_tuple.exponent
    if 1e-3 <= abs(value) < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point - 1}"


def java_date(epoch_ms: int, tz: tzinfo | None = None) -> str:
    """
    Format a time as Java's ``Date.toString`` (``Sun Nov 22 03:12:40 UTC 2026``).

    :param epoch_ms: wall-clock milliseconds since the epoch.
    :param tz: time zone; the machine's local zone when ``None``, as Java.
    """
    when = datetime.fromtimestamp(epoch_ms / 1000, tz or timezone.utc)
    if tz is None:
        when = when.astimezone()
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return (f"{days[when.weekday()]} {months[when.month - 1]} {when.day:02d} "
            f"{when:%H:%M:%S} {when.tzname()} {when.year}")


def java_hex(value: int) -> str:
    """Java's ``Long.toHexString``: two's complement, no prefix."""
    return format(value & 0xFFFFFFFFFFFFFFFF, "x")
