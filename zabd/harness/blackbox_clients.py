"""The black-box workload's kazoo clients (zabd.harness.blackbox_workload), and the record of what they did.

:class:`Recorder` runs each call as one op of a thread-safe History and tells
its outcome: BadVersion, NoNode and NodeExists are failures, and anything
else that is not an answer raises :class:`Unknown`. :class:`Clients` starts
kazoo clients and retires them in the background.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, ConnectionLoss, KazooException, NodeExistsError, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KeeperState
from kazoo.retry import KazooRetry

from zabd.harness.history import History, Kind

OBSERVED_ERRORS: dict[type[Exception], str] = {
    BadVersionError: "BadVersion", NoNodeError: "NoNode", NodeExistsError: "NodeExists"}


class Unknown(Exception):
    """The operation's outcome is unknown; ``retire`` says whether its client is of no further use."""

    def __init__(self, retire: bool) -> None:
        super().__init__()
        self.retire = retire


class Recorder:
    """A thread-safe :class:`History`, with counts of what was acknowledged."""

    def __init__(self) -> None:
        self.history = History()
        self.lock = threading.Condition()
        self.acked: dict[str, int] = {}
        self.in_flight = 0
        #: Cleared, no op starts (``Workload.quiesce``).
        self.gate = threading.Event()
        self.gate.set()

    def attempt(self, session: str, key: str, kind: Kind, call: Callable[[], Any],
                fields: Callable[[Any], dict[str, Any]] = lambda result: {}, **args: Any) -> Any:
        """Run ``call`` as one op; its result on success, None on a failure; raises Unknown."""
        with self.lock:
            while not self.gate.is_set():
                self.lock.wait(0.2)
            op = self.history.invoke(session, key, kind, **args)
            self.in_flight += 1
        try:
            result = call()
        except tuple(OBSERVED_ERRORS) as error:
            with self.lock:
                self.history.fail(op, OBSERVED_ERRORS[type(error)])
            return None
        except (KazooException, KazooTimeoutError) as error:
            with self.lock:
                self.history.unknown(op)
            raise Unknown(retire=not isinstance(error, ConnectionLoss)) from error
        finally:
            with self.lock:
                self.in_flight -= 1
                self.lock.notify_all()
        with self.lock:
            self.history.ok(op, **fields(result))
            self.acked[kind] = self.acked.get(kind, 0) + 1
            self.lock.notify_all()
        return result

    def _writes(self) -> int:
        return sum(n for kind, n in self.acked.items() if kind != "read")

    def wait_writes(self, more: int, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait until ``more`` further writes are acknowledged (False at the deadline or on ``stop``)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            target = self._writes() + more
            while self._writes() < target:
                left = deadline - time.monotonic()
                if left <= 0 or stop is not None and stop.is_set():
                    return False
                self.lock.wait(min(left, 0.2))
        return True


class Clients:
    """Starts kazoo clients and retires them in the background."""

    def __init__(self, session_timeout: float) -> None:
        self.session_timeout = session_timeout
        self.retiring: queue.Queue[KazooClient | None] = queue.Queue()
        self.reaper = threading.Thread(target=self._reap, name="blackbox-reaper", daemon=True)
        self.reaper.start()

    def start(self, hosts: str, timeout: float | None = None) -> KazooClient | None:
        """A connected client, or None if none connected within ``timeout`` (the session timeout)."""
        retry = KazooRetry(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5)
        client = KazooClient(hosts=hosts, timeout=self.session_timeout, connection_retry=retry)
        try:
            client.start(timeout=self.session_timeout if timeout is None else timeout)
        except KazooTimeoutError:
            self.retire(client)
            return None
        client.blackbox_session = client._session_id  # kazoo starts a new session after an expiry: not ours
        return client

    def retire(self, client: KazooClient | None) -> None:
        if client is not None:
            self.retiring.put(client)

    def _reap(self) -> None:
        while (client := self.retiring.get()) is not None:
            try:
                client.stop()
            except Exception:  # noqa: BLE001 - a client stuck on a hung server: close it all the same
                pass
            client.close()
            self.retiring.task_done()

    def close(self) -> None:
        self.retiring.put(None)
        self.reaper.join(120)


def usable(client: KazooClient | None) -> bool:
    """Still in the session it started with (sessions are what the per-session checks hold to their order)."""
    return client is not None and client.client_state not in (KeeperState.EXPIRED_SESSION, KeeperState.CLOSED) \
        and client._session_id == client.blackbox_session


def label(name: str, client: KazooClient) -> str:
    return f"{name}#{client.blackbox_session:x}"
