# -*- test-case-name: tests.interop.test_flood -*-
"""One flood against a running server, on a Twisted reactor (:mod:`zabd.harness.flood` runs it).

The steps: create the node every request names; open every flooding session
(a bounded number of handshakes at a time); start the ping probe and the
memory sampler; then let every connection write all its requests at once and
wait, up to a deadline, until each has all its answers or the server closed
it. Last, a fresh client must still be served.

Connections come from 127.0.0.<first_source>, <first_source + 1>, ... with
``per_address`` on each, so that ZooKeeper's default ``maxClientCnxns`` (60
per address) holds on both servers without touching their configs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, DeferredSemaphore

from zabd.client.effects import record_body
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest
from zabd.harness.flood_conn import OPEN_ACL, FloodConnection, FloodFactory, FloodFrames, SessionLost
from zabd.harness.flood_probe import (
    CONNECT_TIMEOUT, PROBE_SOURCE, MemorySampler, OutstandingSampler, Probe, fresh_client, open_session,
)
from zabd.harness.flood_report import FloodReport, mib, process_alive
from zabd.harness.flood_settings import FloodSettings

#: A flooding connection must have its session this long after it dials, or it counts as hung.
HANDSHAKE_DEADLINE = 60.0


def _countdown(reactor: Any, deferreds: list[Deferred[None]], timeout: float) -> Deferred[bool]:
    """Fires True once every one of ``deferreds`` fired, or False at ``timeout``."""
    result: Deferred[bool] = Deferred()
    left = [len(deferreds)]
    timer = reactor.callLater(timeout, lambda: None if result.called else result.callback(False))

    def one(_: object) -> None:
        left[0] -= 1
        if left[0] == 0 and not result.called:
            timer.cancel()
            result.callback(True)

    if not deferreds:
        timer.cancel()
        result.callback(True)
    for waiting in deferreds:
        waiting.addBoth(one)
    return result


class Slot:
    """One flooding connection's place: it may fail before any protocol exists."""

    def __init__(self) -> None:
        self.conn: FloodConnection | None = None
        self.outcome = "connecting"
        self.ready: Deferred[None] = Deferred()
        self.done: Deferred[None] = Deferred()

    def on_ready(self, conn: FloodConnection) -> None:
        if not self.ready.called:
            self.ready.callback(None)

    def on_end(self, conn: FloodConnection) -> None:
        self._end(conn.outcome)

    def failed(self) -> None:
        """The TCP connection could not be made."""
        self._end("refused")

    def give_up(self) -> None:
        """The deadline passed: a connection still waiting for the server counts as hung."""
        if self.done.called:
            return
        if self.conn is not None:
            self.conn.abort()
        else:
            self._end("hung")

    def _end(self, outcome: str) -> None:
        self.outcome = outcome
        if not self.ready.called:
            self.ready.callback(None)
        if not self.done.called:
            self.done.callback(None)


async def _prepare(reactor: Any, settings: FloodSettings) -> None:
    session = await open_session(reactor, settings, PROBE_SOURCE)
    try:
        for path in (settings.path, f"{settings.path}/data"):
            err, _ = await session.request(OpCode.create, record_body(CreateRequest(path, b"", OPEN_ACL, 0)))
            if err not in (Code.OK, Code.NODEEXISTS):
                raise SessionLost(f"cannot create {path}: {Code(err).name}")
    finally:
        session.close()


async def _open_all(reactor: Any, settings: FloodSettings, frames: FloodFrames) -> list[Slot]:
    """Open every flooding session, a few handshakes at a time; each gets HANDSHAKE_DEADLINE."""
    slots = [Slot() for _ in range(settings.connections)]
    gate = DeferredSemaphore(settings.handshakes_at_once)
    for index, slot in enumerate(slots):
        await gate.acquire()
        slot.ready.addBoth(_settled, reactor.callLater(HANDSHAKE_DEADLINE, slot.give_up), gate)
        factory = FloodFactory(_maker(settings, frames, slot), slot.failed)
        reactor.connectTCP(settings.host, settings.port, factory, CONNECT_TIMEOUT, (settings.source(index), 0))
    await _countdown(reactor, [slot.ready for slot in slots], HANDSHAKE_DEADLINE + 1.0)
    return slots


def _settled(_: object, timer: Any, gate: DeferredSemaphore) -> None:
    if timer.active():
        timer.cancel()
    gate.release()


def _maker(settings: FloodSettings, frames: FloodFrames, slot: Slot) -> Callable[[], FloodConnection]:
    def make() -> FloodConnection:
        slot.conn = FloodConnection(frames, settings.requests, settings.session_timeout_ms,
                                    slot.on_ready, slot.on_end)
        return slot.conn
    return make


async def flood(reactor: Any, settings: FloodSettings) -> FloodReport:
    frames = FloodFrames(settings.kinds, f"{settings.path}/data", settings.value_size)
    report = FloodReport(settings.target, settings.connections, settings.requests, settings.value_size,
                         list(settings.kinds))
    await _prepare(reactor, settings)
    probe = Probe(reactor, settings)
    await probe.start()
    began = reactor.seconds()
    slots = await _open_all(reactor, settings, frames)
    report.connect_seconds = reactor.seconds() - began
    ready = [slot for slot in slots if slot.conn is not None and slot.conn.outcome == "ready"]
    report.sessions = len(ready)
    memory = MemorySampler(reactor, settings.pid)
    report.rss_before_mib = mib(memory.sample())
    memory.start()
    outstanding = OutstandingSampler(reactor, settings)
    outstanding.start()
    probe.recording = True
    began = reactor.seconds()
    finished = [began]
    for slot in slots:
        slot.done.addCallback(lambda _: finished.append(reactor.seconds()))
    for slot in ready:
        assert slot.conn is not None
        slot.conn.start()
    if settings.duration > 0:
        reactor.callLater(settings.duration, _stop_sending, slots)
    await _countdown(reactor, [slot.done for slot in slots], settings.deadline)
    for slot in slots:
        slot.give_up()
    report.flood_seconds = max(finished) - began
    probe.stop()
    memory.stop()
    outstanding.stop()
    report.outstanding_peak = outstanding.peak
    report.probe = probe.figures()
    _tally(report, slots)
    report.rss_peak_mib = mib(memory.peak_kib)
    report.fresh_client_error = await fresh_client(reactor, settings)
    report.fresh_client = report.fresh_client_error == ""
    report.rss_after_mib = mib(memory.sample())
    report.hwm_mib = mib(memory.hwm_kib)  # kept from the last sample if the server is gone
    report.alive = process_alive(settings.pid)
    return report


def _stop_sending(slots: list[Slot]) -> None:
    for slot in slots:
        if slot.conn is not None:
            slot.conn.stop_sending = True
            if slot.conn.outcome == "flooding" and slot.conn.answered >= slot.conn.sent:
                slot.conn.resumeProducing()


def _tally(report: FloodReport, slots: list[Slot]) -> None:
    outcomes: dict[str, int] = {}
    replies: dict[str, int] = {}
    sent = 0
    sent_bytes = 0
    for slot in slots:
        outcomes[slot.outcome] = outcomes.get(slot.outcome, 0) + 1
        conn = slot.conn
        if conn is None:
            continue
        sent += conn.sent
        sent_bytes += conn.bytes_sent
        for code, count in conn.replies.items():
            name = Code(code).name if code in Code._value2member_map_ else str(code)
            replies[name] = replies.get(name, 0) + count
    report.outcomes, report.replies = outcomes, replies
    report.requests_sent = sent
    report.megabytes_sent = sent_bytes / 1e6
    seconds = max(report.flood_seconds, 1e-9)
    report.replies_per_second = sum(replies.values()) / seconds
    report.megabytes_per_second = report.megabytes_sent / seconds
