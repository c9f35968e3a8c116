"""A flood of 1,000 connections pipelining near-jute.maxbuffer requests at a real zabd (issue 15).

The flood (:mod:`zabd.harness.flood`) runs in a child process with a reactor
of its own. 1,000 sessions come from 127.0.0.10-29, 50 on each, under the
default ``maxClientCnxns``. Each writes 8 requests of 250,000 bytes without
waiting: setData and a create that finds the node, in turn. A probe session
pings every 50 ms. The server's ``jute.maxbuffer`` is 256 KiB, so the
requests are near it, and ``globalOutstandingLimit`` is 100.

Asserted: zabd stays up and serves a fresh client; every session opens; no
connection is left waiting at the deadline (each got all its answers, or was
closed by the server, as ZooKeeper may do); every reply is OK or one of
ZooKeeper's error codes; the probe is answered; and zabd's peak RSS stays
under :func:`memory_bound`. The probe's latencies are printed, not asserted.
``doc/operations.md`` has this flood, and one of 1,000,000-byte values,
beside ZooKeeper 3.8.0.
"""
from __future__ import annotations

import math
from pathlib import Path

from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest, SetDataRequest
from zabd.jute.schema import decode
from zabd.harness.flood import FD_HEADROOM, run_against
from zabd.harness.flood_conn import FloodFrames
from zabd.harness.flood_report import FloodReport, ProbeFigures, fd_limit_raise, summary_table
from zabd.harness.processes import start_zabd

CONNECTIONS = 1000
REQUESTS = 8
MAX_BUFFER = 0x3FFFF  # 256 KiB - 1
VALUE_SIZE = 250_000
OUTSTANDING_LIMIT = 100
DEADLINE = 120.0
#: Copies of a request a server may hold, for each connection and each
#: outstanding slot: a frame being read, the whole frame, its decoded value,
#: its txn, with room for the allocator. A connection may get one request in
#: past globalOutstandingLimit (3.8 checks after reading, as zabd does).
COPIES = 8
MIB = 1024 * 1024


def memory_bound(before_mib: float) -> float:
    """The RSS zabd must stay under: what it used before the flood, plus COPIES
    of a jute.maxbuffer frame for every connection and every outstanding slot."""
    return before_mib + COPIES * (CONNECTIONS + OUTSTANDING_LIMIT) * MAX_BUFFER / MIB


def test_flood_of_large_pipelined_requests(tmp_path: Path) -> None:
    fd_limit_raise(CONNECTIONS * 2 + FD_HEADROOM)  # zabd inherits it
    cfg = {"jute.maxbuffer": str(MAX_BUFFER), "globalOutstandingLimit": str(OUTSTANDING_LIMIT)}
    with start_zabd(tmp_path / "zabd", cfg) as server:
        report = run_against(server, [
            "--connections", str(CONNECTIONS), "--requests", str(REQUESTS), "--value-size", str(VALUE_SIZE),
            "--deadline", str(DEADLINE)], DEADLINE)
        print(report.text())
        context = f"{report.text()}\n{server.describe(8000)}"
        assert server.is_running() and report.alive, context
        assert report.fresh_client, context
        _assert_every_connection_finished(report, context)
        assert report.probe.pings > 0, context
        bound = memory_bound(report.rss_before_mib)
        print(f"peak RSS {report.rss_peak_mib:.0f} MiB, VmHWM {report.hwm_mib:.0f} MiB; bound {bound:.0f} MiB")
        assert max(report.rss_peak_mib, report.hwm_mib) <= bound, context


def _assert_every_connection_finished(report: FloodReport, context: str) -> None:
    assert report.sessions == CONNECTIONS, context
    assert report.unfinished() == 0, context  # none hung at the deadline
    assert set(report.outcomes) <= {"answered", "closed"}, context
    assert set(report.replies) <= {code.name for code in Code}, context
    if report.outcomes.get("closed", 0) == 0:
        assert report.answered() == report.requests_sent == CONNECTIONS * REQUESTS, context


def test_flood_frames_decode_as_the_requests_they_name() -> None:
    frames = FloodFrames(["setData", "create"], "/flood/data", 100_000, chunk=4096)
    set_data, create = frames.request(0), frames.request(1)
    assert (set_data.opcode, create.opcode, frames.request(2)) == (OpCode.setData, OpCode.create, set_data)
    request = decode(SetDataRequest, b"".join(set_data.chunks))
    assert (request.path, request.data, request.version) == ("/flood/data", b"\xa5" * 100_000, -1)
    assert decode(CreateRequest, b"".join(create.chunks)).data == request.data
    assert max(len(chunk) for chunk in create.chunks) == 4096


def test_unanswered_pings_count_as_never_answered() -> None:
    figures = ProbeFigures.of([float(ms) for ms in range(1, 100)], unanswered=2, reconnects=0)
    assert (figures.pings, figures.p50_ms, figures.p99_ms, figures.max_ms) == (99, 51.0, math.inf, 99.0)
    report = FloodReport(target="zabd", probe=figures, alive=True, fresh_client=True)
    assert FloodReport.from_json(report.to_json()) == report
    table = summary_table([report, FloodReport(target="zabd", alive=True)])
    assert "| probe ping p99 (ms) | ∞ |" in table and "| rounds alive with a fresh client served | 1 of 2 |" in table
