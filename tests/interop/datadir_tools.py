"""Helpers for the data-directory interop tests.

A workload that leaves every kind of node and txn in a data directory, a full
capture of the tree as a client sees it (data, all 11 Stat fields, ACLs), the
files of a ``version-2`` directory, and ZooKeeper's own file tools
(SnapshotFormatter, TxnLogToolkit) with what counts as a complaint from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.security import ACL, CREATOR_ALL_ACL, Id, Permissions, make_acl, make_digest_acl

from tests.interop.conftest import CreateContainer, CreateTTL, kazoo_call

ROOT = "/dd"
HOLDER_ROOT = "/dd-holder"
DIGEST_USER, DIGEST_PASSWORD = "alice", "s3cret"
AUTH_DATA = [("digest", f"{DIGEST_USER}:{DIGEST_PASSWORD}")]
TTL_MS = 3_600_000  # long enough that no server expires a TTL node during a test
BULK_DEADLINE = 30.0
SNAPSHOT_TRAILER = b"\x00\x00\x00\x01/"  # a snapshot ends with the ustring "/"
SNAPSHOT_NAME = re.compile(r"snapshot\.([0-9a-f]+)")
LOG_NAME = re.compile(r"log\.([0-9a-f]+)")


# ---- the tree as a client sees it ----------------------------------------------


@dataclass(frozen=True)
class NodeView:
    data: bytes | None
    stat: tuple[int, ...]  # czxid mzxid ctime mtime version cversion aversion ephemeralOwner dataLength numChildren pzxid
    acl: tuple[tuple[int, str, str], ...]

    @property
    def czxid(self) -> int:
        return self.stat[0]

    @property
    def mzxid(self) -> int:
        return self.stat[1]

    @property
    def pzxid(self) -> int:
        return self.stat[10]


def capture_tree(client: KazooClient, top: str = "/") -> dict[str, NodeView]:
    """Every node under ``top`` (included): data, full Stat and ACL list."""
    tree: dict[str, NodeView] = {}
    pending = [top]
    while pending:
        path = pending.pop()
        data, stat = client.get(path)
        acls, _ = client.get_acls(path)
        tree[path] = NodeView(
            data, tuple(stat), tuple((a.perms, a.id.scheme, a.id.id) for a in acls)
        )
        prefix = path.rstrip("/")
        pending.extend(f"{prefix}/{child}" for child in client.get_children(path))
    return tree


def tree_differences(before: Mapping[str, NodeView], after: Mapping[str, NodeView]) -> list[str]:
    """Readable differences between two captures (empty when equal)."""
    lines = [f"only before: {p} {before[p]}" for p in sorted(before.keys() - after.keys())]
    lines += [f"only after:  {p} {after[p]}" for p in sorted(after.keys() - before.keys())]
    for path in sorted(before.keys() & after.keys()):
        if before[path] != after[path]:
            lines.append(f"differs: {path}\n  before {before[path]}\n  after  {after[path]}")
    return lines


def max_zxid(tree: Mapping[str, NodeView]) -> int:
    return max(max(node.czxid, node.mzxid, node.pzxid) for node in tree.values())


# ---- workloads -----------------------------------------------------------------


def write_workload(client: KazooClient, ephemeral_server_address: str) -> None:
    """Nodes of every kind under ROOT. ``client`` must carry AUTH_DATA.

    A short-lived second session (on ``ephemeral_server_address``) creates an
    ephemeral and closes, so a closeSession txn deletes a node.
    """
    client.create(ROOT, b"root")
    client.create(f"{ROOT}/nested/a/b/c", b"leaf", makepath=True)
    client.set(f"{ROOT}/nested/a", b"middle")
    client.create(f"{ROOT}/binary", bytes(range(256)) * 3)
    client.create(f"{ROOT}/empty", b"")
    client.create(f"{ROOT}/null", None)
    client.create(f"{ROOT}/versions", b"v0")
    for version in range(1, 6):
        client.set(f"{ROOT}/versions", f"v{version}".encode(), version=version - 1)
    client.set(f"{ROOT}/empty", None)  # version 1, still no data

    digest_all = make_digest_acl(DIGEST_USER, DIGEST_PASSWORD, all=True)
    world_read = make_acl("world", "anyone", read=True)
    client.create(f"{ROOT}/acl-digest", b"d", acl=[digest_all, world_read])
    client.create(f"{ROOT}/acl-digest-only", b"secret", acl=[digest_all])
    client.create(f"{ROOT}/acl-world-rw", b"rw", acl=[make_acl("world", "anyone", read=True, write=True)])
    client.create(f"{ROOT}/acl-world-rcd", b"rcd",
                  acl=[make_acl("world", "anyone", read=True, create=True, delete=True)])
    client.create(f"{ROOT}/acl-ip", b"ip", acl=[make_acl("ip", "127.0.0.1", all=True), world_read])
    client.create(f"{ROOT}/acl-creator", b"mine", acl=CREATOR_ALL_ACL)
    client.create(f"{ROOT}/acl-changed", b"c")
    client.set_acls(f"{ROOT}/acl-changed", [world_read, digest_all], version=0)
    client.set_acls(f"{ROOT}/acl-changed", [ACL(Permissions.ALL, Id("world", "anyone"))], version=1)

    client.create(f"{ROOT}/seq")
    made = [client.create(f"{ROOT}/seq/s-", bytes([n]), sequence=True) for n in range(6)]
    client.delete(made[1])
    client.delete(made[4])
    client.create(f"{ROOT}/deletes")
    for name in ("x", "y", "z"):
        client.create(f"{ROOT}/deletes/{name}", name.encode())
    for name in ("x", "y", "z"):
        client.delete(f"{ROOT}/deletes/{name}")

    client.create(f"{ROOT}/multi", b"m")
    transaction = client.transaction()
    transaction.create(f"{ROOT}/multi/one", b"1")
    transaction.create(f"{ROOT}/multi/two", b"2")
    transaction.set_data(f"{ROOT}/multi/one", b"one")
    transaction.delete(f"{ROOT}/multi/two")
    transaction.check(f"{ROOT}/multi", 0)
    transaction.create(f"{ROOT}/multi/seq-", b"s", sequence=True)
    results = transaction.commit()
    assert not any(isinstance(result, Exception) for result in results), results

    kazoo_call(client, CreateContainer(f"{ROOT}/container", b"box"))
    client.create(f"{ROOT}/container/child", b"kept")  # a container with children is never reaped
    kazoo_call(client, CreateContainer(f"{ROOT}/container-unused"))  # cversion 0: never reaped
    kazoo_call(client, CreateTTL(f"{ROOT}/ttl", TTL_MS, b"ttl"))
    kazoo_call(client, CreateTTL(f"{ROOT}/ttl-seq-", TTL_MS, b"ttl-seq", sequential=True))

    short = KazooClient(hosts=ephemeral_server_address, timeout=10.0)
    short.start(timeout=15.0)
    try:
        short.create(f"{ROOT}/deletes/gone-with-session", b"e", ephemeral=True)
    finally:
        short.stop()  # closeSession deletes it: /dd/deletes gets a new pzxid
        short.close()


def write_bulk(client: KazooClient, count: int) -> None:
    """About ``2.5 * count`` small txns: creates, setData on each, then deletes of half.

    Requests are pipelined (one session keeps them in order), so the server can
    group its fsyncs and the test stays short.
    """
    client.create(f"{ROOT}/bulk")
    paths = [f"{ROOT}/bulk/n-{index:04d}" for index in range(count)]
    pending = [client.create_async(path, path.encode()) for path in paths]
    pending += [client.set_async(path, b"updated " + path.encode()) for path in paths]
    pending += [client.delete_async(path) for path in paths[::2]]
    for result in pending:
        result.get(timeout=BULK_DEADLINE)


def create_ephemerals(client: KazooClient) -> list[str]:
    """Ephemerals owned by ``client``'s session (which must outlive a server switch)."""
    client.create(HOLDER_ROOT, b"holder")
    return [
        client.create(f"{HOLDER_ROOT}/eph", b"held", ephemeral=True),
        client.create(f"{HOLDER_ROOT}/eph-", b"held-seq", ephemeral=True, sequence=True),
    ]


# ---- data directory files ------------------------------------------------------


@dataclass(frozen=True)
class DataFiles:
    snapshots: list[tuple[int, Path]] = field(default_factory=list)  # (zxid, path), oldest first
    logs: list[tuple[int, Path]] = field(default_factory=list)


def data_files(*dirs: Path) -> DataFiles:
    """snapshot.<hex> and log.<hex> in each ``<dir>/version-2``, sorted by zxid."""
    files = DataFiles()
    for directory in dirs:
        version_dir = directory / "version-2"
        if not version_dir.is_dir():
            continue
        for path in version_dir.iterdir():
            if match := SNAPSHOT_NAME.fullmatch(path.name):
                files.snapshots.append((int(match[1], 16), path))
            elif match := LOG_NAME.fullmatch(path.name):
                files.logs.append((int(match[1], 16), path))
    files.snapshots.sort()
    files.logs.sort()
    return files


def snapshots_sealed(*dirs: Path) -> bool:
    """True when every snapshot file is complete (ends with ZooKeeper's "/" trailer)."""
    for _, path in data_files(*dirs).snapshots:
        with open(path, "rb") as snapshot:
            snapshot.seek(0, 2)
            if snapshot.tell() < len(SNAPSHOT_TRAILER):
                return False
            snapshot.seek(-len(SNAPSHOT_TRAILER), 2)
            if snapshot.read() != SNAPSHOT_TRAILER:
                return False
    return True


def names_zookeeper_would_misread(*dirs: Path) -> list[str]:
    """Files ZooKeeper would take for a log or snapshot although they are not canonical ones.

    ZooKeeper reads the zxid from the second dot-separated part of a name, so
    ``log.f.tmp`` is a log (and a 4-byte one stops its startup) and a
    ``snapshot.8.tmp`` with the "/" trailer is a snapshot candidate.
    """
    odd = []
    for directory in dirs:
        version_dir = directory / "version-2"
        for path in version_dir.iterdir() if version_dir.is_dir() else ():
            prefix, _, rest = path.name.partition(".")
            zxid = rest.split(".")[0]
            if prefix not in ("log", "snapshot") or not re.fullmatch(r"[0-9a-fA-F]+", zxid):
                continue
            if (SNAPSHOT_NAME if prefix == "snapshot" else LOG_NAME).fullmatch(path.name):
                continue
            if prefix == "log" or path.read_bytes()[-len(SNAPSHOT_TRAILER):] == SNAPSHOT_TRAILER:
                odd.append(str(path))
    return odd


# ---- ZooKeeper's log: did recovery complain? -----------------------------------

RECOVERY_COMPLAINTS = re.compile(
    r"problem reading snap file|CRC|Last transaction was partial|Unreasonable length"
    r"|Digests are not matching|digest mismatch|Digest in log|No snapshot found"
    r"|invalid snapshot|exiting abnormally|Not able to find valid snapshots"
    r"|has snapshot files|has log files|highestZxid"
)
READING_SNAPSHOT = re.compile(r"Reading snapshot (\S+)")


def zookeeper_recovery_complaints(log_text: str) -> list[str]:
    return [line for line in log_text.splitlines() if RECOVERY_COMPLAINTS.search(line)]


def snapshots_read(log_text: str) -> list[str]:
    """Snapshot paths ZooKeeper says it read, in order (more than one means a fallback)."""
    return READING_SNAPSHOT.findall(log_text)
