"""The simulation kit: virtual time, the fake network and the in-memory disk."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from twisted.internet.error import AlreadyCancelled
from twisted.internet.task import LoopingCall

from tests.unit.fakes import FakeClient
from zabd.jute.opcodes import OpCode
from zabd.jute.txns import CreateSessionTxn, Txn, TxnHeader
from zabd.serving.standalone import ServerOptions, StandaloneServer
from zabd.storage.epochs import ACCEPTED_EPOCH, CURRENT_EPOCH
from zabd.storage.logformat import encode_record, file_header, scan_log
from zabd.testing.memdisk import MemoryDisk, MemoryEpochStore
from zabd.testing.memlog import SimTxnLog, parse_log
from zabd.testing.simelection import SimElectionNetwork
from zabd.testing.simnet import SimNetwork, StreamEnd
from zabd.testing.simulation import Simulation, SimulationStuck


def session_txn(zxid: int) -> Txn:
    return Txn(TxnHeader(zxid, 0, zxid, 0, OpCode.createSession), CreateSessionTxn(30000))


class Inbox:
    """Election messages received by one node, as (sender, payload)."""

    def __init__(self) -> None:
        self.got: list[tuple[int, bytes]] = []

    def __call__(self, sid: int, payload: bytes) -> None:
        self.got.append((sid, payload))

    def payloads(self, sender: int) -> list[bytes]:
        return [payload for sid, payload in self.got if sid == sender]


class Stream:
    """Records what one StreamEnd receives."""

    def __init__(self, end: StreamEnd) -> None:
        self.end = end
        self.chunks: list[bytes] = []
        self.closed = 0
        end.on_data = self.chunks.append
        end.on_close = self._closed

    def _closed(self) -> None:
        self.closed += 1

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def election_world(
    seed: int, nodes: tuple[int, ...] = (1, 2, 3), max_delay_ms: int = 20,
) -> tuple[Simulation, SimNetwork, dict[int, Inbox], dict[int, SimElectionNetwork]]:
    sim = Simulation(seed)
    net = SimNetwork(sim, 1, max_delay_ms)
    inboxes = {node: Inbox() for node in nodes}
    links = {node: net.election(node, inboxes[node], nodes) for node in nodes}
    return sim, net, inboxes, links


def listening_pair(sim: Simulation, net: SimNetwork, src: int = 1, dst: int = 2) -> tuple[Stream, list[Stream]]:
    accepted: list[Stream] = []
    net.listen(dst, "quorum", lambda end: accepted.append(Stream(end)))
    client = net.connect(src, dst, "quorum")
    assert client is not None
    stream = Stream(client)
    sim.run_until(lambda: bool(accepted), sim.now_ms + 1000)
    assert len(accepted) == 1
    return stream, accepted


# --------------------------------------------------------------------------- time


def busy_scenario(seed: int) -> list[tuple[int, str]]:
    sim, net, _inboxes, links = election_world(seed)
    for round_ in range(5):
        for node, link in links.items():
            for peer in links:
                link.send(peer, f"{node}:{round_}".encode())
    sim.run_for(1000)
    return list(sim.trace)


def test_same_seed_replays_the_same_trace() -> None:
    first = busy_scenario(7)
    assert len(first) > 30
    sim = Simulation(0)
    sim.trace.extend(first)
    assert "ms  elect: 1->2 delivered" in sim.format_trace()
    assert len(sim.format_trace(last=5).splitlines()) == 5
    assert busy_scenario(7) == first


def test_different_seeds_give_different_orders() -> None:
    assert busy_scenario(7) != busy_scenario(8)


def test_calls_run_in_time_order_and_ties_in_insertion_order() -> None:
    sim = Simulation(1)
    ran: list[str] = []
    sim.call_later(5, ran.append, "b")
    sim.call_later(1, ran.append, "a")
    sim.call_later(5, ran.append, "c")
    sim.call_at(5, ran.append, "d")
    sim.run_for(10)
    assert ran == ["a", "b", "c", "d"]
    assert sim.now_ms == 10


def test_cancel() -> None:
    sim = Simulation(1)
    ran: list[int] = []
    handle = sim.call_later(3, ran.append, 1)
    sim.call_later(4, ran.append, 2)
    handle.cancel()
    assert not handle.active()
    handle.cancel()  # again: nothing happens, as the sans-IO schedulers expect
    assert sim.pending() and sim.pending()[0].time_ms == 4
    sim.run_for(10)
    assert ran == [2]
    assert not sim.step()
    twisted_call = sim.clock.callLater(1, ran.append, 3)
    twisted_call.cancel()
    with pytest.raises(AlreadyCancelled):  # Twisted's IDelayedCall contract
        twisted_call.cancel()


def test_run_until_stops_when_the_predicate_holds() -> None:
    sim = Simulation(1)
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(sim.now_ms)
        sim.call_later(10, tick)

    sim.call_later(10, tick)
    assert sim.run_until(lambda: len(ticks) == 3, deadline_ms=1000)
    assert sim.now_ms == 30


def test_run_until_gives_up_at_the_deadline() -> None:
    sim = Simulation(1)
    sim.call_later(500, lambda: None)
    assert not sim.run_until(lambda: False, deadline_ms=200)
    assert sim.now_ms == 200
    assert len(sim.pending()) == 1  # the call due later is still pending


def test_a_call_loop_that_never_lets_time_move_is_reported() -> None:
    sim = Simulation(1, step_limit=100)

    def again() -> None:
        sim.call_later(0, again)

    sim.call_later(0, again)
    with pytest.raises(SimulationStuck):
        sim.run_for(1)


def test_reactor_time_adapter_drives_twisted_code() -> None:
    sim = Simulation(1, trace_events=True)
    fired: list[float] = []
    loop = LoopingCall(lambda: fired.append(sim.clock.seconds()))
    loop.clock = sim.clock
    loop.start(0.25, now=False)
    later = sim.clock.callLater(0.6, fired.append, -1.0)
    assert later in sim.clock.getDelayedCalls()
    later.delay(0.1)  # now due at 0.7s
    sim.run_for(1000)
    loop.stop()
    assert fired == [0.25, 0.5, -1.0, 0.75, 1.0]
    assert not sim.clock.getDelayedCalls()
    assert any("LoopingCall" in description for _, description in sim.trace)


def test_scope_kill_cancels_the_calls_of_one_process() -> None:
    sim = Simulation(1)
    node, other = sim.scope("node 1"), sim.scope("node 2")
    ran: list[str] = []
    node.call_later(5, ran.append, "dead")
    node.clock.callLater(0.005, ran.append, "dead too")
    other.call_later(5, ran.append, "alive")
    assert len(node.clock.getDelayedCalls()) == 2
    node.kill()
    assert not node.call_later(1, ran.append, "after death").active()
    sim.run_for(10)
    assert ran == ["alive"]
    assert node.pending() == []


def test_standalone_server_runs_on_the_simulated_clock_and_disk() -> None:
    sim = Simulation(3)
    disk = MemoryDisk()
    txn_log = SimTxnLog(sim, disk, fsync_ms=(20, 20))
    server = StandaloneServer(ServerOptions(), sim.clock.seconds, txn_log=txn_log)
    client = FakeClient(server)
    assert client.handshake() is None  # the createSession txn is not durable yet
    sim.run_for(100)
    response = client.read_connect_response()
    assert response is not None and response.sessionId != 0
    disk.crash()
    assert [zxid for zxid, _ in txn_log.records()] == [1]


# --------------------------------------------------------------------------- election links


def test_election_messages_keep_fifo_order_per_pair() -> None:
    sim, _net, inboxes, links = election_world(11, max_delay_ms=50)
    sent = {sender: [f"{sender}-{i}".encode() for i in range(100)] for sender in (1, 3)}
    for i in range(100):
        for sender in (1, 3):
            links[sender].send(2, sent[sender][i])
        sim.run_for(sim.rng.randint(0, 3))
    sim.run_for(1000)
    assert inboxes[2].payloads(1) == sent[1]
    assert inboxes[2].payloads(3) == sent[3]
    arrival_senders = [sid for sid, _ in inboxes[2].got]
    assert arrival_senders != sorted(arrival_senders)  # the two senders interleave


def test_loopback_arrives_on_a_later_turn() -> None:
    sim, _net, inboxes, links = election_world(1)
    links[1].send(1, b"me")
    assert inboxes[1].got == []
    sim.step()
    assert inboxes[1].got == [(1, b"me")]


def test_slot_of_capacity_one_keeps_the_newest_while_partitioned() -> None:
    sim, net, inboxes, links = election_world(5)
    net.partition([{1}, {2, 3}])
    for payload in (b"old", b"older", b"newest"):
        links[1].send(2, payload)
    assert not links[1].any_delivered()
    sim.run_for(100)
    assert inboxes[2].got == []
    net.heal()
    sim.run_for(100)
    assert inboxes[2].got == []  # healing dials nothing by itself
    links[1].connect_all()
    assert links[1].any_delivered()
    sim.run_for(100)
    assert inboxes[2].got == [(1, b"newest")]


def test_a_new_link_resends_the_last_payload_both_ways() -> None:
    sim, net, inboxes, links = election_world(5)
    links[1].send(2, b"vote of 1")
    links[2].send(1, b"vote of 2")
    sim.run_for(100)
    net.partition([{1}, {2, 3}])
    assert not links[2].connected(1)
    net.heal()
    links[2].connect_all()
    sim.run_for(100)
    assert inboxes[2].payloads(1) == [b"vote of 1", b"vote of 1"]
    assert inboxes[1].payloads(2) == [b"vote of 2", b"vote of 2"]


def test_messages_in_flight_are_lost_when_the_link_breaks() -> None:
    sim, net, inboxes, links = election_world(5)
    links[1].send(2, b"lost")
    net.partition([{1}, {2}, {3}])
    net.heal()
    sim.run_for(100)
    assert inboxes[2].got == []
    assert any("lost with its link" in description for _, description in sim.trace)


def test_drop_rate_loses_election_messages() -> None:
    sim, net, inboxes, links = election_world(5)
    net.drop_rate(0.5)
    for i in range(200):
        links[1].send(2, str(i).encode())
    sim.run_for(1000)
    received = inboxes[2].payloads(1)
    assert 50 < len(received) < 150
    assert received == sorted(received, key=int)  # what survives keeps its order


def test_a_dead_peers_waiting_payload_does_not_hide_the_delivered_ones() -> None:
    sim, net, inboxes, links = election_world(5)
    assert not links[1].any_delivered()  # no queue yet
    links[1].send(2, b"vote")
    sim.run_for(100)
    assert links[1].any_delivered()
    net.crash(3)
    links[1].send(3, b"vote")
    assert not links[1].connected(3) and links[1].any_delivered()  # 3's slot keeps it; 2's queue is empty
    net.partition([{1}, {2}])
    links[1].send(2, b"again")
    assert not links[1].any_delivered()  # no queue is empty: FLE reconnects instead


def test_lose_election_loses_chosen_directions_and_keeps_the_links() -> None:
    sim, net, inboxes, links = election_world(5)
    links[1].send(2, b"first")
    sim.run_for(100)
    net.lose_election([(1, 2)])
    links[1].send(2, b"lost")
    links[2].send(1, b"kept")
    sim.run_for(100)
    assert links[1].connected(2) and links[1].any_delivered()  # the link is up; the payload left the queue
    net.lose_election(())
    links[1].send(2, b"after")
    sim.run_for(100)
    assert inboxes[2].payloads(1) == [b"first", b"after"] and inboxes[1].payloads(2) == [b"kept"]


def test_crash_breaks_links_and_restart_hooks_rebuild() -> None:
    sim, net, inboxes, links = election_world(5)
    crashed: list[int] = []
    restarted: list[int] = []
    net.crash_hooks.append(crashed.append)
    net.restart_hooks.append(restarted.append)
    links[1].send(2, b"hello")
    sim.run_for(100)
    net.crash(2)
    links[1].send(2, b"to the dead")
    links[1].connect_all()
    assert not links[1].connected(2) and links[1].any_delivered()  # the payload waits; 3's queue is empty
    with pytest.raises(RuntimeError):
        net.election(2, Inbox(), (1, 2, 3))
    net.restart(2)
    reborn = Inbox()
    net.election(2, reborn, (1, 2, 3))
    links[1].connect_all()
    sim.run_for(100)
    assert (crashed, restarted) == ([2], [2])
    assert reborn.got == [(1, b"to the dead")]
    assert inboxes[2].payloads(1) == [b"hello"]  # the old process heard nothing more


# --------------------------------------------------------------------------- streams


def test_stream_chunks_reassemble_exactly() -> None:
    sim = Simulation(9)
    net = SimNetwork(sim, 1, 30)
    client, accepted = listening_pair(sim, net)
    rng = random.Random(1)
    writes = [rng.randbytes(rng.randint(1, 500)) for _ in range(50)]
    for data in writes:
        client.end.write(data)
        accepted[0].end.write(data[::-1])
        sim.run_for(rng.randint(0, 2))
    sim.run_for(1000)
    assert accepted[0].data == b"".join(writes)
    assert client.data == b"".join(data[::-1] for data in writes)
    assert len(accepted[0].chunks) > len(writes)  # some writes were cut


def test_the_client_hears_on_open_before_the_servers_bytes() -> None:
    sim = Simulation(2)
    net = SimNetwork(sim, 5, 10)
    accepted: list[Stream] = []
    events: list[str] = []

    def on_connection(end: StreamEnd) -> None:
        accepted.append(Stream(end))
        end.write(b"welcome")

    net.listen(2, "quorum", on_connection)
    client = net.connect(1, 2, "quorum")
    assert client is not None
    client.on_open = lambda: events.append("open")
    client.on_data = lambda data: events.append("data")
    client.write(b"early bytes")  # before the accept: it waits and follows it
    sim.run_for(100)
    assert accepted[0].data == b"early bytes"
    assert events[0] == "open" and events[1:] and set(events[1:]) == {"data"}


def test_connect_is_refused_without_a_listener_or_across_a_partition() -> None:
    sim = Simulation(2)
    net = SimNetwork(sim)
    assert net.connect(1, 2, "quorum") is None
    net.listen(2, "quorum", lambda end: None)
    net.partition([{1, 3}, {2}])
    assert net.connect(1, 2, "quorum") is None
    net.heal()
    assert net.connect(1, 2, "quorum") is not None


def test_partition_breaks_connections_and_heal_allows_new_ones() -> None:
    sim = Simulation(4)
    net = SimNetwork(sim)
    client, accepted = listening_pair(sim, net)
    client.end.write(b"in flight")
    net.partition([{1}, {2}])
    client.end.write(b"into the void")
    sim.run_for(100)
    assert (client.closed, accepted[0].closed) == (1, 1)
    assert accepted[0].data == b""
    assert net.connect(1, 2, "quorum") is None
    net.heal()
    assert net.connect(1, 2, "quorum") is not None


def test_close_reaches_the_other_end_after_its_data() -> None:
    sim = Simulation(4)
    net = SimNetwork(sim, 1, 50)
    client, accepted = listening_pair(sim, net)
    server = accepted[0]
    client.end.write(b"last words")
    client.end.close()
    server.end.write(b"too late")
    sim.run_for(200)
    assert server.data == b"last words" and server.closed == 1
    assert client.data == b"" and client.closed == 0  # close() is final for the closer


def test_a_crash_closes_connections_and_removes_listeners() -> None:
    sim = Simulation(4)
    net = SimNetwork(sim)
    client, accepted = listening_pair(sim, net)
    net.crash(2)
    sim.run_for(100)
    assert client.closed == 1
    assert accepted[0].closed == 0  # a dead process hears nothing
    net.restart(2)
    assert net.connect(1, 2, "quorum") is None  # nobody listens until the new process does
    net.listen(2, "quorum", lambda end: None)
    assert net.connect(1, 2, "quorum") is not None


def test_an_accept_that_meets_a_partition_closes_the_client() -> None:
    sim = Simulation(4)
    net = SimNetwork(sim, 10, 10)
    net.listen(2, "quorum", lambda end: pytest.fail("accepted across a partition"))
    end = net.connect(1, 2, "quorum")
    assert end is not None
    client = Stream(end)
    end.on_open = lambda: pytest.fail("opened across a partition")
    sim.run_for(5)
    net.partition([{1}, {2}])
    sim.run_for(100)
    assert client.closed == 1
    assert not any("open" in description for _, description in sim.trace)


# --------------------------------------------------------------------------- disk


def test_crash_loses_exactly_the_unsynced_bytes() -> None:
    disk = MemoryDisk()
    disk.write("d/f", b"synced")
    disk.fsync("d/f")
    disk.fsync_dir("d")
    disk.append("d/f", b" and not")
    disk.write("d/new", b"never named durably")
    disk.fsync("d/new")
    assert disk.read("d/f") == b"synced and not"
    disk.crash()
    assert disk.read("d/f") == b"synced"
    assert not disk.exists("d/new")
    assert disk.listdir("d") == ["f"]


def test_torn_writes_keep_a_prefix_of_the_unsynced_tail() -> None:
    kept = set()
    for seed in range(20):
        disk = MemoryDisk(random.Random(seed), torn_writes=True)
        disk.write("f", b"head")
        disk.fsync("f")
        disk.fsync_dir("")
        disk.append("f", b"0123456789")
        disk.crash()
        content = disk.read("f")
        assert (b"head0123456789").startswith(content) and content.startswith(b"head")
        kept.add(len(content))
    assert len(kept) > 3


def test_renames_and_unlinks_are_durable_after_a_directory_fsync() -> None:
    disk = MemoryDisk()
    for name in ("a", "b"):
        disk.write(f"d/{name}", name.encode())
        disk.fsync(f"d/{name}")
    disk.fsync_dir("d")
    disk.rename("d/a", "d/c")
    disk.unlink("d/b")
    disk.crash()
    assert disk.listdir("d") == ["a", "b"]
    disk.rename("d/a", "d/c")
    disk.unlink("d/b")
    disk.fsync_dir("d")
    disk.crash()
    assert disk.listdir("d") == ["c"] and disk.read("d/c") == b"a"


def test_epoch_store_is_atomic_and_durable() -> None:
    disk = MemoryDisk()
    store = MemoryEpochStore(disk)
    assert store.read_epoch(CURRENT_EPOCH) is None
    store.write_epoch(CURRENT_EPOCH, 4)
    store.write_epoch(ACCEPTED_EPOCH, 5)
    disk.crash()
    assert (store.read_epoch(CURRENT_EPOCH), store.read_epoch(ACCEPTED_EPOCH)) == (4, 5)
    assert disk.listdir("version-2") == [ACCEPTED_EPOCH, CURRENT_EPOCH]  # no temp file left
    assert disk.read("version-2/currentEpoch") == b"4"


def test_txn_log_reports_durable_in_order_with_group_commit() -> None:
    sim = Simulation(6)
    txn_log = SimTxnLog(sim, MemoryDisk(), fsync_ms=(5, 30))
    durable: list[int] = []
    txn_log.set_durable_callback(durable.append)
    for zxid in range(1, 4):
        txn_log.append(session_txn(zxid))
    sim.run_for(2)  # the first batch is being fsynced
    for zxid in range(4, 7):
        txn_log.append(session_txn(zxid))
    assert durable == []
    sim.run_for(100)
    assert durable == [3, 6]
    assert [zxid for zxid, _ in txn_log.records()] == [1, 2, 3, 4, 5, 6]
    assert txn_log.records()[0][1] == session_txn(1).to_bytes()


def test_after_a_crash_records_are_exactly_the_fsynced_prefix() -> None:
    sim = Simulation(6)
    disk = MemoryDisk()
    txn_log = SimTxnLog(sim, disk, fsync_ms=(10, 10))
    durable: list[int] = []
    txn_log.set_durable_callback(durable.append)
    txn_log.append(session_txn(1))
    txn_log.append(session_txn(2))
    sim.run_for(20)
    txn_log.append(session_txn(3))
    sim.run_for(5)  # written, fsync not done
    disk.crash()
    sim.run_for(100)
    assert durable == [2]  # the dead log reports nothing more
    assert [zxid for zxid, _ in txn_log.records()] == [1, 2]
    reopened = SimTxnLog(sim, disk)
    assert reopened.last_zxid == 2
    reopened.append(session_txn(3))
    sim.run_for(100)
    assert reopened.log_files() == ["version-2/log.1", "version-2/log.3"]
    assert [zxid for zxid, _ in reopened.records()] == [1, 2, 3]


def test_torn_log_tail_is_cut_on_reopen() -> None:
    sims = []
    for seed in range(10):
        sim = Simulation(seed)
        disk = MemoryDisk(sim.rng, torn_writes=True)
        txn_log = SimTxnLog(sim, disk, fsync_ms=(10, 10))
        txn_log.append(session_txn(1))
        sim.run_for(20)
        for zxid in range(2, 6):
            txn_log.append(session_txn(zxid))
        sim.run_for(1)
        disk.crash()
        zxids = [zxid for zxid, _ in txn_log.records()]
        assert zxids == list(range(1, len(zxids) + 1)) and zxids[:1] == [1]
        reopened = SimTxnLog(sim, disk)
        assert reopened.last_zxid == zxids[-1]
        assert parse_log(disk.read("version-2/log.1"))[1] == len(disk.read("version-2/log.1"))
        sims.append(len(zxids))
    assert len(set(sims)) > 1  # different seeds tear at different places


def test_truncate_after_drops_later_records_durably() -> None:
    sim = Simulation(6)
    disk = MemoryDisk()
    txn_log = SimTxnLog(sim, disk)
    for zxid in (1, 2, 3):
        txn_log.append(session_txn(zxid))
    sim.run_for(50)
    txn_log.roll()
    for zxid in (4, 5):
        txn_log.append(session_txn(zxid))
    sim.run_for(50)
    txn_log.truncate_after(2)
    disk.crash()
    assert [zxid for zxid, _ in txn_log.records()] == [1, 2]
    assert txn_log.log_files() == ["version-2/log.1"]


def test_log_bytes_are_zookeeper_format(tmp_path: Path) -> None:
    sim = Simulation(6)
    disk = MemoryDisk()
    txn_log = SimTxnLog(sim, disk, dbid=0)
    for zxid in (0x100000001, 0x100000002):
        txn_log.append(session_txn(zxid))
    sim.run_for(50)
    data = disk.read("version-2/log.100000001", durable=True)
    assert data == file_header(0) + b"".join(encode_record(session_txn(z).to_bytes()) for z in (0x100000001, 0x100000002))
    path = tmp_path / "log.100000001"
    path.write_bytes(data)
    assert [record.zxid for record in scan_log(str(path)).records] == [0x100000001, 0x100000002]
