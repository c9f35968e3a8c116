"""NonBlockingLease and MultiNonBlockingLease: kazoo's time-bounded leases, judged by the callers' clocks.

The lease node ``<path>/lease_holder`` holds kazoo's JSON
``{"version": 1, "holder": <identifier>, "end": "YYYY-MM-DDTHH:MM:SS"}`` (UTC),
so kazoo clients read the same leases. A client obtains the lease when the
node is absent, expired by its own clock, or already its own (a renewal);
otherwise not, at once: nothing blocks. Clocks must roughly agree.

kazoo takes a Lock around its read-delete-create; this recipe writes with a
version check instead (create, or set at the version it read), which gives
the same exclusivity among these clients without the lock's extra nodes.
(Against a kazoo client racing on the same lease, a delete-and-recreate
between our read and set would go unnoticed: the new node has our version.)

    lease = NonBlockingLease(client, "/leases/cleanup", timedelta(minutes=70), "cleanup-on-a")
    if await lease.obtain():
        run_cleanup()
"""
from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from twisted.internet.defer import Deferred

from zabd.client.client import ZooKeeperClient
from zabd.client.errors import BadVersionError, NodeExistsError, NoNodeError

__all__ = ["NonBlockingLease", "MultiNonBlockingLease"]

LEASE_FORMAT_VERSION = 1
END_FORMAT = "%Y-%m-%dT%H:%M:%S"
HOLDER_NODE = "lease_holder"

Clock = Callable[[], datetime]


def reactor_utcnow(client: ZooKeeperClient) -> Clock:
    """The client's reactor time as a naive UTC datetime (kazoo stores naive UTC)."""
    def now() -> datetime:
        return datetime.fromtimestamp(client.reactor.seconds(), timezone.utc).replace(tzinfo=None)
    return now


def encode_lease(holder: str, end: datetime) -> bytes:
    return json.dumps({"version": LEASE_FORMAT_VERSION, "holder": holder,
                       "end": end.strftime(END_FORMAT)}).encode("utf-8")


class NonBlockingLease:
    """An exclusive lease at ``path`` for ``duration``; ``obtained`` (and ``bool(lease)``) after ``obtain()``.

    :param identifier: this holder's name; the same name renews its own lease
        (default: the host name, as kazoo).
    :param utcnow: the clock, returning naive UTC datetimes (default: the
        client's reactor, so a test's fake clock drives expiry).
    """

    def __init__(self, client: ZooKeeperClient, path: str, duration: timedelta, identifier: str | None = None,
                 utcnow: Clock | None = None) -> None:
        self.client = client
        self.path = path
        self.duration = duration
        self.identifier = identifier or socket.gethostname()
        self.utcnow = utcnow or reactor_utcnow(client)
        self.holder_path = f"{path}/{HOLDER_NODE}"
        self.obtained = False

    def __bool__(self) -> bool:
        return self.obtained

    def obtain(self) -> Deferred[bool]:
        """Try once to obtain (or renew) the lease; fires with ``obtained``."""
        return Deferred.fromCoroutine(self._obtain())

    async def _obtain(self) -> bool:
        self.obtained = False
        await self.client.ensure_path(self.path)
        now = self.utcnow()
        data = encode_lease(self.identifier, now + self.duration)
        try:
            raw, stat = await self.client.get(self.holder_path)
        except NoNodeError:
            try:
                await self.client.create(self.holder_path, data)
            except NodeExistsError:
                return False  # another client took it just now
            self.obtained = True
            return True
        try:
            current = json.loads(raw.decode("utf-8"))
            if current["version"] != LEASE_FORMAT_VERSION:
                return False  # a newer format: leave it to clients that know it (as kazoo does)
            current_end = datetime.strptime(current["end"], END_FORMAT)
            held_by_other = current["holder"] != self.identifier and now < current_end
        except (ValueError, KeyError, TypeError):
            held_by_other = False  # unreadable: treat as expired, as no client could honour it
        if held_by_other:
            return False
        try:
            await self.client.set(self.holder_path, data, version=stat.version)
        except (BadVersionError, NoNodeError):
            return False  # changed since we read it: someone else renewed or took it
        self.obtained = True
        return True


class MultiNonBlockingLease:
    """One of ``count`` leases ``<path>/0`` … ``<path>/<count-1>``, tried in order; ``obtained`` if any was."""

    def __init__(self, client: ZooKeeperClient, count: int, path: str, duration: timedelta,
                 identifier: str | None = None, utcnow: Clock | None = None) -> None:
        self.leases = [NonBlockingLease(client, f"{path}/{number}", duration, identifier, utcnow)
                       for number in range(count)]
        self.obtained = False

    def __bool__(self) -> bool:
        return self.obtained

    def obtain(self) -> Deferred[bool]:
        async def obtain() -> bool:
            self.obtained = False
            for lease in self.leases:
                if await lease.obtain():
                    self.obtained = True
                    break
            return self.obtained
        return Deferred.fromCoroutine(obtain())
