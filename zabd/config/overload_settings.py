# -*- test-case-name: tests.unit.test_config_overload -*-
"""ZooKeeper 3.8's overload settings, as records.

What zoo.cfg (or ``zookeeper.*`` system properties) asks for, already
adjusted as 3.8 adjusts them (zabd.config.overload):

- :class:`RequestThrottleSettings`: 3.8's RequestThrottler, which holds
  client requests back while too many are in the processor chain
  (zabd.serving.requestthrottle);
- :class:`ConnectionThrottleSettings`: 3.8's BlueThrottle, a token bucket
  that refuses new sessions beyond a rate (zabd.serving.connthrottle);
- :class:`LargeRequestSettings`: a budget of bytes that requests larger
  than a threshold may hold together (zabd.serving.overload).
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: largeRequestMaxBytes when unset: 100 MiB, as in 3.8.
DEFAULT_LARGE_REQUEST_MAX_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class RequestThrottleSettings:
    """``zookeeper.request_throttle_*`` and the staleness checks 3.8's Request makes."""

    #: request_throttle_max_requests: requests in process before new ones wait; 0 (or less): off.
    max_requests: int = 0
    #: request_throttle_stall_time: the longest wait before the head request is looked at again (ms); 0: until woken.
    stall_time_ms: int = 100
    #: request_throttle_drop_stale: a waiting request whose connection is gone is dropped.
    drop_stale: bool = True
    #: request_stale_connection_check: a request whose connection closed is stale.
    stale_connection_check: bool = True
    #: request_stale_latency_check: a request older than its session timeout is stale.
    stale_latency_check: bool = False
    #: throttled_op_wait_time: a request that waited longer is answered THROTTLEDOP (ms); 0: never.
    throttled_op_wait_time_ms: int = 0


@dataclass(frozen=True)
class ConnectionThrottleSettings:
    """``zookeeper.connection_throttle_*``: the token bucket new sessions draw from (off with 0 tokens)."""

    max_tokens: int = 0
    fill_time_ms: int = 1
    fill_count: int = 1
    #: -1: no random dropping (BLUE off).
    freeze_time_ms: int = -1
    drop_increase: float = 0.02
    drop_decrease: float = 0.002
    decrease_ratio: float = 0.0
    #: connection_throttle_weight_enabled: new, local and renewed sessions cost their weights.
    weight_enabled: bool = False
    global_weight: int = 3
    local_weight: int = 1
    renew_weight: int = 2


@dataclass(frozen=True)
class LargeRequestSettings:
    """``largeRequestMaxBytes`` and ``largeRequestThreshold`` (-1: no request is large)."""

    max_bytes: int = DEFAULT_LARGE_REQUEST_MAX_BYTES
    threshold: int = -1

    @property
    def above(self) -> float:
        """Lengths above this are large (infinity when the limit is off): one comparison per frame."""
        return float("inf") if self.threshold == -1 else self.threshold


@dataclass(frozen=True)
class OverloadSettings:
    """Everything zoo.cfg says about overload beyond the connection limits and globalOutstandingLimit."""

    request_throttle: RequestThrottleSettings = field(default_factory=RequestThrottleSettings)
    connection_throttle: ConnectionThrottleSettings = field(default_factory=ConnectionThrottleSettings)
    large_requests: LargeRequestSettings = field(default_factory=LargeRequestSettings)
    #: jute.maxbuffer.extrasize as 3.8 reads it (at least 1024); None: jute.maxbuffer's value.
    jute_max_buffer_extra_size: int | None = None
