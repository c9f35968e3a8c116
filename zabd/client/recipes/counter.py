"""Counter: kazoo's shared counter, changed by versioned sets retried until one lands.

The node holds the value as ASCII text (``repr`` of an int or float, as
kazoo writes it), or with ``support_curator`` as a 4-byte big-endian int, the
layout of Curator's SharedCount. An empty node reads as ``default``.

    counter = Counter(client, "/jobs/done")
    new = await counter.add(1)       # counter.pre_value, counter.post_value
"""
from __future__ import annotations

import struct
from typing import Union

from twisted.internet.defer import Deferred

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import BadVersionError

__all__ = ["Counter"]

Number = Union[int, float]
_CURATOR = struct.Struct(">i")


class Counter:
    """A number at ``path`` that many clients change by ``add``/``subtract`` without losing updates.

    ``pre_value`` and ``post_value`` are the value before and after this
    client's last successful change (a concurrent change by another client
    may lie between them and the previous call's ``post_value``).
    """

    def __init__(self, client: ZooKeeperClient, path: str, default: Number = 0,
                 support_curator: bool = False) -> None:
        if support_curator and not isinstance(default, int):
            raise TypeError("with support_curator the default must be an int")
        self.client = client
        self.path = path
        self.default = default
        self.default_type: type = type(default)
        self.support_curator = support_curator
        self.pre_value: Number | None = None
        self.post_value: Number | None = None
        self._ensured = False

    def _decode(self, raw: bytes) -> Number:
        if not raw:
            return self.default
        if self.support_curator:
            value: Number = _CURATOR.unpack(raw)[0]
            return value
        converted: Number = self.default_type(raw.decode("ascii"))
        return converted

    def _encode(self, value: Number) -> bytes:
        if self.support_curator:
            return _CURATOR.pack(int(value))
        return repr(value).encode("ascii")

    async def _read(self) -> tuple[Number, int]:
        if not self._ensured:
            await self.client.ensure_path(self.path)
            self._ensured = True
        raw, stat = await self.client.get(self.path)
        return self._decode(raw), stat.version

    def value(self) -> Deferred[Number]:
        """The current value."""
        async def read() -> Number:
            return (await self._read())[0]
        return Deferred.fromCoroutine(read())

    def add(self, amount: Number) -> Deferred[Number]:
        """Add ``amount`` (of the default's type); fires with the new value."""
        if not isinstance(amount, self.default_type):
            raise TypeError(f"the counter holds {self.default_type.__name__}, not {type(amount).__name__}")

        async def change() -> Number:
            while True:
                before, version = await self._read()
                after = before + amount
                try:
                    await self.client.set(self.path, self._encode(after), version=version)
                except BadVersionError:
                    continue  # someone changed it between our read and set: read again
                self.pre_value, self.post_value = before, after
                return after
        return Deferred.fromCoroutine(change())

    def subtract(self, amount: Number) -> Deferred[Number]:
        return self.add(-amount)
