# -*- test-case-name: tests.unit.test_client_session -*-
"""The Twisted side of the client: dials, frames bytes, arms the timer, and runs the core's effects.

:class:`SessionDriver` owns a :class:`~zabd.client.session.ClientSession` and
is the only code that touches both the reactor and the core. Effects run
from one queue, so a callback that submits a request while effects are being
carried out (a Deferred's callback, a listener, a watcher) adds to the end
of the queue instead of re-entering the middle of a run.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IConnector, IDelayedCall, IReactorTCP, IReactorTime, ITransport
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from zabd.client.effects import ArmTimer, Complete, Dial, Effect, Fire, Hangup, Probe, StateChanged, Write
from zabd.client.fourletter import four_letter_word
from zabd.client.hosts import HostPort
from zabd.client.dialing import Phase
from zabd.client.session import ClientSession
from zabd.client.states import KazooState
from zabd.jute.framing import FrameDecoder

if TYPE_CHECKING:
    from zabd.client.tls import ClientTls

log = Logger()

#: The largest reply frame accepted: 3.8's jute.maxbuffer (0xfffff) plus room for headers and lists.
MAX_FRAME = 4 * 1024 * 1024

Listener = Callable[[KazooState], object]


class _SessionConnection(Protocol):
    """One dialled connection: its bytes cut into reply frames for the driver."""

    def __init__(self, driver: SessionDriver, attempt: int, host: HostPort) -> None:
        self.driver = driver
        self.attempt = attempt
        self.host = host
        self.frames = FrameDecoder(max_length=MAX_FRAME)

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        tcp: Any = self.transport
        if hasattr(tcp, "setTcpNoDelay"):
            tcp.setTcpNoDelay(True)
        assert self.transport is not None
        self.driver.dial_succeeded(self.attempt, self.transport)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        failed_before = self.frames.error is not None
        for frame in self.frames.feed(data):
            self.driver.frame_received(self.attempt, frame)
        error = self.frames.error
        if error is not None and not failed_before:
            log.warn("Reply frame of {length} bytes is too large; dropping the connection", length=error.length)
            assert self.transport is not None
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        tls = self.driver.tls
        why = tls.failure(self.transport, reason) if tls is not None else None
        if why is not None:
            self.driver.failed(self.host, f"TLS failed: {why}", log_it=True)
        self.driver.connection_lost(self.attempt)


class _DialFactory(ClientFactory):
    def __init__(self, driver: SessionDriver, attempt: int, host: HostPort) -> None:
        self.driver = driver
        self.attempt = attempt
        self.host = host

    def buildProtocol(self, addr: object) -> Protocol:  # noqa: N802
        return _SessionConnection(self.driver, self.attempt, self.host)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:  # noqa: N802
        self.driver.failed(self.host, f"cannot connect: {reason.getErrorMessage()}")
        self.driver.dial_failed(self.attempt)


class SessionDriver:
    """Runs a ClientSession on a reactor (``IReactorTCP`` and ``IReactorTime``), over TLS if ``tls``."""

    def __init__(self, core: ClientSession, reactor: Any, tls: ClientTls | None = None) -> None:
        assert IReactorTCP.providedBy(reactor) and IReactorTime.providedBy(reactor), reactor
        self.core = core
        self.reactor = reactor
        self.tls = tls
        #: Why the latest connection attempt failed ("host:port: why"); cleared once connected.
        self.last_failure: str | None = None
        self.listeners: list[Listener] = []
        self._queue: deque[Effect] = deque()
        self._running = False
        self._transport: ITransport | None = None
        self._connector: IConnector | None = None
        self._timer: IDelayedCall | None = None

    def now_ms(self) -> int:
        return round(self.reactor.seconds() * 1000)

    # -- from the connection --------------------------------------------------

    def failed(self, host: HostPort, why: str, log_it: bool = False) -> None:
        text = f"{host}: {why}"
        if log_it and text != self.last_failure:  # one line per new reason, not one per retry
            log.warn("Connection to {host} failed: {why}", host=str(host), why=why)
        self.last_failure = text

    def dial_succeeded(self, attempt: int, transport: ITransport) -> None:
        if attempt == self.core.attempt and self.core.phase is Phase.DIALING:
            self._transport = transport
        else:
            transport.loseConnection()  # a connection we already gave up on
        self.run(self.core.dial_succeeded(attempt, self.now_ms()))

    def dial_failed(self, attempt: int) -> None:
        self.run(self.core.dial_failed(attempt, self.now_ms()))

    def frame_received(self, attempt: int, frame: bytes) -> None:
        self.run(self.core.frame_received(attempt, frame, self.now_ms()))

    def connection_lost(self, attempt: int) -> None:
        if attempt == self.core.attempt:
            self._transport = None
        self.run(self.core.connection_lost(attempt, self.now_ms()))

    # -- effects ----------------------------------------------------------------

    def run(self, effects: list[Effect]) -> None:
        self._queue.extend(effects)
        if self._running:
            return
        self._running = True
        try:
            while self._queue:
                self._carry_out(self._queue.popleft())
        finally:
            self._running = False

    def _carry_out(self, effect: Effect) -> None:
        if isinstance(effect, Write):
            if self._transport is not None:
                self._transport.write(effect.data)
        elif isinstance(effect, Complete):
            effect.on_done(effect.outcome)
        elif isinstance(effect, Fire):
            self._call_user(effect.watcher, effect.event)
        elif isinstance(effect, StateChanged):
            if effect.state is KazooState.CONNECTED:
                self.last_failure = None
            for listener in list(self.listeners):
                self._call_user(listener, effect.state)
        elif isinstance(effect, ArmTimer):
            self._arm(effect.at_ms)
        elif isinstance(effect, Dial):
            self._dial(effect)
        elif isinstance(effect, Hangup):
            self._hang_up()
        elif isinstance(effect, Probe):
            self._probe(effect)

    def _probe(self, probe: Probe) -> None:
        def answered(result: str | Failure) -> None:
            # A failed or odd answer counts as "not read-write": the search goes on, more slowly.
            read_write = isinstance(result, str) and result.strip() == "rw"
            self.run(self.core.probe_answered(probe.probe_id, read_write, self.now_ms()))

        four_letter_word(self.reactor, probe.host.host, probe.host.port, b"isro",
                         probe.timeout_ms / 1000.0, tls=self.tls).addBoth(answered)

    def _dial(self, dial: Dial) -> None:
        log.debug("Connecting to {host}", host=str(dial.host))
        # The core's connect deadline covers TCP and the handshake; Twisted's timeout is a backstop.
        factory = _DialFactory(self, dial.attempt, dial.host)
        timeout = max(dial.timeout_ms / 1000.0, 0.001)
        if self.tls is not None:
            self._connector = self.tls.connect(self.reactor, dial.host.host, dial.host.port, factory, timeout)
        else:
            self._connector = self.reactor.connectTCP(dial.host.host, dial.host.port, factory, timeout=timeout)

    def _hang_up(self) -> None:
        transport, self._transport = self._transport, None
        connector, self._connector = self._connector, None
        if transport is not None:
            abort = getattr(transport, "abortConnection", None)
            (abort or transport.loseConnection)()
        elif connector is not None:
            connector.stopConnecting() if getattr(connector, "state", "") == "connecting" else None

    def _arm(self, at_ms: int | None) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if at_ms is not None:
            delay = max(at_ms - self.now_ms(), 0) / 1000.0
            self._timer = self.reactor.callLater(delay, self._fired)

    def _fired(self) -> None:
        self._timer = None
        self.run(self.core.timer_fired(self.now_ms()))

    @staticmethod
    def _call_user(callback: Callable[..., object], arg: object) -> None:
        try:
            callback(arg)
        except Exception:
            log.failure("Client callback {callback!r} failed", callback=callback)
