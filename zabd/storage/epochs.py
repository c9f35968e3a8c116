# -*- test-case-name: tests.unit.test_epochs -*-
"""The ``acceptedEpoch`` and ``currentEpoch`` files of a quorum peer (protocol doc 4.3).

Both live in the snapshot directory (``<dataDir>/version-2``) and hold one
epoch as decimal ASCII with no newline. A write goes to ``<name>.tmp``, is
fsynced, renamed over the file, and the directory is fsynced. The startup
rules are QuorumPeer.loadDataBase's (branch-3.8), so a data directory moves
between zabd and ZooKeeper unchanged. Blocking I/O: startup, or the syncer.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from twisted.logger import Logger

from zabd.core.zxid import epoch_of
from zabd.java.limits import parse_long
from zabd.storage.layout import fsync_directory

__all__ = ["Epochs", "EpochFileError", "epoch_of", "read_epochs"]

ACCEPTED_EPOCH = "acceptedEpoch"
CURRENT_EPOCH = "currentEpoch"
#: Present while a learner moves to a new epoch (3.8's name): from NEWLEADER until currentEpoch is written.
UPDATING_EPOCH = "updatingEpoch"
TEMP_SUFFIX = ".tmp"  # AtomicFileOutputStream's: the same name plus .tmp

log = Logger()


class EpochFileError(Exception):
    """An epoch file that stops startup; ``path`` names it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Epochs:
    accepted: int
    current: int


def read_epochs(snap_dir: str, last_logged_zxid: int) -> Epochs:
    """Read both files, creating a missing one with the last zxid's epoch.

    As 3.8 does: a currentEpoch older than the last zxid's epoch is an error,
    unless ``updatingEpoch`` exists (a learner's sync made txns of the new
    epoch durable, then the process died before it wrote currentEpoch: the
    last zxid's epoch is taken) or ``currentEpoch.tmp`` does (a crash between
    writing it and the rename: its value is taken); an acceptedEpoch below
    currentEpoch is an error. A leftover ``updatingEpoch`` is removed.
    """
    zxid_epoch = epoch_of(last_logged_zxid)
    current_path = os.path.join(snap_dir, CURRENT_EPOCH)
    current = _read_or_create(snap_dir, CURRENT_EPOCH, zxid_epoch)
    updating = os.path.join(snap_dir, UPDATING_EPOCH)
    if os.path.lexists(updating):
        if zxid_epoch > current:
            log.info("{path} found: the sync's txns were durable before the epoch; setting the current "
                     "epoch to {epoch}", path=updating, epoch=zxid_epoch)
            write_epoch(snap_dir, CURRENT_EPOCH, zxid_epoch)
            current = zxid_epoch
        mark_updating_epoch(snap_dir, False)
    if zxid_epoch > current:
        temp_path = current_path + TEMP_SUFFIX
        if not os.path.exists(temp_path):
            raise EpochFileError(
                current_path,
                f"the current epoch {current} is older than the last zxid {last_logged_zxid:#x} (epoch {zxid_epoch})",
            )
        current = _read_long(temp_path)
        log.info("{path} found: setting the current epoch to {epoch}", path=temp_path, epoch=current)
        write_epoch(snap_dir, CURRENT_EPOCH, current)
    accepted = _read_or_create(snap_dir, ACCEPTED_EPOCH, zxid_epoch)
    if accepted < current:
        raise EpochFileError(
            os.path.join(snap_dir, ACCEPTED_EPOCH),
            f"the accepted epoch {accepted} is less than the current epoch {current}",
        )
    return Epochs(accepted, current)


def write_epoch(snap_dir: str, name: str, value: int) -> None:
    """Replace ``snap_dir/name`` atomically and durably with ``value``."""
    path = os.path.join(snap_dir, name)
    temp_path = path + TEMP_SUFFIX
    try:
        with open(temp_path, "wb") as f:
            f.write(str(value).encode("ascii"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_path, path)
    except OSError as e:
        # As AtomicFileOutputStream: a failed write leaves no .tmp to mislead the next start.
        try:
            os.remove(temp_path)
        except OSError:
            pass
        raise EpochFileError(path, f"cannot write: {e.strerror or e}") from e
    fsync_directory(snap_dir)


def mark_updating_epoch(snap_dir: str, present: bool) -> None:
    """Create (durably) or remove ``updatingEpoch``: a learner holds it while it moves to a new epoch."""
    path = os.path.join(snap_dir, UPDATING_EPOCH)
    try:
        if present:
            with open(path, "wb") as f:
                os.fsync(f.fileno())
        else:
            os.remove(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise EpochFileError(path, f"cannot {'create' if present else 'remove'}: {e.strerror or e}") from e
    fsync_directory(snap_dir)


def _read_or_create(snap_dir: str, name: str, default: int) -> int:
    path = os.path.join(snap_dir, name)
    if not os.path.lexists(path):
        log.info("{path} not found: creating it with the epoch of the last zxid, {epoch}", path=path, epoch=default)
        write_epoch(snap_dir, name, default)
        return default
    return _read_long(path)


def _read_long(path: str) -> int:
    """The first line of the file as a Java long (readLine, then Long.parseLong)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise EpochFileError(path, f"cannot read: {e.strerror or e}") from e
    line = re.split(rb"\r\n|\r|\n", raw, maxsplit=1)[0]
    text = line.decode("ascii", "replace")
    epoch = parse_long(text) if raw else None
    if epoch is None:
        raise EpochFileError(path, f"not an epoch: {text!r}")
    return epoch
