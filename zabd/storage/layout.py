# -*- test-case-name: tests.unit.test_recovery -*-
"""Where ZooKeeper keeps its files, and which of them a recovery reads.

Both directories get a ``version-2`` subdirectory; file names carry a zxid in
lowercase hex without leading zeros (``log.100000001``, ``snapshot.0``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

LOG_PREFIX = "log"
SNAPSHOT_PREFIX = "snapshot"
VERSION_DIR = "version-2"
#: ZooKeeper looks at no more than this many snapshots when loading.
SNAPSHOTS_TRIED = 100
_HEX_ZXID = re.compile(r"\+?[0-9a-fA-F]+")


def zxid_in_name(name: str, prefix: str) -> int | None:
    """The zxid in ``<prefix>.<hex>[.<suffix>]``, or None for any other name.

    As ZooKeeper's Long.parseLong(part, 16): hex digits only (no ``0x``, no
    ``_``), an optional ``+``, and below 2**63.
    """
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != prefix or not _HEX_ZXID.fullmatch(parts[1]):
        return None
    zxid = int(parts[1], 16)
    return zxid if zxid < 1 << 63 else None


def log_name(zxid: int) -> str:
    return f"{LOG_PREFIX}.{zxid:x}"


def snapshot_name(zxid: int) -> str:
    return f"{SNAPSHOT_PREFIX}.{zxid:x}"


@dataclass(frozen=True)
class DataDirs:
    """The snapshot directory and the txn log directory (often the same)."""

    snap_dir: str
    log_dir: str

    @classmethod
    def of(cls, data_dir: str, data_log_dir: str | None = None) -> DataDirs:
        return cls(os.path.join(data_dir, VERSION_DIR), os.path.join(data_log_dir or data_dir, VERSION_DIR))

    @property
    def initialize_marker(self) -> str:
        """``<dataDir>/initialize``: trust an empty database once."""
        return os.path.join(os.path.dirname(self.snap_dir), "initialize")

    def create(self) -> None:
        os.makedirs(self.snap_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)

    def snapshots(self) -> list[tuple[int, str]]:
        """Every snapshot file, newest first."""
        return sorted(_listed(self.snap_dir, SNAPSHOT_PREFIX), reverse=True)

    def logs(self) -> list[tuple[int, str]]:
        """Every txn log file, oldest first."""
        return sorted(_listed(self.log_dir, LOG_PREFIX))

    def logs_from(self, zxid: int) -> list[tuple[int, str]]:
        """The logs that can hold txns after ``zxid`` (ZooKeeper's getLogFiles).

        That is every file starting after ``zxid``, plus the newest one that
        starts at or before it: a file is named after its first txn only.
        """
        files = self.logs()
        floor = 0
        for start, _ in files:
            if start > zxid:
                break
            floor = start
        return [(start, path) for start, path in files if start >= floor]


def fsync_directory(path: str) -> None:
    """Make the entries of a directory (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _listed(directory: str, prefix: str) -> list[tuple[int, str]]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        zxid = zxid_in_name(name, prefix)
        if zxid is not None:
            found.append((zxid, os.path.join(directory, name)))
    return found
