"""Quotas through Debian's zkCli.sh (setquota, listquota, delquota) and kazoo,
against real servers with enforceQuota=true; Apache ZooKeeper 3.8 proves the
expected output. One zabd-only test covers enforceQuota off, where 3.8 logs nothing.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import QuotaExceededError

from tests.interop.conftest import kazoo_client
from tests.interop import test_zkcli
from tests.interop.test_zkcli import run_script
from zabd.harness.probes import wait_until
from zabd.harness.processes import ServerProcess, start_zabd

LOG_DEADLINE = 10.0
zkcli = test_zkcli.zkcli  # the fixture: java and Debian's zkCli.sh


@pytest.fixture(scope="module")
def server_extra_cfg() -> Mapping[str, str]:
    return {"enforceQuota": "true"}


def quota_line(path: str, limits: str) -> str:
    return f"Output quota for {path} {limits}"


def listed(path: str, limits: str, stats: str) -> list[str]:
    """listquota's output (its first line goes to stderr, merged here)."""
    return [
        f"absolute path is /zookeeper/quota{path}/zookeeper_limits",
        quota_line(path, limits),
        f"Output stat for {path} {stats}",
    ]


def wait_for_log(server: ServerProcess, text: str) -> None:
    wait_until(lambda: text in server.log_text(), LOG_DEADLINE, f"{text!r} in the {server.kind} log")


def test_setquota_listquota_delquota(zkcli: str, server: ServerProcess, node_path: str) -> None:
    p = node_path
    run = run_script(zkcli, server, [
        f"create {p} abc",                 # 0
        f"create {p}/a 12345",             # 1
        f"setquota -n 3 {p}",              # 2
        f"listquota {p}",                  # 3
        f"setquota -B 10 {p}",             # 4
        f"listquota {p}",                  # 5
        f"create {p}/b",                   # 6
        f"create {p}/c",                   # 7: over the soft count of 3
        f"set {p}/a 123456789012",         # 8: over the hard 10 bytes
        f"set {p}/a 1234",                 # 9
        f"listquota {p}",                  # 10
        f"setquota -n 2 {p}/a",            # 11
        "setquota -n 2 /zookeeper/quota/x",  # 12
        f"delquota -B {p}",                # 13
        f"listquota {p}",                  # 14
        f"set {p}/a 123456789012",         # 15: no hard limit any more
        f"delquota {p}",                   # 16
        f"listquota {p}",                  # 17
        "ls /zookeeper/quota",             # 18
        f"delquota {p}",                   # 19
        f"setquota -N 2 {p}",              # 20
        f"create {p}/d",                   # 21
        f"listquota {p}",                  # 22
    ])  # fmt: skip
    soft_count = "count=3,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
    assert run[2] == []
    assert run[3] == listed(p, soft_count, "count=2,bytes=8")
    assert run[5] == listed(p, "count=3,bytes=-1=;byteHardLimit=10;countHardLimit=-1", "count=2,bytes=8")
    assert run[6] == [f"Created {p}/b"] and run[7] == [f"Created {p}/c"]
    assert run[8] == [f"Quota has exceeded : {p}/a"]
    assert run[9] == []
    assert run[10][2] == f"Output stat for {p} count=4,bytes=7"
    assert run[11] == [f"{p}/a has a parent {p} which has a quota"]
    assert run[12] == ["cannot set a quota under the path: /zookeeper/quota"]
    assert run[14] == listed(p, soft_count, "count=4,bytes=7")
    assert run[15] == []
    assert run[17] == [f"absolute path is /zookeeper/quota{p}/zookeeper_limits", f"quota for {p} does not exist."]
    assert run[18] == ["[]"]
    assert run[19] == [f"Quota does not exist for {p}"]
    assert run[20] == ["[Warning]: the count quota you create is less than the existing count:4"]
    assert run[21] == [f"Quota has exceeded : {p}/d"]
    assert run[22] == listed(p, "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2", "count=4,bytes=15")
    wait_for_log(server, f"Quota exceeded: {p} [current count=4, softCountLimit=3]")
    wait_for_log(server, f"Quota exceeded: {p} [current bytes=15, hardByteLimit=10]")
    wait_for_log(server, f"Quota exceeded: {p} [current count=5, hardCountLimit=2]")


def test_kazoo_sees_quotaexceeded_over_a_hard_limit(
    zkcli: str, server: ServerProcess, zk: KazooClient, node_path: str
) -> None:
    p = node_path
    zk.create(p, b"")
    run = run_script(zkcli, server, [f"setquota -N 2 {p}", f"setquota -B 4 {p}"])
    assert run.blocks == [[], []]
    zk.create(f"{p}/one", b"1234")
    with pytest.raises(QuotaExceededError):
        zk.create(f"{p}/two")
    with pytest.raises(QuotaExceededError):
        zk.set(f"{p}/one", b"12345")
    # A multi over the limit fails whole.
    transaction = zk.transaction()
    transaction.set_data(f"{p}/one", b"")
    transaction.create(f"{p}/three")
    results = transaction.commit()
    assert isinstance(results[1], QuotaExceededError) and zk.get(f"{p}/one")[0] == b"1234"
    assert zk.get(f"/zookeeper/quota{p}/zookeeper_stats")[0] == b"count=2,bytes=4"
    zk.delete(f"{p}/one")
    zk.create(f"{p}/two", b"12")
    assert zk.get_children(p) == ["two"]


def test_without_enforcequota_limits_only_warn(zkcli: str, tmp_path: Path) -> None:
    with start_zabd(tmp_path) as srv, kazoo_client(srv) as zk:
        zk.create("/app", b"")
        run = run_script(zkcli, srv, ["setquota -n 1 /app", "setquota -N 2 /app"])
        assert run.blocks == [[], []]
        for name in ("a", "b", "c"):
            zk.create(f"/app/{name}")
        assert zk.get("/zookeeper/quota/app/zookeeper_stats")[0] == b"count=4,bytes=0"
        # The hard count replaces the soft one, and without enforcement it is a WARN.
        wait_for_log(srv, "Quota exceeded: /app [current count=3, hardCountLimit=2]")
        wait_for_log(srv, "Quota exceeded: /app [current count=4, hardCountLimit=2]")
        assert "softCountLimit" not in srv.log_text()
