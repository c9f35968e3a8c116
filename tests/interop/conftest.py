"""Fixtures for interop tests: real servers on 127.0.0.1, clients that always stop.

Every test that takes the ``server`` fixture runs once per target named in
``ZABD_INTEROP_TARGETS`` (or ``--interop-targets``; default "zabd,zookeeper").
Apache ZooKeeper proves a test right; zabd is what the test checks.
A module may override ``server_extra_cfg`` (module scope) to configure its servers.
When a test fails, the part of the server log written during that test is
attached to the report.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.serialization import Watch, read_string
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL, OPEN_ACL_UNSAFE

from zabd.harness.processes import ServerProcess, start_zabd, start_zookeeper

TARGETS_ENV = "ZABD_INTEROP_TARGETS"
KNOWN_TARGETS = ("zabd", "zookeeper")
CLIENT_DEADLINE = 15.0

_LOG_OFFSET = pytest.StashKey[tuple[ServerProcess, int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--interop-targets",
        default=None,
        help=f"comma-separated servers to test against ({', '.join(KNOWN_TARGETS)}); "
        f"overrides ${TARGETS_ENV}",
    )


def interop_targets(config: pytest.Config) -> list[str]:
    raw = config.getoption("--interop-targets", default=None) or os.environ.get(
        TARGETS_ENV, ",".join(KNOWN_TARGETS)
    )
    targets = [name.strip() for name in str(raw).split(",") if name.strip()]
    unknown = [name for name in targets if name not in KNOWN_TARGETS]
    if unknown or not targets:
        raise pytest.UsageError(f"{TARGETS_ENV}: unknown or empty targets {unknown or raw!r}")
    return targets


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" in metafunc.fixturenames:
        metafunc.parametrize("server", interop_targets(metafunc.config), indirect=True, scope="module")
    if "target_kind" in metafunc.fixturenames:
        metafunc.parametrize("target_kind", interop_targets(metafunc.config))


def start_server(
    kind: str, workdir: Path, extra_cfg: Mapping[str, str] | None = None, port: int | None = None
) -> ServerProcess:
    """start_zabd or start_zookeeper, by target name."""
    start = {"zabd": start_zabd, "zookeeper": start_zookeeper}[kind]
    return start(workdir, extra_cfg, port)


# ---- servers ---------------------------------------------------------------


@pytest.fixture(scope="module")
def server_extra_cfg() -> Mapping[str, str]:
    """Extra zoo.cfg settings for this module's servers (override in a module)."""
    return {}


@pytest.fixture(scope="module")
def zookeeper_server(
    tmp_path_factory: pytest.TempPathFactory, server_extra_cfg: Mapping[str, str]
) -> Iterator[ServerProcess]:
    with start_zookeeper(tmp_path_factory.mktemp("zookeeper"), server_extra_cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def zabd_server(
    tmp_path_factory: pytest.TempPathFactory, server_extra_cfg: Mapping[str, str]
) -> Iterator[ServerProcess]:
    with start_zabd(tmp_path_factory.mktemp("zabd"), server_extra_cfg) as srv:
        yield srv


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> ServerProcess:
    srv: ServerProcess = request.getfixturevalue(f"{request.param}_server")
    return srv


@pytest.fixture(autouse=True)
def _remember_log_offset(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        srv: ServerProcess = request.getfixturevalue("server")
        request.node.stash[_LOG_OFFSET] = (srv, len(srv.log_text()))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and _LOG_OFFSET in item.stash:
        srv, offset = item.stash[_LOG_OFFSET]
        text = srv.log_text()[offset:][-30000:]
        state = "running" if srv.is_running() else f"exited {srv.process.returncode}"
        report.sections.append(
            (f"{srv.kind} server log during test ({srv.address()}, {state}, {srv.log_path})", text)
        )


@pytest.fixture
def node_path(request: pytest.FixtureRequest) -> str:
    """A fresh top-level path unique to this test (not created)."""
    name = getattr(request.node, "originalname", request.node.name)
    return f"/{name}-{uuid.uuid4().hex[:8]}"


def require_executable(path: str) -> str:
    """Fail (never skip) when a client binary the interop suite needs is missing."""
    found = shutil.which(path)
    if found is None:
        pytest.fail(f"required client binary not found or not executable: {path}", pytrace=False)
    return found


# ---- kazoo -----------------------------------------------------------------


@contextmanager
def kazoo_client(
    srv: ServerProcess | str, *, session_timeout: float = 10.0, start_timeout: float = CLIENT_DEADLINE, **kwargs: Any
) -> Iterator[KazooClient]:
    """A started KazooClient for ``srv`` (a server, or a kazoo host string); always stopped and closed afterwards."""
    hosts = srv if isinstance(srv, str) else srv.address()
    client = KazooClient(hosts=hosts, timeout=session_timeout, **kwargs)
    try:
        client.start(timeout=start_timeout)
        yield client
    finally:
        client.stop()
        client.close()


@pytest.fixture
def zk(server: ServerProcess) -> Iterator[KazooClient]:
    with kazoo_client(server) as client:
        yield client


@dataclass(frozen=True)
class RawEvent:
    type: int  # EventType: 1 created, 2 deleted, 3 data changed, 4 children changed
    path: str


@dataclass(frozen=True)
class RawReply:
    xid: int


class EventLog:
    """Every watch event a kazoo connection receives, recorded on its I/O thread.

    Recording happens before kazoo reads the next frame, so when a request made
    on the same client returns, every event the server sent before its reply
    is already here. ``frames`` also keeps the replies, in arrival order.
    """

    def __init__(self) -> None:
        self._events: list[RawEvent] = []
        self.frames: list[RawEvent | RawReply] = []
        self._changed = threading.Condition()

    def add(self, event: RawEvent) -> None:
        with self._changed:
            self._events.append(event)
            self.frames.append(event)
            self._changed.notify_all()

    def add_reply(self, reply: RawReply) -> None:
        with self._changed:
            self.frames.append(reply)

    def snapshot(self) -> list[RawEvent]:
        with self._changed:
            return list(self._events)

    def for_path(self, path: str) -> list[RawEvent]:
        return [event for event in self.snapshot() if event.path == path]

    def wait_for(self, predicate: Callable[[list[RawEvent]], bool], timeout: float, what: str) -> list[RawEvent]:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self._events), timeout):
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; events: {self._events}")
            return list(self._events)


def record_events(client: KazooClient) -> EventLog:
    log = EventLog()
    connection = client._connection
    read_event, read_reply = connection._read_watch_event, connection._read_response

    def recording_event(buffer: bytes, offset: int) -> Any:
        watch, _ = Watch.deserialize(buffer, offset)
        log.add(RawEvent(watch.type, watch.path))
        return read_event(buffer, offset)

    def recording_reply(header: Any, buffer: bytes, offset: int) -> Any:
        log.add_reply(RawReply(header.xid))
        return read_reply(header, buffer, offset)

    connection._read_watch_event = recording_event
    connection._read_response = recording_reply
    return log


# Requests kazoo 2.11 lacks (createContainer, createTTL, addWatch, whoAmI,
# getEphemerals, getAllChildrenNumber), sent through kazoo's own connection.
def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("!i", len(data)) + data


def _create_body(path: str, data: bytes, acl: list[ACL], flags: int) -> bytes:
    out = _string(path) + struct.pack("!i", len(data)) + data + struct.pack("!i", len(acl))
    for entry in acl:
        out += struct.pack("!i", entry.perms) + _string(entry.id.scheme) + _string(entry.id.id)
    return out + struct.pack("!i", flags)


def _path_and_stat(buffer: bytes, offset: int) -> tuple[str, ZnodeStat]:
    path, offset = read_string(buffer, offset)
    return path, ZnodeStat._make(struct.unpack_from("!qqqqiiiqiiq", buffer, offset))


def _strings(buffer: bytes, offset: int) -> list[str]:
    (count,) = struct.unpack_from("!i", buffer, offset)
    offset += 4
    items = []
    for _ in range(max(count, 0)):
        item, offset = read_string(buffer, offset)
        items.append(item)
    return items


class ExtraRequest:
    """Minimal request object in the shape kazoo's connection expects."""

    type = 0

    def serialize(self) -> bytes:
        raise NotImplementedError

    def deserialize(self, buffer: bytes, offset: int) -> Any:
        return None


class CreateContainer(ExtraRequest):
    type = 19

    def __init__(self, path: str, data: bytes = b"", acl: list[ACL] | None = None) -> None:
        self.path, self.data, self.acl = path, data, acl or list(OPEN_ACL_UNSAFE)

    def serialize(self) -> bytes:
        return _create_body(self.path, self.data, self.acl, 4)

    def deserialize(self, buffer: bytes, offset: int) -> tuple[str, ZnodeStat]:
        return _path_and_stat(buffer, offset)


class CreateTTL(ExtraRequest):
    type = 21

    def __init__(self, path: str, ttl_ms: int, data: bytes = b"", sequential: bool = False, flags: int | None = None) -> None:
        self.path, self.ttl_ms, self.data = path, ttl_ms, data
        self.flags = flags if flags is not None else (6 if sequential else 5)

    def serialize(self) -> bytes:
        return _create_body(self.path, self.data, list(OPEN_ACL_UNSAFE), self.flags) + struct.pack("!q", self.ttl_ms)

    def deserialize(self, buffer: bytes, offset: int) -> tuple[str, ZnodeStat]:
        return _path_and_stat(buffer, offset)


class AddWatch(ExtraRequest):
    type = 106
    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1

    def __init__(self, path: str, mode: int) -> None:
        self.path, self.mode = path, mode

    def serialize(self) -> bytes:
        return _string(self.path) + struct.pack("!i", self.mode)


class WhoAmI(ExtraRequest):
    type = 107

    def serialize(self) -> bytes:
        return b""

    def deserialize(self, buffer: bytes, offset: int) -> list[tuple[str, str]]:
        (count,) = struct.unpack_from("!i", buffer, offset)
        offset += 4
        infos = []
        for _ in range(max(count, 0)):
            scheme, offset = read_string(buffer, offset)
            user, offset = read_string(buffer, offset)
            infos.append((scheme, user))
        return infos


class GetEphemerals(ExtraRequest):
    type = 103

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def serialize(self) -> bytes:
        return _string(self.prefix)

    def deserialize(self, buffer: bytes, offset: int) -> list[str]:
        return _strings(buffer, offset)


class GetAllChildrenNumber(ExtraRequest):
    type = 104

    def __init__(self, path: str) -> None:
        self.path = path

    def serialize(self) -> bytes:
        return _string(self.path)

    def deserialize(self, buffer: bytes, offset: int) -> int:
        (number,) = struct.unpack_from("!i", buffer, offset)
        return int(number)


def kazoo_call(client: KazooClient, request: ExtraRequest, timeout: float = CLIENT_DEADLINE) -> Any:
    """Send ``request`` on ``client``'s session; raise kazoo's exception on error."""
    result = client.handler.async_result()
    client._call(request, result)
    return result.get(timeout=timeout)


# ---- a raw client connection (for sessions kazoo would keep alive) -------------


class RawSession:
    """One TCP connection speaking the client protocol by hand; sends no pings."""

    def __init__(self, sock: socket.socket, timeout_ms: int, session_id: int, password: bytes) -> None:
        self.sock, self.timeout_ms, self.session_id, self.password = sock, timeout_ms, session_id, password
        self.events: list[RawEvent] = []
        self.last_zxid = 0
        self._xid = 0

    @classmethod
    def connect(
        cls, srv: ServerProcess, timeout_ms: int = 4000, session_id: int = 0, password: bytes = bytes(16)
    ) -> RawSession:
        """Send a ConnectRequest; the result may have timeout_ms 0 (session refused)."""
        sock = socket.create_connection((srv.host, srv.port), timeout=CLIENT_DEADLINE)
        body = struct.pack("!iqiqi", 0, 0, timeout_ms, session_id, len(password)) + password + b"\x00"
        sock.sendall(struct.pack("!i", len(body)) + body)
        reply = _read_frame(sock)
        _, timeout, sid, length = struct.unpack_from("!iiqi", reply)
        return cls(sock, timeout, sid, reply[20 : 20 + length])

    def request(self, opcode: int, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request; return (err, reply body), recording watch events on the way."""
        self._xid += 1
        frame = struct.pack("!ii", self._xid, opcode) + body
        self.sock.sendall(struct.pack("!i", len(frame)) + frame)
        while True:
            reply = _read_frame(self.sock)
            xid, zxid, err = struct.unpack_from("!iqi", reply)
            if xid == -1:
                event_type, _state = struct.unpack_from("!ii", reply, 16)
                self.events.append(RawEvent(event_type, read_string(reply, 24)[0]))
                continue
            assert xid == self._xid, f"reply xid {xid} for request xid {self._xid}"
            if zxid > 0:
                self.last_zxid = zxid
            return err, reply[16:]

    def create(self, path: str, data: bytes = b"", flags: int = 0) -> tuple[int, str | None]:
        err, body = self.request(1, _create_body(path, data, list(OPEN_ACL_UNSAFE), flags))
        return err, (read_string(body, 0)[0] if err == 0 else None)

    def close_session(self) -> int:
        err, _ = self.request(-11)
        return err

    def wait_closed_by_server(self, timeout: float) -> bool:
        """True once the server closes this connection (within ``timeout`` seconds)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


def read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = b""
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError(f"server closed the connection ({len(chunks)}/{size} bytes read)")
        chunks += chunk
    return chunks


def _read_frame(sock: socket.socket) -> bytes:
    (length,) = struct.unpack("!i", read_exactly(sock, 4))
    return read_exactly(sock, length)
