# -*- test-case-name: tests.unit.test_election_port -*-
"""The election port (3888): TCP links between peers, carrying FastLeaderElection payloads.

A thin adapter over :class:`zabd.election.links.LinkTable`, which holds every
rule (who keeps a connection, the capacity-1 slot, the re-send of the last
payload). This module only dials, listens, reads and writes, and logs.

ZooKeeper's QuorumCnxManager dials synchronously (``connectOne`` blocks for
up to ``zookeeper.cnxTimeout``); here a dial is a ``connectTCP`` with that
timeout, and a second dial to the same peer waits for the first to end.
Nothing is retried here: FastLeaderElection calls :meth:`connect_all` from
its own backoff loop, as in ZooKeeper.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import NotConnectingError
from twisted.internet.interfaces import IAddress, IConnector, IDelayedCall, IListeningPort
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from zabd.election.links import (
    DEFAULT_CONNECT_TIMEOUT_MS, Close, Dial, Effect, ElectionNetwork, FrameReader, LinkTable, Loopback, MessageHandler,
    Received, Up, Write, frame,
)
from zabd.election.messages import InitialMessage
from zabd.server.tcpoptions import set_no_delay

log = Logger()

DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000  # ZooKeeper: tickTime * syncLimit, the read timeout before the initial message


class ElectionReactor(TypingProtocol):
    """The parts of IReactorTCP and IReactorTime this port uses."""

    def connectTCP(self, host: str, port: int, factory: ClientFactory, timeout: float = ...) -> IConnector: ...

    def listenTCP(self, port: int, factory: Factory, backlog: int = ..., interface: str = ...) -> IListeningPort: ...

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any, **kw: Any) -> IDelayedCall: ...


class ElectionConnection(Protocol):
    """One election connection, dialled (sid known up front) or accepted (sid from the initial message)."""

    def __init__(self, port: ElectionPortFactory, dialled_sid: int | None) -> None:
        self._port = port
        self.sid = dialled_sid
        self.direction = "dialled" if dialled_sid is not None else "accepted"
        self.peer = "?"
        self.closed = False
        self.handshake_timer: IDelayedCall | None = None
        self._reader = FrameReader(expect_initial=dialled_sid is None)

    def connectionMade(self) -> None:
        address = self.transport.getPeer()  # type: ignore[union-attr]
        host, port = getattr(address, "host", None), getattr(address, "port", None)
        self.peer = f"{host}:{port}" if host is not None else str(address)
        set_no_delay(self.transport)
        self._port.connection_made(self)

    def dataReceived(self, data: bytes) -> None:
        self._port.data_received(self, self._reader.feed(data))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._port.connection_lost(self, reason)

    def write_payload(self, payload: bytes) -> None:
        self.transport.write(frame(payload))  # type: ignore[union-attr]

    def close(self, reason: str, level: LogLevel = LogLevel.info) -> None:
        """Close once, with one log line; later input and the loss itself log nothing more."""
        if self.closed:
            return
        self.closed = True
        if self.handshake_timer is not None and self.handshake_timer.active():
            self.handshake_timer.cancel()
        self.handshake_timer = None
        log.emit(level, "Closing election connection {direction} {peer} (sid {sid}): {reason}",
                 direction=self.direction, peer=self.peer, sid=self.sid, reason=reason)
        self.transport.loseConnection()  # type: ignore[union-attr]


class _DialFactory(ClientFactory):
    """One dial to one sid."""

    noisy = False

    def __init__(self, port: ElectionPortFactory, sid: int, address: tuple[str, int]) -> None:
        self._port = port
        self._sid = sid
        self._address = address

    def buildProtocol(self, addr: IAddress | None) -> ElectionConnection:
        self._port.dial_ended(self._sid)
        return ElectionConnection(self._port, self._sid)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self._port.dial_ended(self._sid)
        self._port.dial_failed(self._sid, self._address, reason)


class ElectionPortFactory(Factory, ElectionNetwork):
    """The election port of server ``myid``: accepts peers, dials peers; an ElectionNetwork.

    :param my_address: the ``host:port`` sent in the initial message.
    :param peers: configured election addresses by sid (my own entry is ignored).
    :param on_message: called with (sid, payload) for every frame from a live link.
    :param reactor: an IReactorTCP and IReactorTime provider.
    """

    noisy = False

    def __init__(
        self, myid: int, my_address: str, peers: Mapping[int, tuple[str, int]], on_message: MessageHandler,
        reactor: ElectionReactor, connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS,
        handshake_timeout_ms: int = DEFAULT_HANDSHAKE_TIMEOUT_MS,
    ) -> None:
        self.myid = myid
        self._initial = InitialMessage(myid, my_address).encode()
        self._peers = dict(peers)
        self._on_message = on_message
        self._reactor = reactor
        self._connect_timeout = connect_timeout_ms / 1000
        self._handshake_timeout = handshake_timeout_ms / 1000
        self._table: LinkTable[ElectionConnection] = LinkTable(myid, tuple(self._peers))
        self._open: set[ElectionConnection] = set()
        self._connectors: dict[int, IConnector] = {}
        self._loopback_queue: list[bytes] = []
        self._loopback_call: IDelayedCall | None = None
        self._listening: IListeningPort | None = None
        self._stopped = False

    # ------------------------------------------------------------------ ElectionNetwork

    def send(self, sid: int, payload: bytes) -> None:
        self._run(self._table.send(sid, payload))

    def any_delivered(self) -> bool:
        return self._table.any_delivered()

    def connect_all(self) -> None:
        self._run(self._table.connect_all())

    def set_peers(self, peers: Mapping[int, tuple[str, int]]) -> None:
        """A new config is in force: dial its members at their addresses from now on."""
        self._peers = {sid: address for sid, address in peers.items() if sid != self.myid}
        self._table.set_known(tuple(self._peers))

    def connected(self, sid: int) -> bool:
        """A live link to ``sid`` exists (QuorumCnxManager.connectedToPeer)."""
        return self._table.link(sid) is not None

    def listen(self, port: int, interface: str = "") -> IListeningPort:
        """Listen on the election port; :meth:`stop` stops it."""
        self._listening = self._reactor.listenTCP(port, self, interface=interface)
        return self._listening

    def stop(self) -> Deferred[None]:
        """Close every connection, abandon dials and loopbacks; fires when the listener is closed."""
        self._stopped = True
        log.info("Election port of {myid} stopping: {count} connections, {dials} dials",
                 myid=self.myid, count=len(self._open), dials=len(self._connectors))
        self._table.stop()
        for conn in list(self._open):
            conn.close("stopped", LogLevel.debug)
        for connector in self._connectors.values():
            try:
                connector.stopConnecting()
            except NotConnectingError:  # it has just connected; that connection is closed on arrival
                pass
        self._connectors.clear()
        if self._loopback_call is not None and self._loopback_call.active():
            self._loopback_call.cancel()
        self._loopback_call = None
        self._loopback_queue.clear()
        listening, self._listening = self._listening, None
        if listening is None:
            return succeed(None)
        stopped = maybeDeferred(listening.stopListening)  # a Deferred or None, by reactor
        return stopped.addCallback(lambda _: None)

    # ------------------------------------------------------------------ from the protocols

    def buildProtocol(self, addr: IAddress | None) -> ElectionConnection:
        return ElectionConnection(self, None)

    def connection_made(self, conn: ElectionConnection) -> None:
        self._open.add(conn)
        if self._stopped:
            conn.close("stopped", LogLevel.debug)
        elif conn.sid is not None:
            conn.transport.write(self._initial)  # type: ignore[union-attr]
            self._run(self._table.dialled(conn.sid, conn))
        else:
            conn.handshake_timer = self._reactor.callLater(
                self._handshake_timeout, conn.close, "no initial message in time", LogLevel.warn)

    def data_received(self, conn: ElectionConnection, received: Received) -> None:
        if received.initial is not None:
            if conn.handshake_timer is not None and conn.handshake_timer.active():
                conn.handshake_timer.cancel()
            conn.handshake_timer = None
            conn.sid = received.initial.sid
            self._run(self._table.accepted(received.initial, conn))
        for payload in received.frames:
            sid = conn.sid
            if sid is None or conn.closed or self._table.link(sid) is not conn:
                break  # a connection that lost the tie-break is read no further
            self._on_message(sid, payload)
        if received.error is not None:
            self._drop(conn)
            conn.close(str(received.error), LogLevel.warn)

    def connection_lost(self, conn: ElectionConnection, reason: Failure) -> None:
        self._open.discard(conn)
        if conn.handshake_timer is not None and conn.handshake_timer.active():
            conn.handshake_timer.cancel()
        conn.handshake_timer = None
        if self._drop(conn) and not conn.closed:
            log.info("Election connection {direction} {peer} (sid {sid}) down: {reason}",
                     direction=conn.direction, peer=conn.peer, sid=conn.sid, reason=reason.getErrorMessage())

    def dial_ended(self, sid: int) -> None:
        self._connectors.pop(sid, None)

    def dial_failed(self, sid: int, address: tuple[str, int], reason: Failure) -> None:
        self._table.dial_failed(sid)
        log.warn("Cannot open election connection to sid {sid} at {peer}: {reason}",
                 sid=sid, peer=f"{address[0]}:{address[1]}", reason=reason.getErrorMessage())

    # ------------------------------------------------------------------ effects

    def _drop(self, conn: ElectionConnection) -> bool:
        """Forget ``conn`` as a link at once, so that sends wait in the slot; True if it was live."""
        return conn.sid is not None and self._table.lost(conn.sid, conn)

    def _run(self, effects: list[Effect[ElectionConnection]]) -> None:
        for effect in effects:
            if isinstance(effect, Write):
                effect.conn.write_payload(effect.payload)
            elif isinstance(effect, Up):
                effect.conn.sid = effect.sid
                log.info("Election connection {direction} {peer} (sid {sid}) up",
                         direction=effect.conn.direction, peer=effect.conn.peer, sid=effect.sid)
            elif isinstance(effect, Close):
                effect.conn.sid = effect.sid
                effect.conn.close(effect.reason)
            elif isinstance(effect, Dial):
                self._dial(effect)
            elif isinstance(effect, Loopback):
                self._loopback(effect.payload)

    def _dial(self, dial: Dial) -> None:
        address = dial.address or self._peers.get(dial.sid)
        if address is None:
            self._table.dial_failed(dial.sid)
            log.warn("No election address for sid {sid}", sid=dial.sid)
            return
        host, port = address
        factory = _DialFactory(self, dial.sid, address)
        self._connectors[dial.sid] = self._reactor.connectTCP(host, port, factory, timeout=self._connect_timeout)

    def _loopback(self, payload: bytes) -> None:
        """My own votes reach me on a later turn, as through QuorumCnxManager's receive queue."""
        self._loopback_queue.append(payload)
        if self._loopback_call is None:
            self._loopback_call = self._reactor.callLater(0, self._deliver_loopback)

    def _deliver_loopback(self) -> None:
        self._loopback_call = None
        queued, self._loopback_queue = self._loopback_queue, []
        for payload in queued:
            self._on_message(self.myid, payload)
