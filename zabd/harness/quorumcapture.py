"""Record real ZooKeeper 3.8 quorum-port traffic as golden test fixtures.

``python -m zabd.harness.quorumcapture capture OUTDIR`` starts a 3-peer 3.8.0
ensemble on 127.0.0.1 in which peer 1 reaches the leader (peer 3: the highest
sid wins at equal zxids) through a recording TCP relay, and writes:

- ``quorum_capture_snap_*.hex``: peer 1 joins with an empty data dir (SNAP);
- ``quorum_capture_diff_*.hex``: peer 1 restarts behind the leader (DIFF),
  then a client session moves to it (REVALIDATE) and writes through it.

``*_to_learner`` holds the leader's bytes, ``*_to_leader`` the learner's, both
cut to whole packets. The relay (``relay`` subcommand) is a single-threaded
``selectors`` loop in its own process, one file pair per connection. Every
wait polls a condition against a deadline.
"""
from __future__ import annotations

import argparse
import selectors
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from zabd.quorum.packets import PacketStreamDecoder
from zabd.harness.commands import LOCALHOST, ZOOKEEPER_MAIN, zabd_environment, zookeeper_command
from zabd.harness.probes import four_letter, free_port, wait_until
from zabd.harness.processes import ServerProcess

SIDS = (1, 2, 3)
LEADER, RELAYED = 3, 1
TIMEOUT = 60.0
QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


# --------------------------------------------------------------------------- relay


def relay(listen_port: int, target_port: int, out_prefix: str) -> None:
    """Forward every connection on listen_port to target_port, appending each
    direction to ``<out_prefix>.<n>.to_leader`` / ``.to_learner``."""
    server = socket.create_server((LOCALHOST, listen_port))
    server.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ, None)
    count = 0
    while True:
        for key, _ in sel.select():
            if key.data is None:
                learner, _ = server.accept()
                count += 1
                leader = socket.create_connection((LOCALHOST, target_port))
                for side, other, name in ((learner, leader, "to_leader"), (leader, learner, "to_learner")):
                    record = open(f"{out_prefix}.{count}.{name}", "ab")  # noqa: SIM115 - lives with the socket
                    sel.register(side, selectors.EVENT_READ, (other, record))
                continue
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            peer, record = key.data
            try:
                data = sock.recv(65536)
            except ConnectionError:  # a peer that died is a peer that closed
                data = b""
            if not data:  # one side closed: close the pair
                for side in (sock, peer):
                    if side.fileno() >= 0:
                        sel.get_key(side).data[1].close()
                        sel.unregister(side)
                        side.close()
                continue
            record.write(data)
            record.flush()
            peer.sendall(data)


# --------------------------------------------------------------------------- ensemble


class Ensemble:
    """A ZooKeeper ensemble whose quorum traffic a relay records, for the wire captures."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.client = {sid: free_port() for sid in SIDS}
        self.quorum = {sid: free_port() for sid in SIDS}
        self.election = {sid: free_port() for sid in SIDS}
        self.relay_port = free_port()
        self.peers: dict[int, ServerProcess] = {}
        self.relay_process: subprocess.Popen[bytes] | None = None

    def config(self, sid: int) -> Path:
        workdir = self.root / f"p{sid}"
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "myid").write_text(str(sid))
        lines = ["tickTime=200", "initLimit=10", "syncLimit=5", f"dataDir={data}",
                 f"clientPort={self.client[sid]}", f"clientPortAddress={LOCALHOST}",
                 "4lw.commands.whitelist=*", "admin.enableServer=false"]
        for peer in SIDS:
            quorum = self.relay_port if (sid, peer) == (RELAYED, LEADER) else self.quorum[peer]
            lines.append(f"server.{peer}={LOCALHOST}:{quorum}:{self.election[peer]}")
        cfg = workdir / "zoo.cfg"
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    def start(self, sid: int) -> None:
        cfg = self.config(sid)
        workdir = cfg.parent
        log = open(workdir / "server.log", "ab")  # noqa: SIM115 - owned by the ServerProcess
        # The standalone command, with the quorum peer's main class.
        command = [QUORUM_MAIN if arg == ZOOKEEPER_MAIN else arg for arg in zookeeper_command(cfg, workdir, None)]
        process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
        self.peers[sid] = ServerProcess("zookeeper", LOCALHOST, self.client[sid], workdir, process,
                                        workdir / "server.log", log)

    def mode(self, sid: int) -> str:
        try:
            text = four_letter(LOCALHOST, self.client[sid], "srvr", timeout=2.0)
        except OSError:
            return ""
        return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Mode:")), "")

    def wait_mode(self, sid: int, mode: str) -> None:
        wait_until(lambda: self.mode(sid) == mode, TIMEOUT, f"peer {sid} in mode {mode}", self.peers[sid].describe)

    def start_relay(self, prefix: Path) -> None:
        self.relay_process = subprocess.Popen(
            [sys.executable, "-m", "zabd.harness.quorumcapture", "relay", str(self.relay_port),
             str(self.quorum[LEADER]), str(prefix)], env=zabd_environment(), stdin=subprocess.DEVNULL)

    def stop_relay(self) -> None:
        if self.relay_process is not None:
            self.relay_process.terminate()
            self.relay_process.wait(10)
            self.relay_process = None

    def join_through_relay(self, case: str) -> None:
        self.start_relay(self.root / case)
        self.start(RELAYED)
        self.wait_mode(RELAYED, "follower")

    def leave_and_save(self, case: str, outdir: Path) -> None:
        self.peers[RELAYED].stop()
        self.stop_relay()
        save(self.root / case, outdir, case)

    def stop_all(self) -> None:
        self.stop_relay()
        for peer in self.peers.values():
            peer.stop()


def whole_packets(raw: bytes) -> bytes:
    """The longest prefix of ``raw`` made of whole packets (and SNAP streams)."""
    decoder = PacketStreamDecoder()
    decoder.feed(raw)
    return raw[:len(raw) - decoder.pending()]


def write_hex(path: Path, raw: bytes, note: str) -> None:
    lines = [f"# {note}", f"# {len(raw)} bytes"]
    lines += [raw[i:i + 32].hex() for i in range(0, len(raw), 32)]
    path.write_text("\n".join(lines) + "\n")


def save(prefix: Path, outdir: Path, case: str) -> None:
    """Keep the last connection of the relayed peer (earlier attempts may have failed)."""
    last = max(int(p.name.split(".")[-2]) for p in prefix.parent.glob(f"{prefix.name}.*.to_leader"))
    for direction in ("to_learner", "to_leader"):
        raw = Path(f"{prefix}.{last}.{direction}").read_bytes()
        note = f"ZooKeeper 3.8.0 quorum traffic, {case} case, {direction.replace('_', ' ')} (peer {RELAYED})"
        write_hex(outdir / f"quorum_capture_{case}_{direction}.hex", whole_packets(raw), note)


def capture(outdir: Path) -> None:
    from kazoo.client import KazooClient  # only the capture needs it
    from kazoo.security import make_digest_acl

    with tempfile.TemporaryDirectory(prefix="zabd-capture-") as tmp:
        ensemble = Ensemble(Path(tmp))
        try:
            ensemble.start(2)
            ensemble.start(LEADER)
            ensemble.wait_mode(LEADER, "leader")
            ensemble.wait_mode(2, "follower")
            at_leader = KazooClient(hosts=f"{LOCALHOST}:{ensemble.client[LEADER]}", timeout=10)
            at_leader.start(timeout=TIMEOUT)
            at_leader.create("/a", b"alpha")
            at_leader.create("/a/seq-", b"s", sequence=True)
            at_leader.create("/a/eph", b"e", ephemeral=True)
            at_leader.create("/secret", b"x", acl=[make_digest_acl("u", "p", all=True)])

            ensemble.join_through_relay("snap")  # an empty data dir: SNAP
            at_learner = KazooClient(hosts=f"{LOCALHOST}:{ensemble.client[RELAYED]}", timeout=10)
            at_learner.start(timeout=TIMEOUT)
            at_learner.create("/via1", b"through the learner")
            at_learner.stop()
            at_learner.close()
            ensemble.leave_and_save("snap", outdir)

            for i in range(3):
                at_leader.create(f"/d{i}", b"later")
            at_leader.set("/a", b"alpha-2")
            ensemble.join_through_relay("diff")  # a few txns behind: DIFF
            session_id, password = at_leader.client_id
            moved = KazooClient(hosts=f"{LOCALHOST}:{ensemble.client[RELAYED]}", timeout=10,
                                client_id=(session_id, password))
            moved.start(timeout=TIMEOUT)  # the learner revalidates the session with the leader
            moved.set("/a", b"alpha-3")
            moved.stop()
            moved.close()
            ensemble.leave_and_save("diff", outdir)
            at_leader.stop()
            at_leader.close()
        finally:
            ensemble.stop_all()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    relay_args = sub.add_parser("relay")
    relay_args.add_argument("listen_port", type=int)
    relay_args.add_argument("target_port", type=int)
    relay_args.add_argument("out_prefix")
    capture_args = sub.add_parser("capture")
    capture_args.add_argument("outdir", type=Path)
    args = parser.parse_args(argv)
    if args.command == "relay":
        relay(args.listen_port, args.target_port, args.out_prefix)
    else:
        args.outdir.mkdir(parents=True, exist_ok=True)
        capture(args.outdir)


if __name__ == "__main__":
    main()
