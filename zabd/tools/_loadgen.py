# -*- test-case-name: tests.unit.test_bench -*-
"""Pipelined asyncio load connections and the worker processes that run them.

Kept tiny on purpose: the hot path must stay cheap enough that the client is
not the bottleneck. The frames themselves come from :mod:`zabd.harness.wire`.
Over TLS only the transport changes (asyncio's SSL transport, one context
per process from :mod:`zabd.tools._tls`); the protocol below is the same.
"""
from __future__ import annotations

import asyncio
import math
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from time import perf_counter_ns, process_time

# Some names are re-exported: callers and tests reach them through this module.
from zabd.harness.wire import (
    INT, OP_CLOSE_SESSION, OP_CREATE, OP_GET_DATA, OP_PING, OP_SET_DATA, PING_XID, REPLY_HEADER,
    REQUEST_HEADER, Request, connect_frame, create_body, delete_body, get_data_body, jute_buffer,
    parse_connect_response, request_frame, set_data_body, split_frames,
)
from zabd.tools._tls import TlsFiles, client_context
from zabd.tools._workloads import NextRequest, WorkerSpec, connection_address, created_path, request_source

CONNECTION_LOSS = -4  # ZooKeeper's code, used here for requests lost with a connection


def percentile_ms(sorted_ns: Sequence[int], pct: float) -> float:
    """Nearest-rank percentile of sorted nanosecond samples, in milliseconds."""
    if not sorted_ns:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_ns)))
    return sorted_ns[min(rank, len(sorted_ns)) - 1] / 1e6


@dataclass(eq=False)
class Window:
    """Replies received inside [start_ns, end_ns) count; the rest is warmup or drain."""

    start_ns: int = 1 << 62
    end_ns: int = 1 << 62
    ok: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    latencies_ns: array[int] = field(default_factory=lambda: array("q"))


class PipelinedConnection(asyncio.Protocol):
    """One session that keeps `pipeline` requests outstanding until told to stop."""

    def __init__(self, next_request: NextRequest, window: Window, timeout_ms: int) -> None:
        self.next_request = next_request
        self.window = window
        self.timeout_ms = timeout_ms
        self.sent_ns: deque[int] = deque()
        self.xid = 0
        self.issuing = False
        self.started = False
        self.closing = False
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.session: asyncio.Future[int] = loop.create_future()
        self.drained, self.lost = loop.create_future(), loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(connect_frame(self.timeout_ms))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.window.errors[CONNECTION_LOSS] += max(1, len(self.sent_ns))
        self.issuing = False
        self.sent_ns.clear()
        if not self.session.done():
            self.session.set_exception(ConnectionError(f"connection lost: {exc}"))
        for fut in (self.drained, self.lost):
            if not fut.done():
                fut.set_result(None)

    def start(self, pipeline: int) -> None:
        self.issuing = self.started = True
        self._write(pipeline)

    def stop(self) -> None:
        self.issuing = False
        if not self.sent_ns and not self.drained.done():
            self.drained.set_result(None)

    def ping(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(request_frame(PING_XID, OP_PING))

    def close_session(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.xid += 1
            self.transport.write(request_frame(self.xid, OP_CLOSE_SESSION))

    def _write(self, count: int) -> None:
        frames = []
        now = perf_counter_ns()
        pack, next_request, sent = REQUEST_HEADER.pack, self.next_request, self.sent_ns
        for _ in range(count):
            request = next_request()
            if request is None:
                self.issuing = False
                break
            self.xid += 1
            frames.append(pack(8 + len(request[1]), self.xid, request[0]) + request[1])
            sent.append(now)
        if frames and self.transport is not None:
            self.transport.write(b"".join(frames))
        if not sent and not self.issuing and not self.drained.done():
            self.drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.session.done():
            frames = split_frames(buf)
            if not frames:
                return
            timeout_ms, session_id = parse_connect_response(frames[0])
            if timeout_ms <= 0:
                self.session.set_exception(ConnectionError("session refused"))
                return
            self.session.set_result(session_id)
            if len(frames) > 1:
                raise ConnectionError("reply before any request")
        if self.closing:
            buf.clear()
            return
        now = perf_counter_ns()
        window = self.window
        in_window = window.start_ns <= now < window.end_ns
        unpack, sent, offset, end, replies = REPLY_HEADER.unpack_from, self.sent_ns, 0, len(buf), 0
        latencies = window.latencies_ns
        while end - offset >= 20:
            (length,) = INT.unpack_from(buf, offset)
            if end - offset - 4 < length:
                break
            xid, _, err = unpack(buf, offset + 4)
            offset += 4 + length
            if xid < 0:  # ping reply or watch event
                continue
            replies += 1
            sent_at = sent.popleft()
            if in_window:
                if err:
                    window.errors[err] += 1
                else:
                    window.ok += 1
                    latencies.append(now - sent_at)
        del buf[:offset]
        if self.issuing:
            self._write(replies)
        elif self.started and not sent and not self.drained.done():
            self.drained.set_result(None)


async def open_connections(
    host: str, port: int, sources: Sequence[NextRequest], window: Window, timeout_ms: int,
    addresses: Sequence[tuple[str, int]] = (), tls: TlsFiles | None = None,
) -> list[PipelinedConnection]:
    """One connection per source, to host:port or, when given, to the address at the source's index."""
    loop = asyncio.get_running_loop()
    context = client_context(tls) if tls is not None else None

    async def open_one(source: NextRequest, address: tuple[str, int]) -> PipelinedConnection:
        _, conn = await loop.create_connection(
            lambda: PipelinedConnection(source, window, timeout_ms), *address,
            ssl=context, server_hostname=address[0] if context is not None else None,
        )
        await asyncio.wait_for(conn.session, 30)
        return conn

    chosen = list(addresses) or [(host, port)] * len(sources)
    return list(await asyncio.gather(*(open_one(s, a) for s, a in zip(sources, chosen, strict=True))))


async def close_connections(conns: Iterable[PipelinedConnection], wait: float = 10.0) -> None:
    conns = list(conns)
    for conn in conns:
        conn.stop()
    await asyncio.wait([asyncio.ensure_future(c.drained) for c in conns], timeout=wait)
    for conn in conns:
        conn.close_session()
    await asyncio.wait([asyncio.ensure_future(c.lost) for c in conns], timeout=2.0)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()


async def run_batch(
    host: str, port: int, requests: Iterator[Request], connections: int = 8, pipeline: int = 64,
    tls: TlsFiles | None = None,
) -> Counter[int]:
    """Send every request (shared across connections); return error-code counts."""
    window = Window(start_ns=0)
    sources = [lambda: next(requests, None)] * connections
    conns = await open_connections(host, port, sources, window, 30000, tls=tls)
    for conn in conns:
        conn.start(pipeline)
    await asyncio.gather(*(c.drained for c in conns))
    await close_connections(conns)
    window.errors[0] = window.ok
    return window.errors


@dataclass
class WorkerResult:
    """What one load worker process did: successes, errors, latencies and its CPU time."""

    index: int
    ok: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies: bytes = b""  # array("q") of nanoseconds
    created: list[int] = field(default_factory=list)  # create requests sent per connection
    cpu_seconds: float = 0.0
    failure: str | None = None


async def _run_worker(spec: WorkerSpec, start_barrier: Barrier) -> WorkerResult:
    loop = asyncio.get_running_loop()
    window, created = Window(), [0] * spec.connections
    sources = [request_source(spec, c, created) for c in range(spec.connections)]
    addresses = [connection_address(spec, c) for c in range(spec.connections)]
    conns = await open_connections(spec.host, spec.port, sources, window, spec.timeout_ms, addresses, spec.tls)
    await loop.run_in_executor(None, start_barrier.wait, 120.0)
    start = perf_counter_ns()
    window.start_ns = start + int(spec.warmup * 1e9)
    window.end_ns = window.start_ns + int(spec.duration * 1e9)

    def ping_all() -> None:  # requests keep sessions alive anyway; this covers idle lulls
        for conn in conns:
            conn.ping()
        pinger[0] = loop.call_later(5.0, ping_all)

    pinger = [loop.call_later(5.0, ping_all)]
    for conn in conns:
        conn.start(spec.pipeline)
    await asyncio.sleep(max(0.0, (window.start_ns - perf_counter_ns()) / 1e9))
    cpu_start = process_time()
    await asyncio.sleep(max(0.0, (window.end_ns - perf_counter_ns()) / 1e9))
    cpu_seconds = process_time() - cpu_start
    pinger[0].cancel()
    await close_connections(conns)
    return WorkerResult(
        index=spec.index,
        ok=window.ok,
        errors=dict(window.errors),
        latencies=window.latencies_ns.tobytes(),
        created=created,
        cpu_seconds=cpu_seconds,
    )


def worker_main(spec: WorkerSpec, start_barrier: Barrier, results: Queue[WorkerResult]) -> None:
    """Process entry point: run one worker, always put exactly one result."""
    try:
        result = asyncio.run(_run_worker(spec, start_barrier))
    except BaseException as exc:  # report any failure to the parent instead of hanging it
        start_barrier.abort()
        result = WorkerResult(spec.index, failure=f"worker {spec.index}: {exc!r}")
    results.put(result)
