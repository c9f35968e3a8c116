"""The fuzzer (zabd.testing.fuzz) in CI mode, its runner, and the regressions it found.

Each target runs a few thousand inputs from a fixed seed; ``python -m
zabd.testing.fuzz`` is the long mode. The inputs saved under data/fuzz are
replayed, and each bug the fuzzer found has a named test below.
"""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from twisted.logger import Logger

from zabd.client.hosts import Chroot
from zabd.client.transaction import read_results
from zabd.core.datatree import DataTree
from zabd.jute.codec import JuteError
from zabd.jute.errors import Code
from zabd.jute.multi import MultiResponse, OpResult
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateResponse, GetChildrenResponse
from zabd.jute.schema import encode
from zabd.jute.txns import CloseSessionTxn, CreateTxn, DeleteTxn, Txn, TxnHeader
from zabd.election.messages import Notification, PeerState
from zabd.quorum.packets import LearnerInfo, PacketType
from zabd.testing.fuzz import Finding, Mutator, Runner, fuzz, main, replay
from zabd.testing.fuzz_peers import QuorumTarget
from zabd.testing.fuzz_seeds import EPOCH1, OPEN, _packet, _txn, encode_leader_info
from zabd.testing.ensemble import SimEnsemble
from zabd.testing.fuzz_targets import TARGETS, JuteTarget, assert_consistent

SAVED = Path(__file__).parent / "data" / "fuzz"
CI_INPUTS = {"jute": 10_000, "client": 4000, "quorum": 4000, "election": 5000}
log = Logger()


def _explain(findings: list[Finding]) -> str:
    return "\n".join(f"{f.kind} ({f.where}): {f.detail}\n{f.data.hex()}" for f in findings)


@pytest.mark.parametrize("name", TARGETS)
def test_a_ci_run_finds_nothing(name: str, tmp_path: Path) -> None:
    # Allocations are traced for the decoder: a hostile length must not buy a big buffer.
    report = fuzz(name, CI_INPUTS[name], seed=15, out=tmp_path, rss_limit_mb=1024,
                  alloc_limit_mb=8 if name == "jute" else None)
    assert report.inputs == CI_INPUTS[name]
    assert report.findings == [], _explain(report.findings)
    assert report.slowest < 1.0 and report.peak_rss_mb < 1024


@pytest.mark.parametrize("path", sorted(SAVED.glob("*.bin")), ids=lambda p: p.stem)
def test_saved_inputs_pass(path: Path) -> None:
    finding = replay(path)
    assert finding is None, _explain([finding])


# ---- the runner -------------------------------------------------------------------------


class Clocks:
    """Fake wall and CPU clocks: a scripted input says how long it took."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0


class Scripted:
    """A target that misbehaves as its input's first byte says."""

    name = "scripted"

    def __init__(self, clocks: Clocks | None = None) -> None:
        self.slow_once = True
        self.clocks = clocks or Clocks()

    def seeds(self) -> list[bytes]:
        return [b"ok"]

    def execute(self, data: bytes) -> None:
        if data == b"crash":
            raise IndexError("list index out of range")
        elif data == b"slow":
            self.clocks.wall += 0.05
            self.clocks.cpu += 0.05
        elif data == b"starved":
            self.clocks.wall += 0.05  # over the limit in wall time only: the machine is busy, the input is not slow
        elif data == b"slow once" and self.slow_once:
            self.slow_once = False
            self.clocks.wall += 0.05
        elif data.startswith(b"logged"):
            try:
                raise (JuteError if data == b"logged refusal" else KeyError)("x")
            except Exception:
                log.failure("caught by a catch-all")
        elif data == b"alloc":
            big = bytearray(32 * 2**20)
            del big

    def check(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("data", "kind"), [
    (b"ok", None), (b"crash", "crash"), (b"slow", "hang"), (b"slow once", None), (b"starved", None),
    (b"logged", "crash"),
    (b"logged refusal", None), (b"alloc", "memory"),
])
def test_runner_tells_crashes_hangs_logged_tracebacks_and_allocations(data: bytes, kind: str | None,
                                                                      tmp_path: Path) -> None:
    clocks = Clocks()
    runner = Runner(Scripted(clocks), time_limit=0.02, alloc_limit_mb=8, wall=lambda: clocks.wall,
                    cpu_time=lambda: clocks.cpu)
    report = runner.run(lambda: data, 1, tmp_path)
    assert [f.kind for f in report.findings] == ([kind] if kind else [])
    saved = sorted(tmp_path.iterdir())
    assert [p.name.split("-")[:2] + [p.suffix] for p in saved] == ([["scripted", kind, ".bin"],
                                                                     ["scripted", kind, ".txt"]] if kind else [])
    if kind:
        assert saved[0].read_bytes() == data


def test_findings_alike_are_counted_once(tmp_path: Path) -> None:
    report = Runner(Scripted()).run(lambda: b"crash", 5, tmp_path)
    assert report.count("crash") == 5 and len(report.findings) == 1 and len(list(tmp_path.glob("*.bin"))) == 1


def test_the_mutator_is_deterministic_and_stays_bounded() -> None:
    corpus = JuteTarget().seeds()
    first, second = Mutator(corpus, 7), Mutator(corpus, 7)
    inputs = [first.next() for _ in range(2000)]
    assert inputs == [second.next() for _ in range(2000)]
    assert len(set(inputs)) > 1900 and max(map(len, inputs)) <= 8192


def test_the_command_line_fuzzes_and_replays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--target", "jute", "--inputs", "300", "--out", str(tmp_path), "--progress", "0"]) == 0
    assert "jute: 300 inputs" in capsys.readouterr().out
    sample = tmp_path / "jute-sample.bin"
    sample.write_bytes(JuteTarget().seeds()[0])
    assert main(["--replay", str(sample)]) == 0


# ---- regressions: each input once crashed a decoder or a port ---------------------------------


def _nested_multi(depth: int) -> bytes:
    nested = struct.pack(">i", 0)
    for _ in range(depth):
        nested = struct.pack(">iii", 1, OpCode.multi, len(nested)) + nested
    return encode(TxnHeader(1, 1, 1, 0, OpCode.multi)) + nested


def test_regression_a_multi_inside_a_multi_is_refused_not_recursed() -> None:
    # It recursed once per level: 3,000 levels (36 KB) raised RecursionError.
    for depth in (1, 3000):
        with pytest.raises(JuteError, match="unexpected sub-txn type 14"):
            Txn.from_bytes(_nested_multi(depth))


def _to_learner(*packets: bytes) -> bytes:
    """A leader's stream to a fresh learner: DIFF sync, NEWLEADER, UPTODATE, then ``packets``."""
    return (b"\x02" + _packet(PacketType.LEADERINFO, EPOCH1, encode_leader_info()) + _packet(PacketType.DIFF, 0)
            + _packet(PacketType.NEWLEADER, EPOCH1, b"version=0") + _packet(PacketType.UPTODATE, -1)
            + b"".join(packets))


def _runs_clean(data: bytes) -> None:
    report = Runner(QuorumTarget()).run(lambda: data, 1)
    assert report.findings == [], _explain(report.findings)


def test_regression_a_proposal_shorter_than_a_txn_header_is_a_wire_error() -> None:
    # It reached the latency metric, which read the header's time: struct.error.
    _runs_clean(_to_learner(_packet(PacketType.PROPOSAL, EPOCH1 + 1, b"\x00" * 9)))
    _runs_clean(_to_learner(_packet(PacketType.PROPOSAL, EPOCH1 + 1, None)))


def test_regression_a_proposal_below_the_last_logged_zxid_is_a_wire_error() -> None:
    # Its COMMIT broke the committed log's order: ValueError, with the txn already in the log.
    history = (b"\x02" + _packet(PacketType.LEADERINFO, EPOCH1, encode_leader_info()) + _packet(PacketType.DIFF, 0)
               + _packet(PacketType.PROPOSAL, EPOCH1 + 3, _txn(EPOCH1 + 3, "/a"))
               + _packet(PacketType.COMMIT, EPOCH1 + 3)
               + _packet(PacketType.NEWLEADER, EPOCH1, b"version=0") + _packet(PacketType.UPTODATE, -1))
    for zxid in (EPOCH1 + 1, EPOCH1 + 3):
        _runs_clean(history + _packet(PacketType.PROPOSAL, zxid, _txn(zxid, "/b")) + _packet(PacketType.COMMIT, zxid))


def test_regression_a_committed_create_of_a_path_without_parent_is_nonode() -> None:
    # parent_of("p") raised ValueError in the learner's apply, after the txn was logged.
    _runs_clean(_to_learner(_packet(PacketType.PROPOSAL, EPOCH1 + 1, _txn(EPOCH1 + 1, "p")),
                            _packet(PacketType.COMMIT, EPOCH1 + 1)))
    tree = DataTree()
    digest, nodes = tree.digest.value, set(tree.nodes)
    for path in ("", "p", "a/b", None):
        header = TxnHeader(1, 1, EPOCH1 + 2, 0, OpCode.create)
        result = tree.apply(Txn(header, CreateTxn(path, b"", OPEN, False, 1)))  # type: ignore[arg-type]
        assert result.err == Code.NONODE and tree.digest.value == digest and set(tree.nodes) == nodes


def test_regression_a_learner_at_the_last_epoch_is_refused_before_the_leader_overflows() -> None:
    # The leader proposed epoch 2**31, whose first zxid (2**63) overflows a long: ValueError from the
    # config restamp, after acceptedEpoch was persisted; every later election failed alike.
    info = _packet(PacketType.FOLLOWERINFO, 0x7FFFFFFF << 32, LearnerInfo(2).encode())
    _runs_clean(b"\x03" + info + _packet(PacketType.ACKEPOCH, 0, b"\x00\x00\x00\x00"))
    _runs_clean(b"\x03" + _packet(PacketType.FOLLOWERINFO, 0x7FFFFFFE << 32, LearnerInfo(2).encode()))


def test_regression_an_election_round_of_long_max_wraps_as_in_java() -> None:
    # Votes in round Long.MAX_VALUE: the next round (logicalclock + 1) did not fit in a notification,
    # and the peer's look() raised struct.error before arming its timer: no election afterwards.
    ensemble = SimEnsemble(1)
    ensemble.start(3)
    ensemble.sim.run_for(1000)
    vote = Notification(PeerState.LOOKING, 3, 0, (1 << 63) - 1, 0, 2, b"").encode()
    for sid in (1, 2):
        ensemble.peers[3].election_message(sid, vote)
    ensemble.sim.run_for(60_000)  # leads alone, gives up after initLimit, looks again
    assert ensemble.peers[3].fle.logical_clock < 0
    ensemble.start(1, 2)
    assert ensemble.settle(within_ms=120_000) in (1, 2, 3)


def test_regression_a_close_session_with_a_null_path_list_deletes_what_the_session_owns() -> None:
    # A null paths2Delete was iterated (TypeError); a null path in a delete or in the list took rfind.
    tree = DataTree()
    tree.apply(Txn(TxnHeader(5, 1, EPOCH1 + 1, 0, OpCode.create), CreateTxn("/e", b"", OPEN, True, 1)))
    close = TxnHeader(5, 2, EPOCH1 + 2, 0, OpCode.closeSession)
    tree.apply(Txn(close, CloseSessionTxn(None)))  # type: ignore[arg-type]
    assert "/e" not in tree.nodes and tree.ephemerals == {}
    tree.apply(Txn(TxnHeader(6, 1, EPOCH1 + 3, 0, OpCode.delete), DeleteTxn(None)))  # type: ignore[arg-type]
    close = TxnHeader(6, 2, EPOCH1 + 4, 0, OpCode.closeSession)
    tree.apply(Txn(close, CloseSessionTxn([None, "/x"])))  # type: ignore[list-item]
    assert_consistent(tree)


def test_regression_multi_results_with_a_null_path_or_null_children() -> None:
    # The client's multi reader called None.startswith under a chroot, and list(None).
    body = encode(MultiResponse((OpResult(OpCode.create, 0, CreateResponse(None)),  # type: ignore[arg-type]
                                 OpResult(OpCode.getChildren, 0, GetChildrenResponse(None)))))  # type: ignore[arg-type]
    assert read_results(body, Chroot("/chroot")) == [None, []]
    assert read_results(body, Chroot("")) == [None, []]
