# -*- test-case-name: tests.unit.test_quorum_port -*-
"""The quorum port (2888) on Twisted: Zab's connections, a dialler and a scheduler.

:class:`zabd.ensemble.peer.QuorumPeer` owns every rule of the quorum port
(framing, who closes, retries); this module only moves bytes and time
between it and the reactor:

- :class:`QuorumStream` is one TCP connection as a peer ``Stream``;
- :class:`QuorumPortFactory` listens and hands each accepted stream to the peer;
- :class:`ReactorQuorumNetwork` dials a member's quorum port (a ``QuorumNetwork``);
- :class:`ReactorScheduler` is the peer's ``Scheduler`` and clock on the reactor.

A 3.8 learner connects with a blocking socket and a connect timeout of
``tickTime * initLimit`` (``tickTime * connectToLearnerMasterLimit`` when
that is set); here a dial is a ``connectTCP`` whose timeout the server
passes as ``connect_timeout_ms``, and the peer's own loop does the retrying.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol as TypingProtocol

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import NotConnectingError
from twisted.internet.interfaces import IAddress, IConnector, IDelayedCall, IListeningPort
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from zabd.ensemble.transport import Cancellable, Stream
from zabd.server.election_port import ElectionReactor
from zabd.server.tcpoptions import set_no_delay

log = Logger()

#: 3.8's tickTime * initLimit with the default tickTime (2000) and initLimit (10) of its sample zoo.cfg.
DEFAULT_CONNECT_TIMEOUT_MS = 20_000


class QuorumReactor(ElectionReactor, TypingProtocol):
    """IReactorTCP and IReactorTime, as far as the quorum port uses them."""

    def seconds(self) -> float: ...


def _ignore_data(data: bytes) -> None:
    """Input before the owner set ``on_data`` is dropped: the owner reads from when it takes the stream."""


def _ignore_close() -> None:
    """Until the owner sets ``on_close`` there is no one to tell."""


class QuorumStream(Protocol):
    """One quorum-port connection as a :class:`zabd.ensemble.peer.Stream`.

    ``on_close`` runs at most once, and only for a loss the owner did not ask
    for: after :meth:`close` the owner already treats the stream as gone.
    """

    def __init__(self, direction: str, keep_alive: bool = False, sid: int | None = None,
                 made: Callable[[QuorumStream], None] | None = None,
                 gone: Callable[[QuorumStream], None] | None = None) -> None:
        self.on_data: Callable[[bytes], None] = _ignore_data
        self.on_close: Callable[[], None] = _ignore_close
        self.direction = direction
        self.sid = sid
        self.peer = "?"
        self.closed = False  # closed by the owner
        self.lost = False  # the transport is gone
        self._keep_alive = keep_alive
        self._made = made
        self._gone = gone

    def connectionMade(self) -> None:
        address = self.transport.getPeer()  # type: ignore[union-attr]
        host, port = getattr(address, "host", None), getattr(address, "port", None)
        self.peer = f"{host}:{port}" if host is not None else str(address)
        set_no_delay(self.transport, keep_alive=self._keep_alive)
        log.info("Quorum connection {direction} {peer} (sid {sid}) up",
                 direction=self.direction, peer=self.peer, sid=self.sid)
        made, self._made = self._made, None
        if made is not None:
            made(self)

    def dataReceived(self, data: bytes) -> None:
        if not self.closed:
            self.on_data(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.lost:
            return
        self.lost = True
        if self._gone is not None:
            self._gone(self)
        if self.closed:
            return  # the owner's own close: final already, logged then
        log.info("Quorum connection {direction} {peer} (sid {sid}) down: {reason}",
                 direction=self.direction, peer=self.peer, sid=self.sid, reason=reason.getErrorMessage())
        self.on_close()

    # ------------------------------------------------------------------ Stream

    def write(self, data: bytes) -> None:
        if not (self.closed or self.lost):
            self.transport.write(data)  # type: ignore[union-attr]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.lost:
            log.info("Closing quorum connection {direction} {peer} (sid {sid})",
                     direction=self.direction, peer=self.peer, sid=self.sid)
            self.transport.loseConnection()  # type: ignore[union-attr]

    def drop(self) -> None:
        """Hang up as if the network did: the owner hears ``on_close`` (used when a port stops)."""
        if not (self.closed or self.lost):
            self.transport.loseConnection()  # type: ignore[union-attr]


class QuorumPortFactory(Factory):
    """The listening quorum port: each accepted connection goes to ``accept`` once it is up."""

    noisy = False

    def __init__(self, accept: Callable[[Stream], None], reactor: QuorumReactor | None = None,
                 *, keep_alive: bool = False) -> None:
        self._accept = accept
        self._reactor = reactor
        self._keep_alive = keep_alive
        self._open: set[QuorumStream] = set()
        self._listening: IListeningPort | None = None
        self._stopped = False

    def buildProtocol(self, addr: IAddress | None) -> QuorumStream | None:
        if self._stopped:
            return None  # the reactor drops the connection
        return QuorumStream("accepted", self._keep_alive, made=self._made, gone=self._open.discard)

    def _made(self, stream: QuorumStream) -> None:
        self._open.add(stream)
        self._accept(stream)

    def listen(self, port: int, interface: str = "") -> IListeningPort:
        """Listen on ``port`` (0: any free one; see ``getHost()`` of the result)."""
        if self._reactor is None:
            raise RuntimeError("QuorumPortFactory.listen needs a reactor")
        self._listening = self._reactor.listenTCP(port, self, interface=interface)
        return self._listening

    def stop(self) -> Deferred[None]:
        """Stop listening and hang up every accepted connection; fires when the listener is closed."""
        self._stopped = True
        live = [stream for stream in self._open if not (stream.closed or stream.lost)]
        log.info("Quorum port stopping: {count} connections", count=len(live))
        for stream in live:
            stream.drop()
        listening, self._listening = self._listening, None
        if listening is None:
            return succeed(None)
        return maybeDeferred(listening.stopListening).addCallback(lambda _: None)


class _Dial(ClientFactory):
    """One dial: exactly one of ``connected`` and ``failed`` runs, from a reactor callback."""

    noisy = False

    def __init__(self, network: ReactorQuorumNetwork, sid: int, address: tuple[str, int],
                 connected: Callable[[Stream], None], failed: Callable[[], None]) -> None:
        self._network = network
        self._sid = sid
        self._address = address
        self._connected = connected
        self._failed = failed
        self.settled = False

    def buildProtocol(self, addr: IAddress | None) -> QuorumStream | None:
        if self.settled:
            return None
        return QuorumStream("dialled", self._network.keep_alive, self._sid, made=self._made,
                            gone=self._network.dialled.discard)

    def _made(self, stream: QuorumStream) -> None:
        self._network.dial_ended(self)
        if self.settled:  # abandoned by stop() while connecting
            stream.close()
            return
        self.settled = True
        self._network.dialled.add(stream)
        self._connected(stream)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self._network.dial_ended(self)
        if self.settled:
            return
        self.settled = True
        host, port = self._address
        log.info("Cannot open quorum connection to sid {sid} at {peer}: {reason}",
                 sid=self._sid, peer=f"{host}:{port}", reason=reason.getErrorMessage())
        self._failed()


class ReactorQuorumNetwork:
    """Dials members' quorum ports (a :class:`zabd.ensemble.peer.QuorumNetwork`).

    :param addresses: quorum addresses by sid.
    """

    def __init__(self, reactor: QuorumReactor, addresses: Mapping[int, tuple[str, int]],
                 connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS, *, keep_alive: bool = False) -> None:
        self._reactor = reactor
        self._addresses = dict(addresses)
        self._timeout = connect_timeout_ms / 1000
        self.keep_alive = keep_alive
        self._dials: dict[_Dial, IConnector] = {}
        self.dialled: set[QuorumStream] = set()
        self._stopped = False

    def set_addresses(self, addresses: Mapping[int, tuple[str, int]]) -> None:
        """A new config is in force: its members' quorum addresses."""
        self._addresses = dict(addresses)

    def connect(self, sid: int, connected: Callable[[Stream], None], failed: Callable[[], None]) -> None:
        address = self._addresses.get(sid)
        if address is None or self._stopped:
            why = "stopped" if self._stopped else "no quorum address"
            log.warn("Cannot dial quorum port of sid {sid}: {reason}", sid=sid, reason=why)
            self._reactor.callLater(0, failed)  # never from inside connect
            return
        host, port = address
        dial = _Dial(self, sid, address, connected, failed)
        self._dials[dial] = self._reactor.connectTCP(host, port, dial, timeout=self._timeout)

    def dial_ended(self, dial: _Dial) -> None:
        self._dials.pop(dial, None)

    def stop(self) -> None:
        """Abandon dials in progress (their callbacks never run) and hang up dialled streams."""
        self._stopped = True
        for dial, connector in list(self._dials.items()):
            dial.settled = True
            try:
                connector.stopConnecting()
            except NotConnectingError:  # it has just connected; closed on arrival
                pass
        self._dials.clear()
        for stream in list(self.dialled):
            stream.drop()


class _ReactorCall:
    """A Cancellable over an IDelayedCall: cancelling a call that ran or was cancelled does nothing."""

    __slots__ = ("_call",)

    def __init__(self, call: IDelayedCall) -> None:
        self._call = call

    def cancel(self) -> None:
        if self._call.active():
            self._call.cancel()


class ReactorScheduler:
    """The peer's Scheduler and millisecond clock on a reactor's time."""

    def __init__(self, reactor: QuorumReactor) -> None:
        self._reactor = reactor

    def call_later(self, delay_ms: int, fn: Callable[[], object]) -> Cancellable:
        return _ReactorCall(self._reactor.callLater(max(delay_ms, 0) / 1000, fn))

    def now_ms(self) -> int:
        return int(self._reactor.seconds() * 1000)

