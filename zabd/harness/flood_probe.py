# -*- test-case-name: tests.interop.test_flood -*-
"""What watches a flood (:mod:`zabd.harness.flood_run`) from outside it.

The ping probe (its own session, from 127.0.0.1), the server's memory sampled
from /proc, its outstanding requests as ``mntr`` says, and the fresh client
that must be served once the flood is over.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from zabd.client.effects import record_body
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest, PathWatchRequest
from zabd.harness.flood_conn import OPEN_ACL, Session, SessionFactory
from zabd.harness.flood_report import ProbeFigures, process_memory_kib
from zabd.harness.flood_settings import FloodSettings


log = Logger()

PROBE_SOURCE = "127.0.0.1"
CONNECT_TIMEOUT = 30.0
FRESH_CLIENT_DEADLINE = 30.0
SAMPLE_INTERVAL = 0.05
MNTR_INTERVAL = 0.2


async def open_session(reactor: Any, settings: FloodSettings, source: str) -> Session:
    factory = SessionFactory(settings.session_timeout_ms)
    reactor.connectTCP(settings.host, settings.port, factory, CONNECT_TIMEOUT, (source, 0))
    factory.ready.addTimeout(CONNECT_TIMEOUT, reactor)
    return await factory.ready


class Probe:
    """Pings the server every ``interval`` seconds on its own session and keeps the latencies."""

    def __init__(self, reactor: Any, settings: FloodSettings) -> None:
        self.reactor = reactor
        self.settings = settings
        self.latencies_ms: list[float] = []
        self.pending = 0
        self.reconnects = 0
        self.recording = False
        self._session: Session | None = None
        self._loop = LoopingCall(self._ping)
        self._loop.clock = reactor
        self._stopped = False

    async def start(self) -> None:
        self._session = await open_session(self.reactor, self.settings, PROBE_SOURCE)
        self._session.lost.addCallback(self._lost)
        self._loop.start(self.settings.ping_interval, now=True)

    def _ping(self) -> None:
        session = self._session
        if session is None:
            return
        sent = self.reactor.seconds()
        recording = self.recording
        if recording:
            self.pending += 1

        def answered(_: object) -> None:
            if recording:
                self.pending -= 1
                self.latencies_ms.append((self.reactor.seconds() - sent) * 1000.0)

        session.request(OpCode.ping).addCallbacks(answered, lambda _: None)

    def _lost(self, _: object) -> None:
        self._session = None
        if self._stopped:
            return
        self.reconnects += 1
        log.warn("The probe's connection was closed; reconnecting")
        Deferred.fromCoroutine(self._reconnect()).addErrback(
            lambda f: log.failure("The probe could not reconnect", f))

    async def _reconnect(self) -> None:
        session = await open_session(self.reactor, self.settings, PROBE_SOURCE)
        if self._stopped:
            session.close()
            return
        self._session = session
        session.lost.addCallback(self._lost)

    def figures(self) -> ProbeFigures:
        return ProbeFigures.of(self.latencies_ms, self.pending, self.reconnects)

    def stop(self) -> None:
        self._stopped = True
        self.recording = False
        if self._loop.running:
            self._loop.stop()
        if self._session is not None:
            self._session.close()


class MemorySampler:
    """The highest VmRSS of process ``pid`` seen while sampling, and its last VmHWM (peak RSS)."""

    def __init__(self, reactor: Any, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.hwm_kib = 0
        self._loop = LoopingCall(self.sample)
        self._loop.clock = reactor

    def sample(self) -> int:
        """VmRSS now (0 once the process is gone)."""
        memory = process_memory_kib(self.pid)
        rss = memory.get("VmRSS", 0)
        self.peak_kib = max(self.peak_kib, rss)
        self.hwm_kib = max(self.hwm_kib, memory.get("VmHWM", 0))
        return rss

    def start(self) -> None:
        self.peak_kib = 0
        self._loop.start(SAMPLE_INTERVAL, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


async def fresh_client(reactor: Any, settings: FloodSettings) -> str:
    """Open a new session, create and read a node; "" when served, else what failed."""
    async def attempt() -> str:
        session = await open_session(reactor, settings, PROBE_SOURCE)
        try:
            path = f"{settings.path}/fresh-"
            err, _ = await session.request(OpCode.create, record_body(CreateRequest(path, b"x", OPEN_ACL, 3)))
            if err != Code.OK:
                return f"create answered {Code(err).name}"
            err, _ = await session.request(OpCode.exists, record_body(PathWatchRequest(settings.path, False)))
            return "" if err == Code.OK else f"exists answered {Code(err).name}"
        finally:
            session.close()

    done = Deferred.fromCoroutine(attempt())
    done.addTimeout(FRESH_CLIENT_DEADLINE, reactor)
    try:
        return await done
    except Exception as error:  # noqa: BLE001 - the report says what went wrong
        return f"{type(error).__name__}: {error}"


class _FourLetterWord(Protocol):
    def __init__(self, word: bytes, answer: Deferred[bytes]) -> None:
        self.word = word
        self.answer = answer
        self.chunks: list[bytes] = []

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        assert self.transport is not None
        self.transport.write(self.word)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.chunks.append(data)

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        if not self.answer.called:
            self.answer.callback(b"".join(self.chunks))


class OutstandingSampler:
    """The highest ``zk_outstanding_requests`` that ``mntr`` reported, asked one at a time."""

    def __init__(self, reactor: Any, settings: FloodSettings) -> None:
        self.reactor = reactor
        self.settings = settings
        self.peak = -1
        self._busy = False
        self._loop = LoopingCall(self._ask)
        self._loop.clock = reactor

    def start(self) -> None:
        self._loop.start(MNTR_INTERVAL, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _ask(self) -> None:
        if self._busy:
            return  # the last one is not answered yet
        self._busy = True
        answer: Deferred[bytes] = Deferred()
        factory = ClientFactory.forProtocol(lambda: _FourLetterWord(b"mntr", answer))
        connector = self.reactor.connectTCP(self.settings.host, self.settings.port, factory, CONNECT_TIMEOUT,
                                            (PROBE_SOURCE, 0))
        answer.addTimeout(CONNECT_TIMEOUT, self.reactor, onTimeoutCancel=lambda *_: _hang_up(connector))
        answer.addCallbacks(self._answered, lambda _: None)
        answer.addBoth(self._done)

    def _answered(self, text: bytes) -> None:
        for line in text.decode("utf-8", "replace").splitlines():
            key, _, value = line.partition("\t")
            if key == "zk_outstanding_requests" and value.strip().isdigit():
                self.peak = max(self.peak, int(value))

    def _done(self, _: object) -> None:
        self._busy = False


def _hang_up(connector: Any) -> bytes:
    connector.disconnect()
    return b""
