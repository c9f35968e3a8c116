# -*- test-case-name: tests.unit.test_client_session -*-
"""The client's lifecycle and request plumbing; :class:`zabd.client.client.ZooKeeperClient` adds the calls."""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from twisted.internet.defer import Deferred, succeed

from zabd.client.effects import Outcome, Request, WatchRequest, record_body
from zabd.client.errors import OperationTimeoutError
from zabd.client.hosts import parse_connect_string
from zabd.client.protocol import Listener, SessionDriver
from zabd.client.dialing import Phase
from zabd.client.session import ClientSession
from zabd.client.states import KazooState, KeeperState, WatchedEvent
from zabd.client.watches import WatchKind, Watcher
from zabd.jute.records import ACL
from zabd.jute.schema import Record

if TYPE_CHECKING:
    from zabd.client.tls import ClientTls

T = TypeVar("T")


class DeferredWatch:
    """A one-shot watch as a Deferred: pass it as ``watch=``, then wait on ``deferred`` for the event.

        w = DeferredWatch()
        data, stat = await client.get("/config", watch=w)
        event = await w.deferred   # a WatchedEvent
    """

    def __init__(self) -> None:
        self.deferred: Deferred[WatchedEvent] = Deferred()

    def __call__(self, event: WatchedEvent) -> None:
        if not self.deferred.called:
            self.deferred.callback(event)


class ClientBase:
    """Connection handling: hosts, session, states and listeners, and ``_call`` for every request.

    :param hosts: ``"h1:2181,h2:2181/chroot"``; hosts are tried in a random order unless
        ``randomize_hosts`` is False.
    :param timeout: the session timeout to ask for, in seconds (the server clamps it).
    :param connect_timeout: seconds for one connection attempt, TCP and handshake
        (default: the session timeout over the number of hosts, as the Java client).
    :param read_only: accept a read-only server (state CONNECTED, ``client_state`` CONNECTED_RO).
    :param auth_data: ``(scheme, credential)`` pairs to authenticate with on every connection.
    :param default_acl: the ACL of created nodes when a call names none (default: OPEN_ACL_UNSAFE).
    :param reactor: an ``IReactorTCP`` and ``IReactorTime`` (default: the global reactor).
    :param rng: the randomness for host order and backoff jitter.
    :param use_ssl: dial every connection over TLS (sessions, read-write probes, four-letter words).
    :param ca: with ``use_ssl``, a PEM file of the CAs the server's certificate must chain to
        (None: the system's trusted CAs).
    :param certfile: a PEM certificate (and chain) to present, for servers that ask (``ssl.clientAuth``).
    :param keyfile: its PEM private key (None: read from ``certfile``).
    :param keyfile_password: the key's password, if encrypted.
    :param verify_certs: False accepts any server certificate, unchecked (as kazoo's).
    :param check_hostname: with ``verify_certs``, the certificate must name the host dialled
        (kazoo's default is False; this client's, like ZooKeeper's Java client, is True).
    :raises TlsConfigError: (a ValueError) a TLS file cannot be read or used; the text names it.
    """

    def __init__(self, hosts: str = "127.0.0.1:2181", timeout: float = 10.0, *,
                 connect_timeout: float | None = None, read_only: bool = False, randomize_hosts: bool = True,
                 auth_data: list[tuple[str, str | bytes]] | None = None, default_acl: list[ACL] | None = None,
                 reactor: Any = None, rng: random.Random | None = None,
                 initial_backoff: float = 0.1, max_backoff: float = 2.0,
                 use_ssl: bool = False, verify_certs: bool = True, check_hostname: bool = True,
                 ca: str | None = None, certfile: str | None = None, keyfile: str | None = None,
                 keyfile_password: str | bytes | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor
            reactor = global_reactor
        from zabd.client.acl import OPEN_ACL_UNSAFE
        parsed = parse_connect_string(hosts)
        self.hosts = parsed.hosts
        self.chroot = parsed.chroot
        self.default_acl: list[ACL] = list(default_acl or OPEN_ACL_UNSAFE)
        self.auth_data = list(auth_data or [])
        self.reactor = reactor
        self._core = ClientSession(
            parsed.hosts, session_timeout_ms=int(timeout * 1000),
            connect_timeout_ms=int(connect_timeout * 1000) if connect_timeout else None,
            chroot=parsed.chroot, can_be_read_only=read_only, randomize_hosts=randomize_hosts, rng=rng,
            initial_backoff_ms=int(initial_backoff * 1000), max_backoff_ms=int(max_backoff * 1000))
        self._tls: ClientTls | None = None
        if use_ssl:
            from zabd.client.tls import ClientTls, TlsOptions  # pyOpenSSL only for TLS clients
            self._tls = ClientTls(TlsOptions(ca, certfile, keyfile, keyfile_password, verify_certs, check_hostname))
        self._driver = SessionDriver(self._core, reactor, self._tls)
        self._driver.listeners.append(self._state_seen)
        self._connected_waiters: list[Deferred[None]] = []

    # -- state ------------------------------------------------------------------

    @property
    def state(self) -> KazooState:
        """CONNECTED, SUSPENDED or LOST (LOST also before the first connection)."""
        return self._core.state

    @property
    def connected(self) -> bool:
        return self._core.state is KazooState.CONNECTED

    @property
    def read_only(self) -> bool:
        """Whether the current connection is to a read-only server."""
        return self.connected and self._core.read_only

    @property
    def client_state(self) -> KeeperState:
        phase = self._core.phase
        if phase is Phase.CONNECTED:
            return KeeperState.CONNECTED_RO if self._core.read_only else KeeperState.CONNECTED
        if phase in (Phase.IDLE, Phase.CLOSED, Phase.CLOSING):
            return KeeperState.CLOSED
        return KeeperState.CONNECTING

    @property
    def client_id(self) -> tuple[int, bytes] | None:
        """(session id, password) of the current session, None before one exists."""
        return (self._core.session_id, self._core.password) if self._core.session_id else None

    @property
    def session_timeout(self) -> int:
        """The negotiated session timeout in ms (0 before the first connection)."""
        return self._core.negotiated_timeout_ms

    @property
    def last_zxid(self) -> int:
        return self._core.last_zxid

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(state)`` on every change to CONNECTED, SUSPENDED or LOST (and on each reconnect)."""
        self._driver.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._driver.listeners:
            self._driver.listeners.remove(listener)

    # -- lifecycle -----------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> Deferred[None]:
        """Connect; fires once CONNECTED, or fails with OperationTimeoutError (and stops) after ``timeout``."""
        if self.connected:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._connected_waiters.append(done)
        for scheme, credential in self.auth_data:
            self._add_auth(scheme, credential, lambda outcome: None)
        self._driver.run(self._core.start(self._driver.now_ms()))

        def give_up() -> None:
            if not done.called:
                self._connected_waiters.remove(done)
                why = self._driver.last_failure
                self.stop()
                detail = f"not connected within {timeout} s" + (f"; last failure: {why}" if why else "")
                done.errback(OperationTimeoutError(None, detail=detail))

        timer = self.reactor.callLater(timeout, give_up)
        return done.addBoth(lambda result: (timer.cancel() if timer.active() else None, result)[1])

    def stop(self) -> Deferred[None]:
        """Close the session (closeSession, so its ephemerals go at once) and stop connecting; state LOST."""
        done: Deferred[None] = Deferred()
        self._driver.run(self._core.close(lambda outcome: done.callback(None), self._driver.now_ms()))
        return done

    def close(self) -> Deferred[None]:
        """Stop (if not stopped) and forget every listener."""
        def forget(_: object) -> None:
            del self._driver.listeners[1:]
        return self.stop().addCallback(forget)

    def _state_seen(self, state: KazooState) -> None:
        if state is KazooState.CONNECTED:
            waiters, self._connected_waiters = self._connected_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    # -- requests ------------------------------------------------------------------

    def _server_path(self, path: str, trailing_slash: bool = False) -> str:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must be a string starting with '/': {path!r}")
        if len(path) > 1 and path.endswith("/") and not trailing_slash:
            raise ValueError(f"path must not end with '/': {path!r}")
        if "//" in path or "\x00" in path:
            raise ValueError(f"invalid path {path!r}")
        return self.chroot.to_server(path)

    def _call(self, opcode: int, record: Record | bytes | None, parse: Callable[[bytes], T],
              path: str | None = None, watch: tuple[WatchKind, Watcher] | None = None) -> Deferred[T]:
        """Send one request; the Deferred fires with ``parse(reply body)`` or fails with its error."""
        done: Deferred[T] = Deferred()

        def on_done(outcome: Outcome) -> None:
            if outcome.error is not None:
                if path is not None and outcome.error.path is None:
                    outcome.error.path = path
                done.errback(outcome.error)
                return
            try:
                result = parse(outcome.body)
            except Exception as error:
                done.errback(error)
            else:
                done.callback(result)

        body = record if isinstance(record, bytes) else record_body(record)
        watch_request = None
        if watch is not None and path is not None:
            watch_request = WatchRequest(watch[0], self.chroot.to_server(path), watch[1])
        self._driver.run(self._core.submit(Request(opcode, body, on_done, watch_request), self._driver.now_ms()))
        return done

    def _add_auth(self, scheme: str, credential: str | bytes, on_done: Callable[[Outcome], None]) -> None:
        raw = credential.encode("utf-8") if isinstance(credential, str) else credential
        self._driver.run(self._core.add_auth(scheme, raw, on_done, self._driver.now_ms()))
