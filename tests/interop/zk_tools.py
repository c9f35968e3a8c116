"""ZooKeeper's own file tools (SnapshotFormatter, TxnLogToolkit), and what counts as a complaint from them.

Neither tool checks everything: SnapshotFormatter ignores both checksums and
TxnLogToolkit exits 0 after printing a CRC ERROR, so "no complaint" is read
from their output, not only their exit status.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.interop.datadir_tools import NodeView
from zabd.harness.commands import zookeeper_classpath

TOOL_TIMEOUT = 60.0
SNAPSHOT_FORMATTER = "org.apache.zookeeper.server.SnapshotFormatter"
TXN_LOG_TOOLKIT = "org.apache.zookeeper.server.persistence.TxnLogToolkit"


# ---- ZooKeeper's file tools ------------------------------------------------------


@dataclass(frozen=True)
class ToolRun:
    file: Path
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"--- {self.file} (exit {self.returncode}) stdout:\n{self.stdout[-6000:]}\n"
            f"--- stderr (without banner):\n{_without_banner(self.stderr)[-4000:]}"
        )


def _without_banner(stderr: str) -> str:
    return "\n".join(line for line in stderr.splitlines() if "ZooKeeperServer - " not in line)


def run_tool(main_class: str, file: Path, *flags: str) -> ToolRun:
    java = shutil.which("java")
    if java is None:
        raise FileNotFoundError("java not found on PATH (needed for ZooKeeper's tools)")
    done = subprocess.run(
        [java, "-cp", zookeeper_classpath(), main_class, *flags, str(file)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=TOOL_TIMEOUT, check=False,
    )
    return ToolRun(file, done.returncode, done.stdout.decode(errors="replace"),
                   done.stderr.decode(errors="replace"))


def run_tools(snapshots: Iterable[Path], logs: Iterable[Path]) -> tuple[list[ToolRun], list[ToolRun]]:
    """SnapshotFormatter -d on each snapshot and TxnLogToolkit -d on each log, a few JVMs at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        snap_runs = [pool.submit(run_tool, SNAPSHOT_FORMATTER, path, "-d") for path in snapshots]
        log_runs = [pool.submit(run_tool, TXN_LOG_TOOLKIT, path, "-d") for path in logs]
        return [f.result() for f in snap_runs], [f.result() for f in log_runs]


@dataclass
class SnapshotDump:
    """SnapshotFormatter -d output: stored node fields (raw StatPersisted) and sessions."""

    nodes: dict[str, dict[str, str]]
    count: int
    last_zxid: int
    sessions: list[str]


def snapshot_formatter_complaints(run: ToolRun) -> list[str]:
    """Why ``run`` is not a clean dump ([] if clean).

    SnapshotFormatter does not verify the checksums; only structure shows here.
    """
    problems = []
    if run.returncode != 0:
        problems.append(f"exit status {run.returncode}")
    if "Exception" in run.stdout or "Exception" in run.stderr:
        problems.append("an exception was printed")
    if not run.stdout.startswith("ZNode Details (count="):
        problems.append("stdout does not start with 'ZNode Details (count='")
    if not re.search(r"^Last zxid: 0x[0-9a-f]+$", run.stdout, re.M):
        problems.append("no 'Last zxid:' line")
    if not problems:
        dump = parse_snapshot_dump(run.stdout)
        # ZooKeeper's node map holds the root twice ("" and "/"), and count is its size.
        if dump.count != len(dump.nodes) + 1:
            problems.append(f"count={dump.count} but {len(dump.nodes)} nodes listed")
        orphans = [p for p in dump.nodes if p != "/" and _parent(p) not in dump.nodes]
        if orphans:
            problems.append(f"nodes without a parent: {orphans[:5]}")
    return problems


def parse_snapshot_dump(stdout: str) -> SnapshotDump:
    sections = stdout.split("\n----\n")
    count = int(re.match(r"ZNode Details \(count=(\d+)\):", stdout)[1])  # type: ignore[index]
    nodes: dict[str, dict[str, str]] = {}
    sessions: list[str] = []
    for section in sections[1:]:
        lines = section.splitlines()
        if not lines:
            continue
        if lines[0].startswith("Session Details"):
            continue
        if lines[0].startswith("/"):
            fields = {}
            for line in lines[1:]:
                key, _, value = line.strip().partition(" = ")
                fields[key] = value
            nodes[lines[0]] = fields
        elif lines[0].startswith("0x"):
            sessions.extend(line for line in lines if line.startswith("0x"))
    last = re.search(r"^Last zxid: 0x([0-9a-f]+)$", stdout, re.M)
    return SnapshotDump(nodes, count, int(last[1], 16) if last else -1, sessions)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


TXN_ZXID = re.compile(r" zxid 0x([0-9a-f]+) ")


def txn_log_toolkit_complaints(run: ToolRun) -> list[str]:
    problems = []
    if run.returncode != 0:
        problems.append(f"exit status {run.returncode}")
    if not run.stdout.startswith("ZooKeeper Transactional Log File with dbid 0 txnlog format version 2"):
        problems.append("no 'ZooKeeper Transactional Log File ...' header line")
    if not re.search(r"^EOF reached after \d+ txns\.$", run.stdout, re.M):
        problems.append("no 'EOF reached after N txns.' line")
    for marker in ("CRC ERROR", "Last transaction was partial", "Exception"):
        if marker in run.stdout or marker in run.stderr:
            problems.append(f"printed {marker!r}")
    zxids = logged_zxids(run)
    if zxids and zxids != list(range(zxids[0], zxids[0] + len(zxids))):
        problems.append("zxids in the file are not consecutive")
    stated = re.search(r"^EOF reached after (\d+) txns\.$", run.stdout, re.M)
    if stated and int(stated[1]) != len(zxids):
        problems.append(f"says {stated[1]} txns, printed {len(zxids)}")
    return problems


def logged_zxids(run: ToolRun) -> list[int]:
    """Zxids of the txn lines TxnLogToolkit printed, in file order."""
    return [int(match[1], 16) for match in TXN_ZXID.finditer(run.stdout)]


def client_view_of_stored(fields: Mapping[str, str], child_count: int) -> dict[str, int]:
    """The client-visible Stat values derivable from a SnapshotFormatter node entry."""
    owner = int(fields["ephemeralOwner"], 16)
    return {
        "czxid": int(fields["cZxid"], 16),
        "mzxid": int(fields["mZxid"], 16),
        "pzxid": int(fields["pZxid"], 16),
        "version": int(fields["dataVersion"]),
        # clients see 2 * stored cversion - numChildren; containers and TTL nodes show owner 0
        "cversion": 2 * int(fields["cversion"]) - child_count,
        "ephemeralOwner": 0 if owner >= 1 << 63 else owner,
    }


def client_view(node: NodeView) -> dict[str, int]:
    czxid, mzxid, _ctime, _mtime, version, cversion, _aversion, owner, _length, _children, pzxid = node.stat
    return {"czxid": czxid, "mzxid": mzxid, "pzxid": pzxid, "version": version,
            "cversion": cversion, "ephemeralOwner": owner}


def count_children(paths: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in paths:
        if path != "/":
            counts[_parent(path)] = counts.get(_parent(path), 0) + 1
    return counts


def snapshot_disagreements(dump: SnapshotDump, snapshot_zxid: int, final: Mapping[str, NodeView]) -> list[str]:
    """Nodes of the final tree untouched since ``snapshot_zxid`` that the snapshot shows otherwise.

    A snapshot named Z is fuzzy but starts after txn Z: a node whose czxid,
    mzxid and pzxid are all <= Z at the end existed unchanged since Z, so the
    snapshot must hold it with the same data and stat (aversion excepted:
    setACL leaves no zxid in the Stat; times are printed in the JVM's zone).
    """
    children = count_children(dump.nodes)
    problems = []
    for path, node in sorted(final.items()):
        if max(node.czxid, node.mzxid, node.pzxid) > snapshot_zxid:
            continue
        fields = dump.nodes.get(path)
        if fields is None:
            problems.append(f"{path}: missing from the snapshot")
            continue
        stored = client_view_of_stored(fields, children.get(path, 0))
        if stored != client_view(node):
            problems.append(f"{path}: snapshot {stored} != served {client_view(node)}")
        if base64.b64decode(fields.get("data", "")) != (node.data or b""):
            problems.append(f"{path}: snapshot data {fields.get('data')!r} != served {node.data!r}")
    return problems
