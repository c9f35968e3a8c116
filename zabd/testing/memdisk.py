# -*- test-case-name: tests.unit.test_simulation -*-
"""An in-memory disk that loses what was not synced when its node crashes, and an epoch store on it.

What :class:`MemoryDisk` models, after POSIX rather than any one file system:

- A file's bytes as written are what the running process reads; ``fsync(path)``
  makes them durable. A crash brings every file back to its durable bytes.
  With ``torn_writes`` a file that only grew keeps a random prefix of its
  unsynced tail instead (a torn write); overwritten or shortened files do not.
- Names (create, ``rename``, ``unlink``) are durable only after
  ``fsync_dir`` of their directory: a crash brings back the directory as of
  its last fsync. ``rename`` is atomic. Directories exist implicitly.
- ``inject`` arms one I/O error (EIO, ENOSPC) for a later write or fsync: it
  raises :class:`DiskFault`, an OSError. A failed write may leave a prefix of
  its bytes (ENOSPC); a failed fsync makes nothing durable (later fsyncs of
  the same file may still succeed). A crash disarms what did not fire.

:class:`MemoryEpochStore` keeps acceptedEpoch/currentEpoch on it, and
zabd.testing.memlog a txn log.
"""
from __future__ import annotations

import errno
import os
import posixpath
import random
from dataclasses import dataclass, field

from zabd.storage.epochs import TEMP_SUFFIX
from zabd.storage.layout import VERSION_DIR



#: What ``MemoryDisk.inject`` can make fail: "write" (write, append) or "fsync" (fsync, fsync_dir).
DISK_OPS = ("write", "fsync")
DISK_ERRORS = (errno.EIO, errno.ENOSPC)


class DiskFault(OSError):
    """An I/O error injected on a MemoryDisk (``inject``); ``disk`` is the disk it came from."""

    def __init__(self, error: int, op: str, path: str, disk: MemoryDisk) -> None:
        super().__init__(error, f"{os.strerror(error)} (injected on {op})", path)
        self.op = op
        self.disk = disk


@dataclass(slots=True)
class _ArmedFault:
    op: str
    error: int
    countdown: int


@dataclass(eq=False, slots=True)
class _Inode:
    written: bytearray = field(default_factory=bytearray)
    durable: bytes = b""


class MemoryDisk:
    """Files by path, each with its written and its durable bytes; see the module docstring."""

    def __init__(self, rng: random.Random | None = None, *, torn_writes: bool = False) -> None:
        if torn_writes and rng is None:
            raise ValueError("torn writes need an rng to choose what survives")
        self.rng = rng
        self.torn_writes = torn_writes
        #: Goes up by one per crash: whatever was opened before it belongs to a dead process.
        self.generation = 0
        self._names: dict[str, _Inode] = {}
        self._durable_names: dict[str, _Inode] = {}
        self._armed: list[_ArmedFault] = []
        #: The injected faults that fired, oldest first.
        self.fired: list[DiskFault] = []

    def inject(self, op: str, error: int, *, after: int = 0) -> None:
        """Make the ``op`` after the next ``after`` ones ("write" or "fsync") fail once with ``error``."""
        if op not in DISK_OPS or after < 0:
            raise ValueError(f"bad fault {op} after {after}")
        self._armed.append(_ArmedFault(op, error, after))

    def disarm(self) -> None:
        """Forget every injected fault that has not fired."""
        self._armed.clear()

    def _fault(self, op: str, path: str) -> DiskFault | None:
        """The fault due for this ``op`` now, if one is armed (each armed fault counts its op down)."""
        if not self._armed:
            return None
        due = None
        for armed in self._armed:
            if armed.op == op:
                if armed.countdown == 0 and due is None:
                    due = armed
                elif armed.countdown > 0:
                    armed.countdown -= 1
        if due is None:
            return None
        self._armed.remove(due)
        fault = DiskFault(due.error, op, path, self)
        self.fired.append(fault)
        return fault

    def _short(self, fault: DiskFault, data: bytes) -> bytes:
        """What a failed write leaves: a prefix when the disk is full, nothing on EIO."""
        if fault.errno != errno.ENOSPC or not data or self.rng is None:
            return b""
        return data[:self.rng.randint(0, len(data) - 1)]

    def exists(self, path: str) -> bool:
        return path in self._names

    def read(self, path: str, *, durable: bool = False) -> bytes:
        """The bytes the process sees, or with ``durable`` those a crash now would leave."""
        names = self._durable_names if durable else self._names
        inode = names.get(path)
        if inode is None:
            raise FileNotFoundError(path)
        return inode.durable if durable else bytes(inode.written)

    def listdir(self, directory: str, *, durable: bool = False) -> list[str]:
        names = self._durable_names if durable else self._names
        return sorted(posixpath.basename(path) for path in names if posixpath.dirname(path) == directory)

    def write(self, path: str, data: bytes) -> None:
        """Create or empty the file, then write ``data``."""
        inode = self._names.get(path)
        if inode is None:
            inode = self._names[path] = _Inode()
        fault = self._fault("write", path) if self._armed else None
        if fault is not None:
            inode.written[:] = self._short(fault, data)
            raise fault
        inode.written[:] = data

    def append(self, path: str, data: bytes) -> None:
        inode = self._inode(path)
        fault = self._fault("write", path) if self._armed else None
        if fault is not None:
            inode.written += self._short(fault, data)
            raise fault
        inode.written += data

    def truncate(self, path: str, size: int) -> None:
        del self._inode(path).written[size:]

    def fsync(self, path: str) -> None:
        inode = self._inode(path)
        fault = self._fault("fsync", path) if self._armed else None
        if fault is not None:
            raise fault
        inode.durable = bytes(inode.written)

    def fsync_dir(self, directory: str) -> None:
        """Make the directory's entries as they are now durable (new, renamed and removed names)."""
        fault = self._fault("fsync", directory) if self._armed else None
        if fault is not None:
            raise fault
        for path in sorted(set(self._names) | set(self._durable_names)):  # sorted: str hashes vary per run
            if posixpath.dirname(path) == directory:
                if path in self._names:
                    self._durable_names[path] = self._names[path]
                else:
                    del self._durable_names[path]

    def rename(self, source: str, target: str) -> None:
        self._names[target] = self._inode(source)
        del self._names[source]

    def unlink(self, path: str) -> None:
        self._inode(path)
        del self._names[path]

    def crash(self) -> None:
        """Power loss: names and bytes go back to what was durable (with torn tails, if modelled)."""
        self.generation += 1
        self._armed.clear()
        self._names = dict(sorted(self._durable_names.items()))  # a fixed order of RNG draws per file
        for inode in {id(inode): inode for inode in self._names.values()}.values():
            tail = self._torn_tail(inode)
            inode.durable = inode.durable + tail
            inode.written = bytearray(inode.durable)

    def _torn_tail(self, inode: _Inode) -> bytes:
        durable, written = inode.durable, inode.written
        if self.rng is None or not self.torn_writes or len(written) <= len(durable):
            return b""
        if written[:len(durable)] != durable:
            return b""
        tail = bytes(written[len(durable):])
        return tail[:self.rng.randint(0, len(tail))]

    def _inode(self, path: str) -> _Inode:
        inode = self._names.get(path)
        if inode is None:
            raise FileNotFoundError(path)
        return inode


class MemoryEpochStore:
    """acceptedEpoch / currentEpoch on a MemoryDisk, written as ZooKeeper does: temp, fsync, rename, dir fsync."""

    def __init__(self, disk: MemoryDisk, directory: str = VERSION_DIR) -> None:
        self.disk = disk
        self.directory = directory

    def read_epoch(self, name: str) -> int | None:
        """The stored epoch, or None when the file does not exist."""
        path = posixpath.join(self.directory, name)
        if not self.disk.exists(path):
            return None
        return int(self.disk.read(path).decode("ascii"))

    def write_epoch(self, name: str, value: int) -> None:
        path = posixpath.join(self.directory, name)
        temp = path + TEMP_SUFFIX
        self.disk.write(temp, str(value).encode("ascii"))
        self.disk.fsync(temp)
        self.disk.rename(temp, path)
        self.disk.fsync_dir(self.directory)
