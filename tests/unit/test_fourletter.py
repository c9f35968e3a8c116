"""
Tests for zabd.views.fourletter.

The golden texts are real ZooKeeper 3.8.0 standalone answers (Debian jar,
``4lw.commands.whitelist=*``) with the version and some numbers changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from typing import Mapping, Sequence

import pytest

from zabd.views.fourletter import (
    COMMAND_NAMES,
    COMMANDS,
    NOT_SERVING,
    ConnectionInfo,
    MetricValue,
    ServerView,
    WatchSummary,
    command_for_length,
    java_date,
    java_double,
    render,
    version_string,
)

VERSION = version_string("0.1.0", "2024-12-29 17:54 UTC")
ALL = COMMAND_NAMES

CLIENT_A = ConnectionInfo(
    remote_host="127.0.0.1", remote_port=41432, interest_ops=1, queued=0,
    packets_received=4, packets_sent=4, session_id=0x1000003AC9D0001, last_op="GETC",
    established_ms=1795317149731, session_timeout_ms=10000, last_cxid=3, last_zxid=0x93,
    last_response_ms=254261, last_latency_ms=1, min_latency_ms=0, avg_latency_ms=1,
    max_latency_ms=2,
)
CLIENT_B = ConnectionInfo(
    remote_host="127.0.0.1", remote_port=41418, packets_received=150, packets_sent=150,
    session_id=0x1000003AC9D0000, last_op="EXIS", established_ms=1795317149709,
    session_timeout_ms=10000, last_cxid=0x95, last_zxid=0x93, last_response_ms=254253,
    last_latency_ms=0, min_latency_ms=0, avg_latency_ms=2, max_latency_ms=30,
)
ASKING = ConnectionInfo(remote_host="127.0.0.1", remote_port=41444, interest_ops=0,
                        packets_received=1)


@dataclass
class FakeView:
    version: str = VERSION
    mode: str = "standalone"
    serving: bool = True
    read_only: bool = False
    last_zxid: int = 0x93
    node_count: int = 150
    min_latency_ms: int = 0
    avg_latency_ms: float = 2.2208
    max_latency_ms: int = 30
    packets_received: int = 165
    packets_sent: int = 165
    outstanding_requests: int = 0
    proposal_sizes: tuple[int, int, int] | None = None
    uptime_ms: int = 13588
    watch_count: int = 4
    ephemerals_count: int = 3
    approximate_data_size: int = 2464
    global_sessions: int = 2
    local_sessions: int = 0
    auth_failed_count: int = 0
    open_file_descriptor_count: int = 43
    max_file_descriptor_count: int = 20000
    data_dir_size: int = 457
    log_dir_size: int = 67109337
    trace_mask: int = 306
    conns: list[ConnectionInfo] = field(default_factory=lambda: [CLIENT_A, CLIENT_B, ASKING])
    extra: list[tuple[str, MetricValue]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def connections(self) -> Sequence[ConnectionInfo]:
        return self.conns

    def watch_summary(self) -> WatchSummary:
        return WatchSummary(connections=2, paths=2, total=3)

    def watches_by_session(self) -> Mapping[int, Sequence[str]]:
        return {0x1000003AC9D0001: ["/app"], 0x1000003AC9D0000: ["/app", "/app/x"]}

    def watches_by_path(self) -> Mapping[str, Sequence[int]]:
        return {"/app": [0x1000003AC9D0001, 0x1000003AC9D0000], "/app/x": [0x1000003AC9D0000]}

    def session_expiry(self) -> Sequence[tuple[int, Sequence[int]]]:
        return [(1795317160000, []), (1795317162000, [0x1000003AC9D0001, 0x1000003AC9D0000])]

    def sessions_with_ephemerals(self) -> Mapping[int, Sequence[str]]:
        return {0x1000003AC9D0000: ["/app/eph1", "/app/eph2"], 0x1000003AC9D0001: ["/app/ephb"]}

    def config_lines(self) -> Sequence[tuple[str, str]]:
        return [("clientPort", "45869"), ("secureClientPort", "-1"),
                ("dataDir", "/tmp/zk4lw/data/version-2"), ("serverId", "0")]

    def digest_history(self) -> Sequence[tuple[int, int]]:
        return [(0x80, 297771707968), (0x100, 1234)]

    def environment(self) -> Sequence[tuple[str, str]]:
        return [("zookeeper.version", "ignored"), ("host.name", "localhost"),
                ("java.version", "17.0.15"), ("os.memory.free", "369MB")]

    def mntr_extra(self) -> Sequence[tuple[str, MetricValue]]:
        return self.extra

    def reset_connection_stats(self) -> None:
        self.calls.append("crst")

    def reset_server_stats(self) -> None:
        self.calls.append("srst")

    def set_trace_mask(self, mask: int) -> None:
        self.calls.append(f"stmk {mask}")
        self.trace_mask = mask


def as_view(view: FakeView) -> ServerView:
    return view  # mypy checks FakeView against the protocol here


# ------------------------------------------------------------ words

def test_command_table() -> None:
    assert len(COMMANDS) == 18
    assert COMMANDS[0x72756F6B] == "ruok"
    assert COMMANDS[0x73727672] == "srvr"
    assert COMMANDS[0x6D6E7472] == "mntr"
    assert COMMANDS[0x6973726F] == "isro"
    assert all(int.from_bytes(n.encode(), "big") == k for k, n in COMMANDS.items())
    assert set(COMMANDS.values()) == COMMAND_NAMES


def test_command_for_length() -> None:
    assert command_for_length(0x636F6E73) == "cons"
    assert command_for_length(int.from_bytes(b"stmk", "big", signed=True)) == "stmk"
    assert command_for_length(45) is None
    assert command_for_length(-1) is None


def test_version_string_parses_as_kazoo_does() -> None:
    # kazoo's server_version(): r"([\d\.]*).*" on the envi zookeeper.version value.
    text = render("envi", as_view(FakeView()), ALL)
    line = next(x for x in text.splitlines() if x.startswith("zookeeper.version="))
    digits = line.split("=", 1)[1].split("-")[0]
    assert tuple(int(d) for d in digits.split(".")) == (3, 8, 0)


# ------------------------------------------------------------ golden formats

def test_srvr() -> None:
    assert render("srvr", as_view(FakeView()), ALL) == (
        f"Zookeeper version: {VERSION}\n"
        "Latency min/avg/max: 0/2.2208/30\n"
        "Received: 165\n"
        "Sent: 165\n"
        "Connections: 3\n"
        "Outstanding: 0\n"
        "Zxid: 0x93\n"
        "Mode: standalone\n"
        "Node count: 150\n"
    )


def test_srvr_fresh_server_prints_java_double_zero() -> None:
    view = FakeView(avg_latency_ms=0.0, max_latency_ms=0, last_zxid=0, node_count=5,
                    conns=[ASKING])
    text = render("srvr", as_view(view), ALL)
    assert "Latency min/avg/max: 0/0.0/0\n" in text
    assert "Zxid: 0x0\nMode: standalone\nNode count: 5\n" in text


def test_stat() -> None:
    assert render("stat", as_view(FakeView()), ALL) == (
        f"Zookeeper version: {VERSION}\n"
        "Clients:\n"
        " /127.0.0.1:41432[1](queued=0,recved=4,sent=4)\n"
        " /127.0.0.1:41418[1](queued=0,recved=150,sent=150)\n"
        " /127.0.0.1:41444[0](queued=0,recved=1,sent=0)\n"
        "\n"
        "Latency min/avg/max: 0/2.2208/30\n"
        "Received: 165\n"
        "Sent: 165\n"
        "Connections: 3\n"
        "Outstanding: 0\n"
        "Zxid: 0x93\n"
        "Mode: standalone\n"
        "Node count: 150\n"
    )


def test_read_only_and_leader_lines() -> None:
    text = render("srvr", as_view(FakeView(read_only=True, mode="read-only")), ALL)
    assert text.splitlines()[1] == "READ-ONLY mode; serving only read-only clients"
    leader = FakeView(mode="leader", proposal_sizes=(36, 36, 120))
    assert render("srvr", as_view(leader), ALL).endswith(
        "Mode: leader\nNode count: 150\nProposal sizes last/min/max: 36/36/120\n")
    assert "Proposal" not in render("srvr", as_view(FakeView(proposal_sizes=(1, 1, 1))), ALL)


def test_cons() -> None:
    assert render("cons", as_view(FakeView()), ALL) == (
        " /127.0.0.1:41432[1](queued=0,recved=4,sent=4,sid=0x1000003ac9d0001,lop=GETC,"
        "est=1795317149731,to=10000,lcxid=0x3,lzxid=0x93,lresp=254261,llat=1,minlat=0,"
        "avglat=1,maxlat=2)\n"
        " /127.0.0.1:41418[1](queued=0,recved=150,sent=150,sid=0x1000003ac9d0000,lop=EXIS,"
        "est=1795317149709,to=10000,lcxid=0x95,lzxid=0x93,lresp=254253,llat=0,minlat=0,"
        "avglat=2,maxlat=30)\n"
        " /127.0.0.1:41444[0](queued=0,recved=1,sent=0)\n"
        "\n"
    )


def test_cons_new_session_omits_cxid_and_shows_negative_zxid() -> None:
    fresh = ConnectionInfo(remote_host="127.0.0.1", remote_port=5, session_id=0x100,
                           established_ms=7, session_timeout_ms=4000)
    text = render("cons", as_view(FakeView(conns=[fresh])), ALL)
    assert text == (" /127.0.0.1:5[1](queued=0,recved=0,sent=0,sid=0x100,lop=NA,est=7,"
                    "to=4000,lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,"
                    "maxlat=0)\n\n")


def test_conf() -> None:
    assert render("conf", as_view(FakeView()), ALL) == (
        "clientPort=45869\nsecureClientPort=-1\ndataDir=/tmp/zk4lw/data/version-2\nserverId=0\n")


def test_dump() -> None:
    text = render("dump", as_view(FakeView()), ALL)
    expiry = [java_date(1795317160000), java_date(1795317162000)]
    assert text == (
        "SessionTracker dump:\n"
        "Session Sets (2)/(2):\n"
        f"0 expire at {expiry[0]}:\n"
        f"2 expire at {expiry[1]}:\n"
        "\t0x1000003ac9d0001\n"
        "\t0x1000003ac9d0000\n"
        "ephemeral nodes dump:\n"
        "Sessions with Ephemerals (2):\n"
        "0x1000003ac9d0000:\n"
        "\t/app/eph1\n"
        "\t/app/eph2\n"
        "0x1000003ac9d0001:\n"
        "\t/app/ephb\n"
        "Connections dump:\n"
    )


def test_java_date() -> None:
    assert java_date(1795317160000, timezone.utc) == "Sun Nov 22 03:12:40 UTC 2026"
    assert java_date(0, timezone.utc) == "Thu Jan 01 00:00:00 UTC 1970"


def test_watch_commands() -> None:
    view = as_view(FakeView())
    assert render("wchs", view, ALL) == "2 connections watching 2 paths\nTotal watches:3\n"
    assert render("wchc", view, ALL) == (
        "0x1000003ac9d0001\n\t/app\n0x1000003ac9d0000\n\t/app\n\t/app/x\n\n")
    assert render("wchp", view, ALL) == (
        "/app\n\t0x1000003ac9d0001\n\t0x1000003ac9d0000\n/app/x\n\t0x1000003ac9d0000\n\n")


def test_watch_commands_with_no_watches() -> None:
    view = FakeView()
    view.watches_by_session = lambda: {}  # type: ignore[method-assign]
    view.watches_by_path = lambda: {}  # type: ignore[method-assign]
    assert render("wchc", as_view(view), ALL) == "\n"
    assert render("wchp", as_view(view), ALL) == "\n"


def test_dirs_hash_ruok_isro_gtmk() -> None:
    view = as_view(FakeView())
    assert render("dirs", view, ALL) == "datadir_size: 457\nlogdir_size: 67109337\n"
    assert render("hash", view, ALL) == "80: 297771707968\n100: 1234\n"
    assert render("ruok", view, ALL) == "imok"
    assert render("isro", view, ALL) == "rw"
    assert render("isro", as_view(FakeView(read_only=True)), ALL) == "ro"
    assert render("gtmk", view, ALL) == "306"


def test_envi() -> None:
    assert render("envi", as_view(FakeView()), ALL) == (
        "Environment:\n"
        f"zookeeper.version={VERSION}\n"
        "host.name=localhost\n"
        "java.version=17.0.15\n"
        "os.memory.free=369MB\n"
    )


def test_mntr_core_keys_then_extras() -> None:
    view = FakeView(extra=[("peer_state", "following - broadcast"), ("quorum_size", 3),
                           ("connection_drop_probability", 0.0), ("max_client_response_size", -1),
                           ("uptime", 1), ("flag", True), ("nothing", None)])
    lines = render("mntr", as_view(view), ALL).splitlines()
    assert lines == [
        f"zk_version\t{VERSION}",
        "zk_server_state\tstandalone",
        "zk_avg_latency\t2.2208",
        "zk_max_latency\t30",
        "zk_min_latency\t0",
        "zk_packets_received\t165",
        "zk_packets_sent\t165",
        "zk_num_alive_connections\t3",
        "zk_outstanding_requests\t0",
        "zk_uptime\t13588",
        "zk_znode_count\t150",
        "zk_watch_count\t4",
        "zk_ephemerals_count\t3",
        "zk_approximate_data_size\t2464",
        "zk_global_sessions\t2",
        "zk_local_sessions\t0",
        "zk_open_file_descriptor_count\t43",
        "zk_max_file_descriptor_count\t20000",
        "zk_auth_failed_count\t0",
        "zk_peer_state\tfollowing - broadcast",
        "zk_quorum_size\t3",
        "zk_connection_drop_probability\t0.0",
        "zk_max_client_response_size\t-1",
        "zk_flag\ttrue",
        "zk_nothing\tnull",
    ]


def test_mntr_avg_latency_is_a_java_double_even_when_whole() -> None:
    text = render("mntr", as_view(FakeView(avg_latency_ms=0)), ALL)
    assert "zk_avg_latency\t0.0\n" in text


# ------------------------------------------------------------ actions

def test_resets_and_trace_mask() -> None:
    view = FakeView()
    assert render("crst", as_view(view), ALL) == "Connection stats reset.\n"
    assert render("srst", as_view(view), ALL) == "Server stats reset.\n"
    assert render("stmk", as_view(view), ALL, argument=-2) == "-2"
    assert view.calls == ["crst", "srst", "stmk -2"]
    assert render("gtmk", as_view(view), ALL) == "-2"
    with pytest.raises(ValueError):
        render("stmk", as_view(view), ALL)


def test_unknown_word_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        render("kill", as_view(FakeView()), ALL)


# ------------------------------------------------------------ whitelist and serving

@pytest.mark.parametrize("word", sorted(COMMAND_NAMES - {"srvr"}))
def test_not_whitelisted(word: str) -> None:
    view = FakeView()
    assert render(word, as_view(view), frozenset({"srvr"}), argument=1) == (
        f"{word} is not executed because it is not in the whitelist.\n")
    assert view.calls == []


@pytest.mark.parametrize("word", ["srvr", "stat", "mntr", "conf", "cons", "crst", "srst",
                                  "dump", "dirs", "wchs", "wchc", "wchp"])
def test_not_serving(word: str) -> None:
    view = FakeView(serving=False)
    assert render(word, as_view(view), ALL) == NOT_SERVING + "\n"
    assert view.calls == []


def test_not_serving_special_cases() -> None:
    view = as_view(FakeView(serving=False))
    assert NOT_SERVING == "This ZooKeeper instance is not currently serving requests"
    assert render("hash", view, ALL) == NOT_SERVING
    assert render("isro", view, ALL) == "null"
    assert render("ruok", view, ALL) == "imok"
    assert render("gtmk", view, ALL) == "306"
    assert render("envi", view, ALL).startswith("Environment:\nzookeeper.version=3.8.0-zabd-")


# ------------------------------------------------------------ number formatting

@pytest.mark.parametrize("value, text", [
    (0.0, "0.0"), (-0.0, "-0.0"), (2.2208, "2.2208"), (30.0, "30.0"), (0.001, "0.001"),
    (1e-4, "1.0E-4"), (5e-4, "5.0E-4"), (1234567.0, "1234567.0"), (1e7, "1.0E7"),
    (12345678.9, "1.23456789E7"), (-0.5, "-0.5"), (float("nan"), "NaN"),
    (float("inf"), "Infinity"),
])
def test_java_double(value: float, text: str) -> None:
    assert java_double(value) == text
