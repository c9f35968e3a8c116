# -*- test-case-name: tests.unit.test_recovery -*-
"""Writing a snapshot file so that a crash never leaves a half-written one.

The bytes go to ``.<name>.tmp``, which is fsynced and renamed into place, and
the directory is fsynced so the rename itself survives a crash.  Each method
blocks: the server calls them in its syncer thread, or before it serves.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import BinaryIO

from zabd.storage.layout import fsync_directory

TEMP_SUFFIX = ".tmp"


class SnapshotFile:
    """A snapshot being written under a hidden name, renamed into place only once it is durable."""

    def __init__(self, path: str) -> None:
        self.path = path
        # Hidden, so that neither ZooKeeper nor a purge takes it for a snapshot.
        directory, name = os.path.split(path)
        self.temp_path = os.path.join(directory, f".{name}{TEMP_SUFFIX}")
        self._file: BinaryIO | None = None
        self.size = 0

    def open(self) -> None:
        self._file = open(self.temp_path, "wb")

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        f = self._file
        assert f is not None
        f.flush()
        os.fsync(f.fileno())
        f.close()
        self._file = None
        os.replace(self.temp_path, self.path)
        fsync_directory(os.path.dirname(self.path) or ".")

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.remove(self.temp_path)
        except FileNotFoundError:
            pass


def write_snapshot(path: str, chunks: Iterable[bytes]) -> int:
    """Write a whole snapshot now (at startup, before serving); return its size."""
    snap = SnapshotFile(path)
    snap.open()
    try:
        for chunk in chunks:
            snap.write(chunk)
        snap.finish()
    except BaseException:
        snap.abort()
        raise
    return snap.size


def remove_temporaries(directory: str) -> None:
    """Drop the leftovers of snapshots a crash interrupted."""
    for name in os.listdir(directory):
        if name.startswith(".snapshot.") and name.endswith(TEMP_SUFFIX):
            os.remove(os.path.join(directory, name))
