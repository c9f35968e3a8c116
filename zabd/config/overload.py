# -*- test-case-name: tests.unit.test_config_overload -*-
"""
The overload keys of zoo.cfg: the request throttler, the connection throttle and large requests.

3.8 reads them as ``zookeeper.*`` system properties (zabd also takes them
without the prefix). ``config_keys.KEPT`` types each one, so a bad value
stops startup naming its line; here the values become an
:class:`~zabd.config.overload_settings.OverloadSettings`, with the out-of-range
values 3.8 replaces by its defaults replaced the same way, each with a
warning.
"""

from __future__ import annotations

from zabd.config.keys import KEPT
from zabd.config.overload_settings import (
    DEFAULT_LARGE_REQUEST_MAX_BYTES,
    ConnectionThrottleSettings,
    LargeRequestSettings,
    OverloadSettings,
    RequestThrottleSettings,
)
from zabd.storage.logformat import MAX_TXN_SIZE

#: A canonical key -> (as written, value, line), as parse_config keeps the last of each.
Latest = dict[str, tuple[str, str, int]]

#: The smallest jute.maxbuffer.extrasize 3.8 uses (its old fixed padding).
MIN_EXTRA_SIZE = 1024


class _Reader:
    """Typed values of the checked keys, and the warnings for the ones replaced."""

    def __init__(self, latest: Latest, source: str, warnings: list[str]) -> None:
        self.latest = latest
        self.source = source
        self.warnings = warnings

    def _value(self, key: str) -> object:
        convert = KEPT[key][0]
        assert convert is not None
        return convert(self.latest[key][1])

    def integer(self, key: str, default: int) -> int:
        if key not in self.latest:
            return default
        value = self._value(key)
        assert isinstance(value, int)
        return value

    def real(self, key: str, default: float) -> float:
        if key not in self.latest:
            return default
        value = self._value(key)
        assert isinstance(value, float)
        return value

    def flag(self, key: str, default: bool) -> bool:
        if key not in self.latest:
            return default
        value = self._value(key)
        assert isinstance(value, bool)
        return value

    def replaced(self, key: str, replacement: int, why: str) -> int:
        written, given, line = self.latest[key]
        self.warnings.append(f"{self.source} line {line}: {written}: {given} {why}; using {replacement}")
        return replacement


def overload_settings(latest: Latest, source: str, warnings: list[str]) -> OverloadSettings:
    """
    The overload settings zoo.cfg asks for, adjusted as 3.8 adjusts them.

    :param latest: the config's keys (values already checked by ``KEPT``'s converters).
    :param source: the file name, for warnings.
    :param warnings: where each adjustment is reported.
    """
    read = _Reader(latest, source, warnings)
    request = RequestThrottleSettings(
        max_requests=read.integer("request_throttle_max_requests", 0),
        stall_time_ms=read.integer("request_throttle_stall_time", 100),
        drop_stale=read.flag("request_throttle_drop_stale", True),
        stale_connection_check=read.flag("request_stale_connection_check", True),
        stale_latency_check=read.flag("request_stale_latency_check", False),
        throttled_op_wait_time_ms=read.integer("throttled_op_wait_time", 0),
    )
    # ZooKeeperServer.setLargeRequestMaxBytes and setLargeRequestThreshold.
    max_bytes = read.integer("largeRequestMaxBytes", DEFAULT_LARGE_REQUEST_MAX_BYTES)
    if max_bytes <= 0:
        max_bytes = read.replaced("largeRequestMaxBytes", DEFAULT_LARGE_REQUEST_MAX_BYTES, "is not positive")
    threshold = read.integer("largeRequestThreshold", -1)
    if threshold == 0 or threshold < -1:
        threshold = read.replaced("largeRequestThreshold", -1, "is neither -1 nor positive")
    extra: int | None = None
    if "jute.maxbuffer.extrasize" in latest:
        extra = read.integer("jute.maxbuffer.extrasize", MIN_EXTRA_SIZE)
        if extra < MIN_EXTRA_SIZE:
            extra = read.replaced("jute.maxbuffer.extrasize", MIN_EXTRA_SIZE, f"is below {MIN_EXTRA_SIZE}")
    return OverloadSettings(request, connection_settings(read), LargeRequestSettings(max_bytes, threshold), extra)


def connection_settings(read: _Reader) -> ConnectionThrottleSettings:
    """The connection throttle's settings, its weights adjusted as BlueThrottle's static block does."""
    def weight(name: str, default: int, local_given: int | None) -> int:
        key = f"connection_throttle_{name}"
        given = read.integer(key, default)
        if given <= 0:
            return read.replaced(key, default, "is not positive")
        if local_given is not None and given < local_given:
            # Compared with the local weight as given, before that one is checked: 3.8's order.
            return read.replaced(key, local_given, "is less than the local session weight")
        return given

    local_given = read.integer("connection_throttle_local_session_weight", 1)
    return ConnectionThrottleSettings(
        max_tokens=read.integer("connection_throttle_tokens", 0),
        fill_time_ms=read.integer("connection_throttle_fill_time", 1),
        fill_count=read.integer("connection_throttle_fill_count", 1),
        freeze_time_ms=read.integer("connection_throttle_freeze_time", -1),
        drop_increase=read.real("connection_throttle_drop_increase", 0.02),
        drop_decrease=read.real("connection_throttle_drop_decrease", 0.002),
        decrease_ratio=read.real("connection_throttle_decrease_ratio", 0.0),
        weight_enabled=read.flag("connection_throttle_weight_enabled", False),
        global_weight=weight("global_session_weight", 3, local_given),
        local_weight=weight("local_session_weight", 1, None),
        renew_weight=weight("renew_session_weight", 2, local_given),
    )


def txn_size_limit(jute_max_buffer: int, overload: OverloadSettings) -> int:
    """
    The longest txn prep may build: what a 3.8 peer reads as one buffer
    (jute.maxbuffer + extrasize, the extra size being jute.maxbuffer unless
    set, and at least 1024), and never more than zabd's txn log and
    learners take (``MAX_TXN_SIZE``: twice the default jute.maxbuffer).
    """
    extra = overload.jute_max_buffer_extra_size
    if extra is None:
        extra = max(jute_max_buffer, MIN_EXTRA_SIZE)
    return min(jute_max_buffer + extra, MAX_TXN_SIZE)
