"""zabd.client over TLS, in memory: a real zabd TLS client port and real OpenSSL handshakes, no sockets.

The client runs on a MemoryReactorClock; each dial it makes is joined by
``twisted.test.iosim`` to the server's own TLS listener (``SecureListening``
around the client port factory) on the same clock, so every refusal and
timeout happens deterministically.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.test.iosim import FakeTransport, IOPump, connect

from tests.unit.client_helpers import failure, pending, result
from tests.unit.fakes import make_server
from zabd.client import ConnectionLoss, KazooState, OperationTimeoutError, TlsConfigError, TlsError, ZooKeeperClient
from zabd.client.effects import Probe
from zabd.client.fourletter import four_letter_word
from zabd.client.hosts import HostPort
from zabd.client.tls import ClientTls, TlsOptions
from zabd.metrics.tls import TlsCounters
from zabd.server.client_port import ClientPortFactory
from zabd.config.zoocfg import ZabdConfig
from zabd.views.fourletter import COMMANDS
from zabd.views.stats_view import FourLetterWords
from zabd.server.tls_ports import SecureListening, ServerCreator
from zabd.harness.certs import PASSWORD, Identity, Pki, make_pki
from zabd.testing.tlsmemory import settings_for
from zabd.tls.contexts import Contexts

PORT = 2281


@dataclass
class Stores:
    pki: Pki
    other_ca: Path  # a CA that signed nothing the server has
    server: Identity  # names 127.0.0.1 and localhost
    stranger: Identity  # names only zk.example.invalid
    client: Identity


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Stores:
    base = tmp_path_factory.mktemp("pki")
    pki = make_pki(base / "ca")
    other = make_pki(base / "other")
    return Stores(pki, other.ca_pem, pki.identity("server"), pki.identity("stranger", hosts=("zk.example.invalid",)),
                  pki.identity("client"))


class TlsServer:
    """zabd's secure client port on ``reactor``, answering each of the client's dials when told to."""

    def __init__(self, reactor: MemoryReactorClock, tmp_path: Path, stores: Stores, identity: Identity,
                 client_auth: str = "need") -> None:
        self.reactor = reactor
        server = make_server(reactor)[0]
        config = ZabdConfig(four_letter_words=frozenset({"ruok", "isro"}), data_dir=str(tmp_path), tick_time=2000)
        inner = ClientPortFactory(server, FourLetterWords(server, config).answer, COMMANDS, 1 << 20, 60)
        contexts = Contexts(settings_for("ssl", str(identity.p12), str(stores.pki.truststore_p12), PASSWORD,
                                         client_auth=client_auth))
        self.listening = SecureListening(inner, ServerCreator(contexts), reactor, TlsCounters(), what="client")
        self.accepted: list[TLSMemoryBIOProtocol] = []

    def answer(self, to: Protocol | None = None) -> IOPump:
        """Join the client's oldest pending dial to this server (or to ``to``) and pump it dry."""
        host, port, factory, _, _ = self.reactor.tcpClients.pop(0)
        self.reactor.connectors.pop(0)
        assert (host, port) == ("127.0.0.1", PORT)
        client_side = factory.buildProtocol(IPv4Address("TCP", host, port))
        peer = IPv4Address("TCP", "127.0.0.1", 40000 + len(self.accepted))
        server_side = to if to is not None else self.listening.buildProtocol(peer)
        if isinstance(server_side, TLSMemoryBIOProtocol):
            self.accepted.append(server_side)
        pump = connect(server_side, FakeTransport(server_side, isServer=True, peerAddress=peer),
                       client_side, FakeTransport(client_side, isServer=False,
                                                  peerAddress=IPv4Address("TCP", host, port)),
                       greet=False, clock=self.reactor)
        pump.flush()
        return pump


@pytest.fixture
def reactor() -> Iterator[MemoryReactorClock]:
    yield MemoryReactorClock()


def tls_client(reactor: MemoryReactorClock, stores: Stores, **kw: Any) -> ZooKeeperClient:
    kw.setdefault("ca", str(stores.pki.ca_pem))
    kw.setdefault("certfile", str(stores.client.cert_pem))
    kw.setdefault("keyfile", str(stores.client.key_pem))
    return ZooKeeperClient(f"127.0.0.1:{PORT}", reactor=reactor, randomize_hosts=False, use_ssl=True, **kw)


def test_session_over_tls_creates_and_reads_and_presents_the_client_certificate(
        reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.server)
    client = tls_client(reactor, stores)
    started = client.start()
    assert isinstance(reactor.tcpClients[0][2], TLSMemoryBIOFactory)
    pump = server.answer()
    result(started)
    assert client.state is KazooState.CONNECTED
    created = client.create("/a", b"secret")
    pump.flush()
    assert result(created) == "/a"
    got = client.get("/a")
    pump.flush()
    assert result(got)[0] == b"secret"
    peer = server.accepted[0].getHandle().get_peer_certificate(as_cryptography=True)
    assert peer is not None and peer.subject.rfc4514_string() == "CN=client"
    assert client._driver.last_failure is None


def test_a_server_certificate_from_another_ca_is_refused_and_start_says_why(
        reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.server)
    client = tls_client(reactor, stores, ca=str(stores.other_ca))
    started = client.start(timeout=5.0)
    with capturedLogs() as logs:
        server.answer()
    assert pending(started) and client.state is not KazooState.CONNECTED
    warnings = [e for e in logs if "Connection to" in e.get("log_format", "")]
    assert len(warnings) == 1 and "certificate verify failed" in warnings[0]["why"]
    reactor.advance(5.0)
    error = failure(started)
    assert isinstance(error, OperationTimeoutError)
    assert "certificate verify failed" in str(error) and "not trusted" in str(error), str(error)
    assert "127.0.0.1:2281" in str(error)


def test_hostname_mismatch_is_refused_unless_verify_certs_is_false(
        reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.stranger)
    strict = tls_client(reactor, stores)
    refused = strict.start(timeout=5.0)
    server.answer()
    reactor.advance(5.0)
    assert "does not name 127.0.0.1" in str(failure(refused))
    reactor.tcpClients.clear()
    reactor.connectors.clear()

    lax = tls_client(reactor, stores, verify_certs=False)
    accepted = lax.start(timeout=5.0)
    server.answer()
    result(accepted)
    assert lax.connected


def test_check_hostname_false_still_checks_the_chain(
        reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.stranger)
    chain_only = tls_client(reactor, stores, check_hostname=False)
    accepted = chain_only.start(timeout=5.0)
    server.answer()
    result(accepted)
    wrong_ca = tls_client(reactor, stores, check_hostname=False, ca=str(stores.other_ca))
    refused = wrong_ca.start(timeout=5.0)
    server.answer()
    reactor.advance(5.0)
    assert "not trusted" in str(failure(refused))


def test_a_server_needing_a_client_certificate_refuses_a_client_without_one(
        reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.server, client_auth="need")
    client = tls_client(reactor, stores, certfile=None, keyfile=None)
    started = client.start(timeout=5.0)
    server.answer()
    reactor.advance(5.0)
    error = failure(started)
    assert isinstance(error, OperationTimeoutError) and "TLS failed" in str(error), str(error)


def test_a_silent_handshake_is_hung_up_at_the_connect_timeout_and_the_next_dial_follows(
        reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.server)
    client = tls_client(reactor, stores, connect_timeout=1.0)
    started = client.start(timeout=10.0)
    silent = Protocol()
    pump = server.answer(to=silent)  # takes the ClientHello and never answers
    reactor.advance(1.0)
    pump.flush()
    assert pump.clientIO.disconnected  # the client gave up on that connection
    reactor.advance(1.0)  # past the backoff
    assert len(reactor.tcpClients) == 1  # and dialled again
    server.answer()
    result(started)


def test_four_letter_words_and_read_write_probes_go_over_tls(
        reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.server)
    client = tls_client(reactor, stores)
    answer = client.command(b"ruok")
    server.answer()
    assert result(answer) == "imok"

    answered: list[bool] = []

    def probe_answered(probe_id: int, read_write: bool, now_ms: int) -> list[Any]:
        answered.append(read_write)
        return []
    client._core.probe_answered = probe_answered  # type: ignore[method-assign]
    client._driver.run([Probe(HostPort("127.0.0.1", PORT), 1, 1000)])  # as a read-only session's search does
    assert isinstance(reactor.tcpClients[0][2], TLSMemoryBIOFactory)
    server.answer()
    assert answered == [True]  # the standalone server's "rw", read through TLS


def test_a_four_letter_word_refused_by_tls_fails_with_tls_error(
        reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.server)
    tls = ClientTls(TlsOptions(ca=str(stores.other_ca)))
    answer = four_letter_word(reactor, "127.0.0.1", PORT, b"ruok", 5.0, tls=tls)
    server.answer()
    error = failure(answer)
    assert isinstance(error, TlsError) and isinstance(error, ConnectionLoss)
    assert "not trusted" in error.reason


def test_plaintext_clients_dial_without_tls(reactor: MemoryReactorClock) -> None:
    client = ZooKeeperClient(f"127.0.0.1:{PORT}", reactor=reactor)
    client.start()
    assert not isinstance(reactor.tcpClients[0][2], TLSMemoryBIOFactory)


def test_a_combined_pem_needs_no_keyfile(reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    server = TlsServer(reactor, tmp_path, stores, stores.server)
    client = tls_client(reactor, stores, certfile=str(stores.client.combined_pem), keyfile=None)
    started = client.start()
    server.answer()
    result(started)


def test_an_encrypted_key_needs_its_password(reactor: MemoryReactorClock, tmp_path: Path, stores: Stores) -> None:
    key = serialization.load_pem_private_key(stores.client.key_pem.read_bytes(), None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"sesame")))
    with pytest.raises(TlsConfigError, match="keyfile=.*wrong keyfile_password"):
        tls_client(reactor, stores, keyfile=str(encrypted), keyfile_password="nope")
    server = TlsServer(reactor, tmp_path, stores, stores.server)
    client = tls_client(reactor, stores, keyfile=str(encrypted), keyfile_password="sesame")
    started = client.start()
    server.answer()
    result(started)


@pytest.mark.parametrize("kw, message", [
    ({"ca": "/nonexistent/ca.pem"}, "ca='/nonexistent/ca.pem': cannot read it"),
    ({"certfile": None, "keyfile": "KEY"}, "needs a certfile"),
    ({"keyfile": "CERT"}, "holds no PEM private key"),
    ({"ca": "KEY"}, "ca=.*holds no PEM certificate"),
])
def test_unusable_tls_files_fail_at_once_naming_the_parameter(
        reactor: MemoryReactorClock, stores: Stores, kw: dict[str, Any], message: str) -> None:
    files = {"KEY": str(stores.client.key_pem), "CERT": str(stores.client.cert_pem)}
    kw = {name: files.get(value, value) if isinstance(value, str) else value for name, value in kw.items()}
    with pytest.raises(TlsConfigError, match=message):
        tls_client(reactor, stores, **kw)
    assert not reactor.tcpClients
