"""Quorum TLS on real zabd ensembles: sslQuorum, refusals, and ZooKeeper's rolling migration.

Every peer is its own twistd process (zabd.harness.ensembleprocs, tickTime
200 ms) with its own ``ssl.quorum`` key store from one test CA, and every
peer trusts that CA. The tests show that such an ensemble serves, that its
quorum and election ports speak only TLS (a plaintext impostor is cut off,
a peer from another CA never joins), and that a plaintext ensemble moves to
TLS by the steps of ZooKeeper's admin guide (portUnification, then
sslQuorum, then portUnification off) without losing an acknowledged write.
Every wait is a condition with a deadline.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, OperationTimeoutError
from kazoo.protocol.states import KazooState

from tests.interop.conftest import kazoo_client
from zabd.harness.certs import Pki, make_pki
from zabd.harness.commands import LOCALHOST
from zabd.harness.ensembleprocs import (
    ENSEMBLE_DEFAULTS, SERVING_MODES, Ensemble, EnsemblePeer, epoch_of, prepare_ensemble, start_ensemble,
)
from zabd.harness.probes import wait_until
from zabd.harness.tlsprocs import (
    HANDSHAKE_FAILED, TLS_ALERT_RECORD, election_header, follower_info, peer_stores, plaintext_dial,
    quorum_security, quorum_stores, tls_handshake, update_cfg,
)

#: Room for a client to ride through a restart (3.8's maximum at tickTime 200 would be 4 s).
SESSION_CFG = {"maxSessionTimeout": "20000"}
SESSION_TIMEOUT = 15.0
DEADLINE = 60.0
#: A TLS-only port closes a plaintext connection on its first bytes; this is only the bound.
DIAL_DEADLINE = 5.0
PLAIN = "insecure (non-TLS) quorum communication, port unification disabled"
UNIFIED_PLAIN = "insecure (non-TLS) quorum communication, port unification enabled"
UNIFIED_TLS = "TLS encrypted quorum communication, port unification enabled"
TLS_ONLY = "TLS encrypted quorum communication, port unification disabled"
#: A refusal of a certificate by the trust store (zabd.tls.contexts words the reason).
UNTRUSTED = re.compile(r"TLS handshake on the (?:election|quorum) port with 127\.0\.0\.1 failed: "
                       r"certificate [^\n]*not trusted")
ELECTION_TOOK = re.compile(r"the election took (\d+) ms")
#: The writer: paced so that a minute of load stays a few thousand znodes, and bounded.
WRITE_PACE = 0.01
MAX_WRITES = 20_000
WRITER_SECONDS = 240.0
ACKS_PER_STEP = 10  # acknowledged writes after every restart, before the next one


def kazoo(hosts: str) -> AbstractContextManager[KazooClient]:
    return kazoo_client(hosts, session_timeout=SESSION_TIMEOUT, start_timeout=DEADLINE / 2)


def read_tree(peer: EnsemblePeer, path: str) -> dict[str, bytes]:
    """Every child of ``path`` with its data, read through ``peer`` alone after a sync."""
    with kazoo(peer.address()) as client:
        client.sync(path)
        names = client.get_children(path)
        pending = {name: client.get_async(f"{path}/{name}") for name in names}
        return {name: result.get(timeout=DEADLINE)[0] for name, result in pending.items()}


def new_log(peer: EnsemblePeer, mark: int) -> str:
    return peer.log_text()[mark:]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_ensemble(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    with start_ensemble("zabd", tmp_path_factory.mktemp("tls"), extra_cfg={**SESSION_CFG, "sslQuorum": "true"},
                        peer_cfg=peer_stores(pki, [1, 2, 3]), timeout=DEADLINE) as ensemble:
        yield ensemble


def test_an_ssl_quorum_ensemble_elects_and_serves_on_every_peer(tls_ensemble: Ensemble) -> None:
    ens = tls_ensemble
    ens.wait_for_leader(timeout=DEADLINE)
    assert sorted(str(mode) for mode in ens.modes().values()) == ["follower", "follower", "leader"]
    assert {sid: quorum_security(peer) for sid, peer in ens.peers.items()} == {1: TLS_ONLY, 2: TLS_ONLY, 3: TLS_ONLY}
    with kazoo(ens.peers[1].address()) as client:
        client.ensure_path("/tls")
    for peer in ens:
        with kazoo(peer.address()) as client:
            client.create(f"/tls/via{peer.sid}", f"written through peer {peer.sid}".encode())
    expected = {f"via{sid}": f"written through peer {sid}".encode() for sid in ens.peers}
    for peer in ens:
        assert read_tree(peer, "/tls") == expected, f"peer {peer.sid}"


def test_the_quorum_and_election_ports_cut_off_plaintext(tls_ensemble: Ensemble, pki: Pki) -> None:
    ens = tls_ensemble
    leader_sid = ens.wait_for_leader(timeout=DEADLINE)
    leader = ens.peers[leader_sid]
    follower, other = (ens.peers[sid] for sid in sorted(ens.peers) if sid != leader_sid)
    zxid = leader.zxid()
    assert zxid is not None
    marks = {sid: len(peer.log_text()) for sid, peer in ens.peers.items()}
    # Impostors in plaintext: a follower's FOLLOWERINFO to the leader, a peer's election header to another.
    quorum = plaintext_dial(leader.quorum_port, follower_info(follower.sid, zxid), DIAL_DEADLINE)
    election = plaintext_dial(follower.election_port, election_header(other.sid, other.election_port),
                              DIAL_DEADLINE)
    for outcome in (quorum, election):  # nothing in answer but, at most, a TLS alert
        assert outcome.received[:1] in (b"", bytes([TLS_ALERT_RECORD])), outcome
    quorum_line = HANDSHAKE_FAILED.format(what="quorum", host=LOCALHOST)
    election_line = HANDSHAKE_FAILED.format(what="election", host=LOCALHOST)
    wait_until(lambda: quorum_line in new_log(leader, marks[leader.sid]), DEADLINE,
               "the leader's log line for the plaintext quorum dial", ens.describe)
    wait_until(lambda: election_line in new_log(follower, marks[follower.sid]), DEADLINE,
               "the follower's log line for the plaintext election dial", ens.describe)
    # Neither impostor became a learner or an election link.
    assert f"Learner {follower.sid} connected" not in new_log(leader, marks[leader.sid])
    assert f"(sid {other.sid}) up" not in new_log(follower, marks[follower.sid])
    # Both ports do answer a TLS client with a trusted certificate, each as its own peer.
    probe = pki.identity("probe")
    for peer, port in ((leader, leader.quorum_port), (follower, follower.election_port)):
        outcome = tls_handshake(port, probe, pki.ca_pem, DIAL_DEADLINE)
        assert outcome.version in ("TLSv1.2", "TLSv1.3") and outcome.server_name == f"peer{peer.sid}", outcome
    # The ensemble did not notice: same leader, same epoch, and it takes writes.
    assert ens.wait_for_leader(timeout=DEADLINE) == leader_sid
    after = leader.zxid()
    assert after is not None and epoch_of(after) == epoch_of(zxid)
    with kazoo(ens.hosts()) as client:
        client.create("/after-impostors", b"still serving")
    assert read_tree(other, "/")["after-impostors"] == b"still serving"


def _watch(condition: Callable[[], bool], seconds: float, what: str, describe: Callable[[], str]) -> None:
    """Fail if ``condition`` is ever false during ``seconds`` (polled): proof that something never happens."""
    def broken() -> bool:
        if not condition():
            raise AssertionError(f"{what} stopped holding\n{describe()}")
        return False

    with pytest.raises(TimeoutError):
        wait_until(broken, seconds, what)


def test_a_peer_from_an_untrusted_ca_never_joins(pki: Pki, tmp_path: Path) -> None:
    rogue = make_pki(tmp_path / "rogue", name="rogue CA")
    stores = peer_stores(pki, [1, 2])
    stores[3] = quorum_stores(rogue.identity("peer3"), pki)  # it trusts our CA; we do not trust its
    ens = prepare_ensemble("zabd", tmp_path / "ens", extra_cfg={**SESSION_CFG, "sslQuorum": "true"},
                           peer_cfg=stores)
    with ens:
        for peer in ens:
            peer.spawn()
        third = ens.peers[3]

        def three_stays_out() -> bool:
            if not all(peer.is_running() for peer in ens):
                raise AssertionError(f"a peer exited\n{ens.describe()}")
            mode = third.mode()
            if mode in SERVING_MODES:  # fail at once, not at a deadline
                raise AssertionError(f"peer 3 joined as {mode} with an untrusted certificate\n{ens.describe()}")
            return True

        def pair_serves() -> bool:
            return three_stays_out() and sorted(str(ens.mode(sid)) for sid in (1, 2)) == ["follower", "leader"]

        wait_until(pair_serves, DEADLINE, "peers 1 and 2 to serve as a quorum", ens.describe)
        for sid in (1, 2):
            wait_until(lambda sid=sid: UNTRUSTED.search(ens.peers[sid].log_text()) is not None, DEADLINE,
                       f"peer {sid} to refuse peer 3's certificate", ens.describe)
        # Generous: ten times the pair's own election, and never under two initLimits.
        election_s = max(int(ms) for sid in (1, 2) for ms in ELECTION_TOOK.findall(ens.peers[sid].log_text())) / 1000
        init_s = int(ENSEMBLE_DEFAULTS["initLimit"]) * int(ENSEMBLE_DEFAULTS["tickTime"]) / 1000
        _watch(three_stays_out, max(10 * election_s, 2 * init_s), "peer 3 staying out", ens.describe)
        wait_until(pair_serves, DEADLINE, "peers 1 and 2 to serve still", ens.describe)
        for sid in (1, 2):
            text = ens.peers[sid].log_text()
            assert "(sid 3) up" not in text and "Learner 3 connected" not in text, f"peer {sid} let peer 3 in"
        with kazoo(ens.hosts([1, 2])) as client:
            client.create("/before-three", b"written by the pair")
        # With a certificate from the trusted CA the same peer joins and catches up.
        update_cfg(third, quorum_stores(pki.identity("peer3"), pki))
        third.restart(timeout=DEADLINE)
        ens.wait_for_leader(timeout=DEADLINE)
        assert third.mode() == "follower"
        assert read_tree(third, "/")["before-three"] == b"written by the pair"


@dataclass(eq=False)
class Writer:
    """Creates /load/nN, paced, until stopped, MAX_WRITES or WRITER_SECONDS; keeps every acknowledged path."""

    client: KazooClient
    stop: threading.Event = field(default_factory=threading.Event)
    acked: list[str] = field(default_factory=list)
    lost: int = 0  # failed with the connection: maybe applied, never acknowledged
    error: BaseException | None = None
    finished: bool = False
    connected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.connected.set()
        self.client.add_listener(self._state)

    def _state(self, state: KazooState) -> None:
        (self.connected.set if state == KazooState.CONNECTED else self.connected.clear)()

    def run(self) -> None:
        end = time.monotonic() + WRITER_SECONDS
        try:
            for n in range(MAX_WRITES):
                if self.stop.is_set() or time.monotonic() > end:
                    break
                path = f"/load/n{n:05d}"  # never reused: a lost request may still have been applied
                try:
                    self.client.create(path, path.encode())
                except (ConnectionLoss, OperationTimeoutError):
                    self.lost += 1
                    self.connected.wait(1.0)
                    continue
                self.acked.append(path)
                self.stop.wait(WRITE_PACE)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self.finished = True

    def wait_for_more(self, count: int, ens: Ensemble) -> None:
        """Wait until ``count`` more writes are acknowledged; fail at once if the writer failed or ended."""
        target = len(self.acked) + count

        def progressed() -> bool:
            if self.error is not None or (self.finished and len(self.acked) < target):
                raise AssertionError(f"the writer stopped early ({self.error!r}, {len(self.acked)} acked)")
            return len(self.acked) >= target

        wait_until(progressed, DEADLINE, f"{count} more acknowledged writes", ens.describe)


def _rolling_restart(ens: Ensemble, writer: Writer, changes: Callable[[int], Mapping[str, str | None]],
                     expected: str) -> None:
    """One of the guide's steps: each peer in turn gets the change, restarts and serves under load."""
    for sid in sorted(ens.peers):
        peer = ens.peers[sid]
        update_cfg(peer, changes(sid))
        peer.restart(timeout=DEADLINE)
        ens.wait_for_leader(timeout=DEADLINE)
        assert quorum_security(peer) == expected, f"peer {sid}"
        writer.wait_for_more(ACKS_PER_STEP, ens)


def test_rolling_migration_from_plaintext_to_tls_loses_no_write(pki: Pki, tmp_path: Path) -> None:
    with start_ensemble("zabd", tmp_path / "ens", extra_cfg=SESSION_CFG, timeout=DEADLINE) as ens:
        assert {quorum_security(peer) for peer in ens} == {PLAIN}
        with kazoo(ens.hosts()) as setup:
            setup.create("/load")
        client = KazooClient(hosts=ens.hosts(), timeout=SESSION_TIMEOUT)
        client.start(timeout=DEADLINE / 2)
        writer = Writer(client)
        thread = threading.Thread(target=writer.run, name="migration-writer", daemon=True)
        try:
            thread.start()
            writer.wait_for_more(ACKS_PER_STEP, ens)
            # (b) unified ports with the quorum stores, still dialling plaintext
            _rolling_restart(ens, writer, lambda sid: {"sslQuorum": "false", "portUnification": "true",
                                                       **quorum_stores(pki.identity(f"peer{sid}"), pki)},
                             UNIFIED_PLAIN)
            # Every election port, and the leader's quorum port (a learner's hangs up on anyone), take TLS too.
            probe, leader = pki.identity("probe"), ens.wait_for_leader(timeout=DEADLINE)
            ports = [(peer.sid, peer.election_port) for peer in ens] + [(leader, ens.peers[leader].quorum_port)]
            for sid, port in ports:
                assert tls_handshake(port, probe, pki.ca_pem, DIAL_DEADLINE).server_name == f"peer{sid}"
            # (c) dial over TLS, still accepting plaintext from peers not yet restarted
            _rolling_restart(ens, writer, lambda sid: {"sslQuorum": "true"}, UNIFIED_TLS)
            # (d) TLS only
            _rolling_restart(ens, writer, lambda sid: {"portUnification": "false"}, TLS_ONLY)
        finally:
            writer.stop.set()
            thread.join(DEADLINE)
            client.stop()
            client.close()
        assert not thread.is_alive() and writer.error is None, writer.error
        acked = set(writer.acked)
        assert len(acked) >= 10 * ACKS_PER_STEP
        for peer in ens:
            present = read_tree(peer, "/load")
            missing = sorted(acked - {f"/load/{name}" for name in present})
            assert not missing, f"peer {peer.sid} lacks {len(missing)} acknowledged writes, e.g. {missing[:5]}"
            assert all(present[path.rsplit("/", 1)[1]] == path.encode() for path in acked)
        # The ensemble ends TLS only: a plaintext learner is cut off, and clients are served everywhere.
        leader = ens.peers[ens.wait_for_leader(timeout=DEADLINE)]
        mark = len(leader.log_text())
        zxid = leader.zxid()
        assert zxid is not None
        outcome = plaintext_dial(leader.quorum_port, follower_info(99, zxid), DIAL_DEADLINE)
        assert outcome.received[:1] in (b"", bytes([TLS_ALERT_RECORD])), outcome
        wait_until(lambda: HANDSHAKE_FAILED.format(what="quorum", host=LOCALHOST) in new_log(leader, mark),
                   DEADLINE, "the leader's log line for the plaintext dial", ens.describe)
        for peer in ens:
            with kazoo(peer.address()) as check:
                check.create(f"/load/final-{peer.sid}", b"served")
                assert check.get(f"/load/final-{peer.sid}")[0] == b"served"
