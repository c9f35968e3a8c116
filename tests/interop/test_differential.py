"""Differential test: seeded random single-session op sequences against zabd and ZooKeeper.

Each op runs on one kazoo session per server, in lockstep. Results, stats, error codes,
reply zxids and the watch notifications received are compared after every op, with zxids
renamed per server in order of first appearance (so equality is kept) and their relative
order checked at the end; times are dropped and ephemeralOwner becomes "self"/"other"/0.

Reproduce a failure with ZABD_DIFF_SEED=<seed> (ZABD_DIFF_OPS=<n> changes the length).
ZABD_DIFF_AGAINST=zookeeper compares two ZooKeepers, which proves the normalisation sound.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.serialization import (
    GetACL, GetChildren, GetChildren2, GetData, Exists, Watch, read_string,
)
from kazoo.protocol.states import WatchedEvent, ZnodeStat
from kazoo.security import ACL

from tests.interop.differential_ops import (
    ACLS, PASSWORDS, Op, OpGenerator, RawRequest, buffer, create_body, op, read_multi,
    read_stat, read_strings, strings, ustring,
)
from zabd.harness.processes import ServerProcess, start_zabd, start_zookeeper, wait_until

SERVER_CFG = {"extendedTypesEnabled": "true"}
DEFAULT_SEEDS = (1, 2, 3)
OP_TIMEOUT = 10.0
CONTEXT_OPS = 8
SEEDS = [int(s) for s in os.environ.get("ZABD_DIFF_SEED", "").split(",") if s] or DEFAULT_SEEDS
OPS_PER_RUN = int(os.environ.get("ZABD_DIFF_OPS", "600"))
AGAINST = os.environ.get("ZABD_DIFF_AGAINST", "zabd")

Outcome = Any
REPLY_ERRORS = (KazooException, KazooTimeoutError, struct.error, UnicodeDecodeError)


def _ignore_watch(event: WatchedEvent) -> None:
    """kazoo needs a callable to send watch=true; events are recorded off the wire."""


class Normaliser:
    """Per-server renaming of zxids (first seen -> 1, 2, ...) and session ids."""

    def __init__(self) -> None:
        self.names: dict[int, int] = {}
        self.session_id = 0

    def zxid(self, zxid: int) -> int:
        return zxid if zxid <= 0 else self.names.setdefault(zxid, len(self.names) + 1)

    def owner(self, owner: int) -> int | str:
        return 0 if owner == 0 else "self" if owner == self.session_id else "other"

    def stat(self, stat: ZnodeStat | None) -> dict[str, Any] | None:
        if stat is None:
            return None
        return {"czxid": self.zxid(stat.czxid), "mzxid": self.zxid(stat.mzxid),
                "pzxid": self.zxid(stat.pzxid), "version": stat.version,
                "cversion": stat.cversion, "aversion": stat.aversion,
                "ephemeralOwner": self.owner(stat.ephemeralOwner),
                "dataLength": stat.dataLength, "numChildren": stat.numChildren}

    def value(self, value: Any) -> Any:
        if isinstance(value, ZnodeStat):
            return self.stat(value)
        if isinstance(value, ACL):
            return (value.perms, value.id.scheme, value.id.id)
        if isinstance(value, BaseException):
            return {"error": type(value).__name__}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value

    def zxid_order(self) -> list[int]:
        """Names listed by increasing real zxid: equal lists mean equal relative order."""
        return [name for _, name in sorted(self.names.items())]


def _read_client_infos(buf: bytes, offset: int) -> list[tuple[str, str]]:
    (count,), offset, infos = struct.unpack_from("!i", buf, offset), offset + 4, []
    for _ in range(count):
        scheme, offset = read_string(buf, offset)
        user, offset = read_string(buf, offset)
        infos.append((scheme, user))
    return infos


def _read_create2(buf: bytes, offset: int) -> tuple[str, ZnodeStat]:
    path, offset = read_string(buf, offset)
    return path, read_stat(buf, offset)[0]


def _read_int(buf: bytes, offset: int) -> int:
    value: int = struct.unpack_from("!i", buf, offset)[0]
    return value


def _multi_body(subs: tuple[tuple[Any, ...], ...]) -> bytes:
    body = b""
    for sub in subs:
        if sub[0] == "create":
            _, opcode, path, value, acl, flags, ttl = sub
            part = create_body(path, value, ACLS[acl], flags, ttl if opcode == 21 else None)
        elif sub[0] == "set":
            opcode, part = 5, ustring(sub[1]) + buffer(sub[2]) + struct.pack("!i", sub[3])
        elif sub[0] in ("get", "children"):
            opcode = 4 if sub[0] == "get" else 8
            part = ustring(sub[1]) + bytes([sub[2]])
        else:
            opcode = 2 if sub[0] == "delete" else 13
            part = ustring(sub[1]) + struct.pack("!i", sub[2])
        body += struct.pack("!iBi", opcode, 0, -1) + part
    return body + struct.pack("!iBi", -1, 1, -1)


RAW_READ_REPLIES: dict[int, Callable[[bytes, int], Any]] = {
    3: Exists.deserialize, 4: GetData.deserialize, 8: GetChildren.deserialize,
    12: GetChildren2.deserialize, 6: GetACL.deserialize,
}


class Session:
    """One kazoo session to one server that records every watch notification it receives."""

    def __init__(self, address: str, normaliser: Normaliser) -> None:
        self.client = KazooClient(hosts=address, timeout=OP_TIMEOUT)
        self.norm = normaliser
        self.events: list[tuple[int, int, str]] = []
        self.reply_zxids: list[int] = []
        connection = self.client._connection
        forward = connection._read_watch_event

        def record(buf: bytes, offset: int) -> Any:
            event, _ = Watch.deserialize(buf, offset)
            self.events.append((event.type, event.state, event.path))
            return forward(buf, offset)

        connection._read_watch_event = record  # runs on the reader thread, before replies
        self.client.start(timeout=30)
        self.norm.session_id = self.client.client_id[0]

    def close(self) -> None:
        self.client.stop()
        self.client.close()

    def perform(self, made: Op) -> dict[str, Any]:
        seen = len(self.events)
        try:
            outcome = getattr(self, f"_do_{made.kind}")(**made.kw)
        except REPLY_ERRORS as error:  # error codes, timeouts, undecodable replies
            outcome = {"error": type(error).__name__}
        self.reply_zxids.append(self.client.last_zxid)
        # Notifications for this session precede the reply of the op that caused them.
        return {"outcome": outcome, "zxid": self.norm.zxid(self.client.last_zxid),
                "events": self.events[seen:]}

    def _raw(self, opcode: int, body: bytes, reply: Callable[[bytes, int], Any]) -> Any:
        result = self.client.handler.async_result()
        self.client._call(RawRequest(opcode, body, reply), result)
        return result.get(timeout=OP_TIMEOUT)

    def _stat(self, stat: ZnodeStat) -> dict[str, Any]:
        return {"stat": self.norm.stat(stat)}

    def _do_create(self, path: str, value: bytes | None, acl: str, ephemeral: bool,
                   sequence: bool, makepath: bool, include_data: bool) -> Outcome:
        created = self.client.create_async(
            path, value, ACLS[acl], ephemeral, sequence, makepath, include_data
        ).get(timeout=OP_TIMEOUT)
        if include_data:
            return {"created": created[0], **self._stat(created[1])}
        return {"created": created}

    def _do_create_raw(self, opcode: int, path: str, value: bytes | None, acl: str, flags: int,
                       ttl: int) -> Outcome:
        body = create_body(path, value, ACLS[acl], flags, ttl if opcode == 21 else None)
        if opcode == 1:
            return {"created": self._raw(opcode, body, lambda b, o: read_string(b, o)[0])}
        created, stat = self._raw(opcode, body, _read_create2)
        return {"created": created, **self._stat(stat)}

    def _do_delete(self, path: str, version: int) -> Outcome:
        return {"deleted": self.client.delete_async(path, version).get(timeout=OP_TIMEOUT)}

    def _do_exists(self, path: str, watch: bool) -> Outcome:
        found = self.client.exists_async(path, _ignore_watch if watch else None)
        return self._stat(found.get(timeout=OP_TIMEOUT))

    def _do_get(self, path: str, watch: bool) -> Outcome:
        got = self.client.get_async(path, _ignore_watch if watch else None)
        data, stat = got.get(timeout=OP_TIMEOUT)
        return {"data": data, **self._stat(stat)}

    def _do_set(self, path: str, value: bytes | None, version: int) -> Outcome:
        return self._stat(self.client.set_async(path, value, version).get(timeout=OP_TIMEOUT))

    def _do_get_children(self, path: str, watch: bool, include_data: bool) -> Outcome:
        listed = self.client.get_children_async(path, _ignore_watch if watch else None,
                                                include_data).get(timeout=OP_TIMEOUT)
        if include_data:
            return {"children": sorted(listed[0]), **self._stat(listed[1])}
        return {"children": sorted(listed)}

    def _do_get_acls(self, path: str) -> Outcome:
        acl, stat = self.client.get_acls_async(path).get(timeout=OP_TIMEOUT)
        # Sorted: entries expanded from "auth" follow the hash order of the auth ids.
        return {"acl": self.norm.value(acl), **self._stat(stat)}

    def _do_set_acls(self, path: str, acl: str, version: int) -> Outcome:
        stat = self.client.set_acls_async(path, ACLS[acl], version).get(timeout=OP_TIMEOUT)
        return self._stat(stat)

    def _do_sync(self, path: str) -> Outcome:
        return {"synced": self.client.sync_async(path).get(timeout=OP_TIMEOUT)}

    def _do_transaction(self, ops: tuple[tuple[Any, ...], ...]) -> Outcome:
        txn = self.client.transaction()
        for sub in ops:
            if sub[0] == "create":
                _, _, path, value, acl, flags, _ = sub
                txn.create(path, value, ACLS[acl], bool(flags & 1), bool(flags & 2))
            elif sub[0] == "set":
                txn.set_data(*sub[1:])
            else:
                getattr(txn, sub[0])(*sub[1:])
        return {"results": self.norm.value(txn.commit_async().get(timeout=OP_TIMEOUT))}

    def _do_multi(self, ops: tuple[tuple[Any, ...], ...]) -> Outcome:
        return {"results": self.norm.value(self._raw(14, _multi_body(ops), read_multi))}

    def _do_multi_read(self, reads: tuple[tuple[Any, ...], ...]) -> Outcome:
        results = self._raw(22, _multi_body(reads), read_multi)
        return {"results": [[t, e, sorted(p) if t == 8 else self.norm.value(p)]
                            for t, e, p in results]}

    def _do_get_ephemerals(self, prefix: str) -> Outcome:
        paths = self._raw(103, ustring(prefix), lambda b, o: read_strings(b, o)[0])
        return {"ephemerals": sorted(paths)}

    def _do_get_all_children_number(self, path: str) -> Outcome:
        return {"count": self._raw(104, ustring(path), _read_int)}

    def _do_whoami(self) -> Outcome:
        # Sorted: ZooKeeper lists a connection's auth ids in Java hash-set order.
        return {"ids": self._raw(107, b"", _read_client_infos)}

    def _do_add_watch(self, path: str, mode: int) -> Outcome:
        return {"err": self._raw(106, ustring(path) + struct.pack("!i", mode), _read_int)}

    def _do_remove_watches(self, path: str, watcher_type: int) -> Outcome:
        return {"done": self._raw(18, ustring(path) + struct.pack("!i", watcher_type), _none)}

    def _do_check_watches(self, path: str, watcher_type: int) -> Outcome:
        return {"done": self._raw(17, ustring(path) + struct.pack("!i", watcher_type), _none)}

    def _do_set_watches(self, since_op: int, data: list[str], exist: list[str],
                        child: list[str], persistent: list[str] | None,
                        recursive: list[str] | None) -> Outcome:
        body = struct.pack("!q", self.reply_zxids[since_op]) + strings(data)
        body += strings(exist) + strings(child)
        if persistent is None or recursive is None:
            return {"done": self._raw(101, body, _none)}
        return {"done": self._raw(105, body + strings(persistent) + strings(recursive), _none)}

    def _do_reconfig(self, joining: str) -> Outcome:
        data, stat = self.client.reconfig_async(joining, None, None, -1).get(timeout=OP_TIMEOUT)
        return {"data": data, **self._stat(stat)}

    def _do_raw_read(self, opcode: int, path: str) -> Outcome:
        body = ustring(path) + (b"" if opcode == 6 else b"\x00")
        reply = self._raw(opcode, body, RAW_READ_REPLIES[opcode])
        if opcode in (8, 12):  # children come in hash order
            reply = sorted(reply) if opcode == 8 else (sorted(reply[0]), reply[1])
        return {"reply": self.norm.value(reply)}

    def _do_delete_container(self, path: str) -> Outcome:
        # Opcode 20's body is the bare UTF-8 path (normally only the container sweeper sends it).
        return {"done": self._raw(20, path.encode(), _none)}

    def _do_unknown_opcode(self, opcode: int) -> Outcome:
        return {"done": self._raw(opcode, b"", _none)}

    def _do_add_auth(self, user: str) -> Outcome:
        credential = f"{user}:{PASSWORDS[user]}"
        return {"auth": self.client.add_auth_async("digest", credential).get(timeout=OP_TIMEOUT)}


def _none(buf: bytes, offset: int) -> bool:
    return True


def final_state(address: str, norm: Normaliser, root: str) -> list[Any]:
    """What a fresh session sees once the run's session closed: the tree under root (the
    closed session's ephemerals gone), its own identity, then a failing auth packet."""
    session = Session(address, norm)
    seen: list[Any] = []
    try:
        pending = [root]
        while pending:
            path = pending.pop()
            for made in (op("get", path=path, watch=False), op("get_acls", path=path),
                         op("get_children", path=path, watch=False, include_data=False)):
                seen.append((made.describe(), session.perform(made)))
            children = seen[-1][1]["outcome"].get("children", [])
            pending.extend(f"{path}/{child}" for child in reversed(children))
        seen.append(("whoami", session.perform(op("whoami"))))
        seen.append(("get_ephemerals", session.perform(op("get_ephemerals", prefix="/"))))
        try:
            session.client.add_auth_async("nosuchscheme", "x").get(timeout=OP_TIMEOUT)
            seen.append(("add_auth(nosuchscheme)", "accepted"))
        except KazooException as error:
            seen.append(("add_auth(nosuchscheme)", type(error).__name__))
    finally:
        session.close()
    return seen + [("opcode 99", unknown_opcode_outcome(address, norm))]


def unknown_opcode_outcome(address: str, norm: Normaliser) -> Any:
    """An unknown opcode gets UNIMPLEMENTED, then the server drops the connection."""
    session = Session(address, norm)
    states: list[str] = []

    def note_state(state: str) -> None:
        states.append(str(state))

    session.client.add_listener(note_state)
    try:
        outcome = session.perform(op("unknown_opcode", opcode=99))["outcome"]
        wait_until(lambda: "SUSPENDED" in states, OP_TIMEOUT, "the connection to be dropped")
        return outcome
    finally:
        session.close()


def _report(seed: int, index: int, what: str, expected: Any, actual: Any,
            history: list[tuple[Op, dict[str, Any]]]) -> str:
    lines = [f"differential mismatch: seed={seed}, op #{index}, zookeeper vs {AGAINST}",
             f"reproduce: ZABD_DIFF_SEED={seed} ZABD_DIFF_OPS={OPS_PER_RUN} "
             "python -m pytest tests/interop/test_differential.py -q",
             "preceding ops (identical on both servers):"]
    start = max(0, len(history) - CONTEXT_OPS)
    for number, (made, entry) in enumerate(history[start:], start):
        lines.append(f"  #{number} {made.describe()}\n      -> {entry}")
    lines += [f"op #{index}: {what}", f"  zookeeper: {expected}", f"  {AGAINST}: {actual}"]
    return "\n".join(lines)


def run_differential(seed: int, reference: str, candidate: str) -> str:
    """Run one seeded sequence on both servers in lockstep; return a mismatch report or ""."""
    root = f"/differential-{seed}"
    generator = OpGenerator(seed, root)
    norms = (Normaliser(), Normaliser())
    sessions = (Session(reference, norms[0]), Session(candidate, norms[1]))
    history: list[tuple[Op, dict[str, Any]]] = []
    try:
        for index in range(OPS_PER_RUN):
            made = generator.next_op()
            expected, actual = (session.perform(made) for session in sessions)
            if expected != actual:
                return _report(seed, index, made.describe(), expected, actual, history)
            history.append((made, expected))
            generator.observe(made, expected["outcome"])
    finally:
        for session in sessions:
            session.close()
    finals = (final_state(reference, norms[0], root), final_state(candidate, norms[1], root))
    for number, (expected, actual) in enumerate(zip(*finals, strict=False)):
        if expected != actual:
            return _report(seed, OPS_PER_RUN + number, "final state", expected, actual, history)
    if len(finals[0]) != len(finals[1]):
        return _report(seed, OPS_PER_RUN, "final state length", len(finals[0]),
                       len(finals[1]), history)
    if norms[0].zxid_order() != norms[1].zxid_order():
        return _report(seed, OPS_PER_RUN, "zxid names by increasing zxid",
                       norms[0].zxid_order(), norms[1].zxid_order(), history)
    return ""


@pytest.fixture
def server_pair(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Fresh servers per seed: runs stay far shorter than the 60 s container/TTL sweep."""
    if AGAINST not in ("zabd", "zookeeper"):
        pytest.fail(f"ZABD_DIFF_AGAINST must be zabd or zookeeper, not {AGAINST!r}")
    with start_zookeeper(tmp_path / "zookeeper", SERVER_CFG) as reference:
        if AGAINST == "zookeeper":
            candidate = start_zookeeper(tmp_path / "zookeeper-2", SERVER_CFG)
        else:
            candidate = start_zabd(tmp_path / "zabd", SERVER_CFG)
        with candidate:
            yield reference, candidate


@pytest.mark.parametrize("seed", SEEDS)
def test_random_single_session_ops_match_zookeeper(
    seed: int, server_pair: tuple[ServerProcess, ServerProcess]
) -> None:
    reference, candidate = server_pair
    report = run_differential(seed, reference.address(), candidate.address())
    if report:
        pytest.fail(f"{report}\n{candidate.describe(tail_chars=4000)}", pytrace=False)
