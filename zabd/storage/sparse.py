# -*- test-case-name: tests.unit.test_logformat -*-
"""Where a preallocated (sparse, zero-padded) file's data ends, without reading its holes.

ZooKeeper preallocates txn logs and pads them with zeros; the scan in
:mod:`zabd.storage.logformat` needs the end of the real data, and reading
gigabytes of padding to find it would be slow. SEEK_DATA/SEEK_HOLE skip it.
"""
from __future__ import annotations

import errno
import mmap
import os

_CHUNK = 1 << 20  # bytes examined per step, backwards from the end


def nonzero_end(fd: int, mm: mmap.mmap, start: int, size: int) -> int:
    """One past the last nonzero byte at or after start (start if none), skipping holes."""
    for region_start, region_end in reversed(data_regions(fd, start, size)):
        hi = region_end
        while hi > region_start:
            lo = max(region_start, hi - _CHUNK)
            stripped = len(mm[lo:hi].rstrip(b"\0"))
            if stripped:
                return lo + stripped
            hi = lo
    return start


def data_regions(fd: int, start: int, size: int) -> list[tuple[int, int]]:
    """The [start, end) ranges of the file that may hold data; preallocated logs are sparse."""
    regions: list[tuple[int, int]] = []
    pos = start
    try:
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # only a hole from pos to EOF
                    break
                raise
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
            regions.append((data, hole))
            pos = hole
    except (OSError, AttributeError):  # no SEEK_DATA here: treat the whole file as data
        return [(start, size)]
    return regions
