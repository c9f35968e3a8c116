"""A write load that outlives kill -9 of its server, and a check of what must have survived.

Writer ``w`` performs one numbered sequence of operations, pipelined on a raw
session (frames from :mod:`zabd.harness.wire`): even numbers create
``/crash/w<w>/<seq>``, odd numbers set ``/crash/c<w>``. Every value is a pure
function of (writer, seq, cycle), so a torn, stale or foreign value cannot
pass for the right one.

Why a prefix: a session's requests apply in the order sent, and recovery
restores a prefix of the log. So after a restart each writer's applied
operations must be exactly seq 0..b-1 for one boundary b, with b covering
every success reply received (whenever it was read: the server sent it) and
every operation seen after an earlier restart, and no operation never sent.
The next cycle continues at seq b, so the whole history stays one prefix.
"""

from __future__ import annotations

import asyncio
import zlib
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from zabd.harness.wiresession import (
    CONNECTION_LOSS, WireSession, close_session, data_and_version, open_session, strings,
)
from zabd.harness.wire import OP_CREATE, OP_GET_DATA, OP_SET_DATA, create_body, get_data_body, set_data_body, ustring

ROOT = "/crash"
OP_GET_CHILDREN = 8
VALUE_SIZES = (32, 200, 1000, 4000)



class CrashLoadError(AssertionError):
    """The load could not run as planned (the server failed before the kill, or stalled)."""


def writer_dir(writer: int) -> str:
    return f"{ROOT}/w{writer}"


def counter_path(writer: int) -> str:
    return f"{ROOT}/c{writer}"


def create_path(writer: int, seq: int) -> str:
    return f"{writer_dir(writer)}/{seq:010d}"


def is_set(seq: int) -> bool:
    return seq % 2 == 1


def value(writer: int, seq: int, cycle: int) -> bytes:
    """The one right value for this write: a repeated stamp, then the CRC-32 of what precedes it."""
    stamp = f"w{writer}.s{seq}.k{cycle}|".encode()
    size = VALUE_SIZES[zlib.crc32(stamp) % len(VALUE_SIZES)]
    body = (stamp * (size // len(stamp) + 1))[: size - 8]
    return body + b"%08x" % zlib.crc32(body)


@dataclass
class WriterLedger:
    """What one writer sent, and what the server has promised it."""

    index: int
    next_seq: int = 0  # first seq not sent yet (after a verify: first seq not applied)
    durable_through: int = -1  # highest seq acknowledged, or seen applied after a restart
    acked: int = 0  # success replies over all cycles
    adopted: int = 0  # writes never acknowledged but found applied after a restart
    starts: list[int] = field(default_factory=list)  # first seq of each cycle ...
    cycles: list[int] = field(default_factory=list)  # ... and that cycle's number

    def begin_cycle(self, cycle: int) -> None:
        self.starts.append(self.next_seq)
        self.cycles.append(cycle)

    def expected_value(self, seq: int) -> bytes:
        return value(self.index, seq, self.cycles[bisect_right(self.starts, seq) - 1])


@dataclass(frozen=True)
class CycleReport:
    """One kill cycle: the writes acknowledged when the kill was ordered, in all, and sent."""

    cycle: int
    acked_at_kill: int  # success replies when the kill was ordered
    acked: int  # success replies in this cycle, including those read after the kill
    sent: int


@dataclass(frozen=True)
class VerifyReport:
    """What reading the data back after the last cycle found."""

    nodes_read: int
    adopted: int  # in-flight writes of the last cycle that turned out applied
    problems: list[str]


class _Writer:
    """Keeps ``pipeline`` operations of one writer outstanding until its connection dies."""

    def __init__(self, ledger: WriterLedger, session: WireSession, cycle: int, pipeline: int,
                 on_ack: Callable[[], None], problems: list[str]) -> None:
        self.ledger, self.session, self.cycle, self.pipeline = ledger, session, cycle, pipeline
        self.on_ack, self.problems = on_ack, problems
        self.outstanding, self.sent, self.running = 0, 0, True

    def pump(self) -> None:
        ledger = self.ledger
        while self.running and self.outstanding < self.pipeline:
            seq = ledger.next_seq
            ledger.next_seq += 1
            self.outstanding += 1
            self.sent += 1
            data = value(ledger.index, seq, self.cycle)
            if is_set(seq):
                opcode, body = OP_SET_DATA, set_data_body(counter_path(ledger.index), data)
            else:
                opcode, body = OP_CREATE, create_body(create_path(ledger.index, seq), data)
            self.session.send(opcode, body, partial(self.replied, seq))

    def replied(self, seq: int, err: int, _body: bytes) -> None:
        self.outstanding -= 1
        if err == 0:
            if seq != self.ledger.durable_through + 1:
                self.problems.append(f"writer {self.ledger.index}: seq {seq} acknowledged out of order")
            self.ledger.durable_through = seq
            self.ledger.acked += 1
            self.on_ack()
        else:
            if err != CONNECTION_LOSS or self.running:
                why = "its connection was lost before the kill" if err == CONNECTION_LOSS else f"error {err}"
                self.problems.append(f"writer {self.ledger.index}: seq {seq} failed: {why}")
            self.running = False
        self.pump()
        self.close_when_drained()

    def close_when_drained(self) -> None:
        if not self.running and not self.outstanding and self.session.transport is not None:
            self.session.transport.close()


class CrashLoad:
    """Writers with ledgers, run one cycle at a time against whatever server is at the address."""

    def __init__(self, writers: int, pipeline: int = 32, session_timeout_ms: int = 6000) -> None:
        self.ledgers = [WriterLedger(index) for index in range(writers)]
        self.pipeline, self.session_timeout_ms = pipeline, session_timeout_ms
        self.problems: list[str] = []  # unexpected replies during load

    @property
    def acked(self) -> int:
        return sum(ledger.acked for ledger in self.ledgers)

    def setup(self, host: str, port: int, deadline: float = 15.0) -> None:
        """Create the root, each writer's directory and counter (counters start empty, version 0)."""
        asyncio.run(self._setup(host, port, deadline))

    def run_until_crash(self, host: str, port: int, cycle: int, kill_after: int,
                        crash: Callable[[], None], deadline: float = 60.0) -> CycleReport:
        """Write until ``kill_after`` acks arrived in this cycle, call ``crash`` right there, drain.

        ``crash`` normally kills the server; a no-op makes a clean cycle (every sent write answered).
        """
        return asyncio.run(self._run_cycle(host, port, cycle, kill_after, crash, deadline))

    def verify(self, host: str, port: int, deadline: float = 30.0) -> VerifyReport:
        """Read every writer's nodes back; move each ledger to its recovered boundary."""
        return asyncio.run(self._verify(host, port, deadline))

    async def _setup(self, host: str, port: int, deadline: float) -> None:
        session = await open_session(host, port, self.session_timeout_ms, deadline)
        for path in [ROOT, *(path for w in range(len(self.ledgers)) for path in (writer_dir(w), counter_path(w)))]:
            err, _ = await asyncio.wait_for(session.request(OP_CREATE, create_body(path, b"")), deadline)
            if err:
                raise CrashLoadError(f"setup: create {path} failed with error {err}")
        await close_session(session)

    async def _run_cycle(self, host: str, port: int, cycle: int, kill_after: int,
                         crash: Callable[[], None], deadline: float) -> CycleReport:
        loop = asyncio.get_running_loop()
        sessions = [await open_session(host, port, self.session_timeout_ms, deadline) for _ in self.ledgers]
        killed: asyncio.Future[int] = loop.create_future()
        acked = [0]

        def on_ack() -> None:
            acked[0] += 1
            if acked[0] >= kill_after and not killed.done():
                crash()  # right here, with every writer's pipeline full
                killed.set_result(acked[0])
                for writer in writers:  # stop issuing; replies already on their way still count
                    writer.running = False
                    writer.close_when_drained()

        writers: list[_Writer] = []
        for ledger, session in zip(self.ledgers, sessions):
            ledger.begin_cycle(cycle)
            writers.append(_Writer(ledger, session, cycle, self.pipeline, on_ack, self.problems))
        for writer in writers:
            writer.pump()
        try:  # a connection lost before the kill stops its writer and is a problem
            await asyncio.wait_for(asyncio.gather(*(s.lost for s in sessions)), deadline)
        except asyncio.TimeoutError:
            for session in sessions:
                if session.transport is not None:
                    session.transport.abort()
            raise CrashLoadError(f"cycle {cycle}: stalled for {deadline}s at {acked[0]} of {kill_after} acks")
        if not killed.done():
            raise CrashLoadError(f"cycle {cycle}: every connection lost at {acked[0]} of {kill_after} acks")
        return CycleReport(cycle, killed.result(), acked[0], sum(w.sent for w in writers))

    async def _verify(self, host: str, port: int, deadline: float) -> VerifyReport:
        session = await open_session(host, port, self.session_timeout_ms, deadline)
        problems: list[str] = []
        nodes_read = adopted = 0
        for ledger in self.ledgers:
            read, found = await asyncio.wait_for(self._verify_writer(session, ledger, problems), deadline)
            nodes_read += read
            adopted += found
        await close_session(session)
        return VerifyReport(nodes_read, adopted, problems)

    async def _verify_writer(self, session: WireSession, ledger: WriterLedger, problems: list[str]) -> tuple[int, int]:
        who, index = f"writer {ledger.index}", ledger.index
        (err, listing), (counter_err, counter_reply) = await asyncio.gather(
            session.request(OP_GET_CHILDREN, ustring(writer_dir(index)) + b"\x00"),
            session.request(OP_GET_DATA, get_data_body(counter_path(index))),
        )
        if err or counter_err:
            problems.append(f"{who}: reading {writer_dir(index)}, {counter_path(index)}: errors {err}, {counter_err}")
            return 0, 0
        names = strings(listing)
        created = sorted(int(name) for name in names if name.isdigit())
        if len(created) != len(names):
            problems.append(f"{who}: unexpected children {sorted(n for n in names if not n.isdigit())[:5]}")
        counter, version = data_and_version(counter_reply)
        boundary = max(created[-1] + 1 if created else 0, 2 * version)  # set number v is seq 2v-1
        if boundary - 1 < ledger.durable_through:
            problems.append(f"{who}: LOST WRITES: seq {ledger.durable_through} was acknowledged or seen, "
                            f"but the recovered history ends at seq {boundary - 1}")
        if boundary > ledger.next_seq:
            problems.append(f"{who}: seq {boundary - 1} applied but only {ledger.next_seq} were ever sent")
        holes = sorted(set(range(0, boundary, 2)) - set(created))
        if holes:
            problems.append(f"{who}: HOLES: {len(holes)} creates before seq {boundary} missing, first {holes[:5]}")
        last_set = boundary - 1 if is_set(boundary - 1) else boundary - 2
        want_counter = ledger.expected_value(last_set) if last_set >= 0 else b""
        if counter != want_counter or version != boundary // 2:
            problems.append(f"{who}: counter is {counter[:40]!r}... version {version}; for history 0..{boundary - 1} "
                            f"it must be {want_counter[:40]!r}... version {boundary // 2}")
        reads = (session.request(OP_GET_DATA, get_data_body(create_path(index, seq))) for seq in created)
        for seq, (err, body) in zip(created, await asyncio.gather(*reads)):
            data = data_and_version(body)[0] if err == 0 else None
            if data != ledger.expected_value(seq):
                problems.append(f"{who}: seq {seq} reads {data and data[:60]!r} (error {err}): torn or wrong value")
        found = max(0, boundary - 1 - ledger.durable_through)
        ledger.adopted += found
        ledger.durable_through = max(ledger.durable_through, boundary - 1)
        ledger.next_seq = boundary
        return len(created) + 1, found
