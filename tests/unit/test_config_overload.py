"""zoo.cfg's overload keys: read into ZabdConfig.overload, adjusted or refused as 3.8 would, and wired to the server."""
from __future__ import annotations

import pytest

from zabd.config.zoocfg import ConfigError, ZabdConfig, parse_config
from zabd.config.overload import txn_size_limit
from zabd.config.security import key_status
from zabd.peer.standalone import server_options
from zabd.config.overload_settings import (
    ConnectionThrottleSettings, LargeRequestSettings, OverloadSettings, RequestThrottleSettings,
)
from zabd.storage.logformat import MAX_TXN_SIZE


def cfg(*lines: str) -> ZabdConfig:
    return parse_config("\n".join(("dataDir=/tmp/zabd-test", *lines)) + "\n")


def test_everything_is_off_by_default() -> None:
    assert cfg().overload == OverloadSettings()
    assert OverloadSettings().large_requests == LargeRequestSettings(100 * 1024 * 1024, -1)


def test_the_keys_are_read_with_or_without_the_system_property_prefix() -> None:
    config = cfg(
        "zookeeper.request_throttle_max_requests=50", "request_throttle_stall_time=20",
        "zookeeper.request_throttle_drop_stale=false", "zookeeper.request_stale_latency_check=TRUE",
        "request_stale_connection_check=false", "zookeeper.throttled_op_wait_time=250",
        "zookeeper.connection_throttle_tokens=100", "connection_throttle_fill_time=10",
        "connection_throttle_fill_count=5", "connection_throttle_freeze_time=1000",
        "connection_throttle_drop_increase=0.05", "connection_throttle_drop_decrease=1e-3",
        "connection_throttle_decrease_ratio=0.5", "zookeeper.connection_throttle_weight_enabled=true",
        "connection_throttle_global_session_weight=4", "connection_throttle_local_session_weight=2",
        "connection_throttle_renew_session_weight=3",
        "largeRequestMaxBytes=1048576", "zookeeper.largeRequestThreshold=4096",
        "zookeeper.jute.maxbuffer.extrasize=2048",
    )
    assert config.overload == OverloadSettings(
        RequestThrottleSettings(50, 20, False, False, True, 250),
        ConnectionThrottleSettings(100, 10, 5, 1000, 0.05, 0.001, 0.5, True, 4, 2, 3),
        LargeRequestSettings(1048576, 4096),
        2048,
    )
    assert config.warnings == () and config.ignored_keys == ()


@pytest.mark.parametrize("line, replaced", [
    ("largeRequestMaxBytes=0", ("large_requests", LargeRequestSettings(100 * 1024 * 1024, -1))),
    ("largeRequestThreshold=0", ("large_requests", LargeRequestSettings())),
    ("largeRequestThreshold=-5", ("large_requests", LargeRequestSettings())),
    ("jute.maxbuffer.extrasize=10", ("jute_max_buffer_extra_size", 1024)),
])
def test_values_3_8_replaces_are_replaced_with_a_warning(line: str, replaced: tuple[str, object]) -> None:
    config = cfg(line)
    field, value = replaced
    assert getattr(config.overload, field) == value
    key = line.split("=")[0]
    assert len(config.warnings) == 1 and f"line 2: {key}: " in config.warnings[0]


@pytest.mark.parametrize("weights, expected", [
    (("0", "1", "2"), (3, 1, 2)),     # a weight that is not positive: its default
    (("1", "2", "1"), (2, 2, 2)),     # below the local weight: the local weight
    (("5", "-1", "0"), (5, 1, 2)),
    (("2", "-4", "1"), (2, 1, 1)),    # compared with the local weight as given
])
def test_session_weights_are_adjusted_as_blue_throttle_does(weights: tuple[str, str, str],
                                                             expected: tuple[int, int, int]) -> None:
    names = ("global", "local", "renew")
    config = cfg(*(f"connection_throttle_{name}_session_weight={value}" for name, value in zip(names, weights)))
    settings = config.overload.connection_throttle
    assert (settings.global_weight, settings.local_weight, settings.renew_weight) == expected


@pytest.mark.parametrize("line", [
    "request_throttle_stall_time=-1",       # 3.8's thread would die on a negative wait
    "connection_throttle_fill_time=0",      # 3.8 divides by it
    "request_throttle_drop_stale=yes",      # 3.8 would read it as false
    "connection_throttle_weight_enabled=1",
    "connection_throttle_drop_increase=lots",
    "request_throttle_max_requests=0x10",   # decimal only, as for every integer key of zabd
])
def test_values_3_8_would_misread_or_choke_on_stop_startup_naming_the_line(line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cfg(line)
    assert caught.value.key == line.split("=")[0] and caught.value.line == 2


@pytest.mark.parametrize("key", [
    "request_throttle_max_requests", "request_throttle_stall_time", "request_throttle_drop_stale",
    "request_stale_connection_check", "request_stale_latency_check", "throttled_op_wait_time",
    "connection_throttle_tokens", "connection_throttle_freeze_time", "connection_throttle_weight_enabled",
    "connection_throttle_renew_session_weight", "largeRequestMaxBytes", "largeRequestThreshold",
    "jute.maxbuffer.extrasize",
])
def test_the_keys_are_implemented(key: str) -> None:
    assert key_status(key)[0] == "implemented"


def test_the_admin_guides_headings_are_not_keys_3_8_reads() -> None:
    config = cfg("requestThrottleLimit=5", "connectionMaxTokens=7")
    assert config.overload == OverloadSettings()
    assert [key for key, _ in config.ignored_keys] == ["requestThrottleLimit", "connectionMaxTokens"]
    assert "zookeeper.request_throttle_max_requests" in config.ignored_keys[0][1]


@pytest.mark.parametrize("lines, limit", [
    ((), MAX_TXN_SIZE),                                              # 1 MiB + 1 MiB
    (("jute.maxbuffer=65536",), 2 * 65536),
    (("jute.maxbuffer=65536", "jute.maxbuffer.extrasize=4096"), 65536 + 4096),
    (("jute.maxbuffer=512",), 512 + 1024),                           # the extra size is at least 1024
    (("jute.maxbuffer=4194304",), MAX_TXN_SIZE),                     # what zabd's log and learners take
])
def test_the_txn_size_limit_is_what_peers_read(lines: tuple[str, ...], limit: int) -> None:
    config = cfg(*lines)
    assert txn_size_limit(config.jute_max_buffer, config.overload) == limit
    assert server_options(config).settings.max_txn_bytes == limit


def test_server_options_carry_the_settings() -> None:
    config = cfg("request_throttle_max_requests=9", "connection_throttle_tokens=3", "largeRequestThreshold=10",
                 "request_stale_connection_check=false")
    options = server_options(config)
    assert options.request_throttle.max_requests == 9
    assert options.connection_throttle.max_tokens == 3
    assert options.large_requests.threshold == 10
    assert options.settings.stale_connection_check is False
