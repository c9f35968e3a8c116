"""
TLS on zabd's ports, in memory: handshakes, refusals, port unification, the
handshake deadline and limit, and reloads.  Each bad input closes its own
connection with one log line and leaves the listener serving.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from zabd.metrics.tls import TlsCounters
from zabd.server.tls_ports import ClientCreator, SecureListening, ServerCreator
from zabd.harness.certs import PASSWORD, Pki
from zabd.testing.tlsmemory import Echo, Recorder, client_contexts, settings_for, tls_pair
from zabd.tls.contexts import Contexts


def server_contexts(pki: Pki, name: str = "server", **options: Any) -> Contexts:
    settings = settings_for("ssl", str(pki.identity(name).jks), str(pki.truststore_jks), PASSWORD, **options)
    return Contexts(settings)


def listening(contexts: Contexts, clock: Clock, counters: TlsCounters, unified: bool = False,
              check_peer_host: bool = False, limit: int = 0) -> SecureListening:
    return SecureListening(Factory.forProtocol(Echo), ServerCreator(contexts, check_peer_host), clock, counters,
                           what="client", unified=unified, handshake_limit=limit)


def client_for(pki: Pki, name: str | None, host: str = "127.0.0.1", verify: bool = True) -> ClientCreator:
    identity = pki.identity(name) if name else None
    contexts = client_contexts(str(identity.p12) if identity else None, str(pki.ca_pem), PASSWORD,
                               hostname_verification=verify)
    return ClientCreator(contexts, host)


def echoed(port: SecureListening, creator: ClientCreator, clock: Clock, payload: bytes) -> bytes:
    """Send ``payload`` over a TLS connection to ``port``; what came back."""
    client = Recorder()
    _, outer, pump = tls_pair(port, client, clock, creator=creator)
    pump.flush()
    outer.write(payload)
    pump.flush()
    return client.received


def messages(events: list[dict[str, Any]]) -> list[str]:
    from twisted.logger import formatEvent
    return [formatEvent(e) for e in events if e.get("log_namespace", "").startswith("zabd")]


def test_mutual_tls_round_trip(pki: Pki) -> None:
    clock, counters = Clock(), TlsCounters()
    port = listening(server_contexts(pki), clock, counters)
    assert echoed(port, client_for(pki, "client"), clock, b"hello") == b"hello"
    assert (counters.outstanding, counters.unsuccessful) == (0, 0)
    assert clock.getDelayedCalls() == []  # the handshake deadline was cancelled


@pytest.mark.parametrize("certificate, why", [(None, "did not return a certificate"),
                                              ("stranger's", "signed by a CA that is not trusted")])
def test_need_refuses_a_client_without_a_trusted_certificate(pki: Pki, stranger: Pki, certificate: str | None,
                                                             why: str) -> None:
    clock, counters = Clock(), TlsCounters()
    client = Recorder()
    # The stranger trusts our server, so only the server can refuse.
    key_store = str(stranger.identity("client").p12) if certificate else None
    creator = ClientCreator(client_contexts(key_store, str(pki.ca_pem), PASSWORD), "127.0.0.1")
    with capturedLogs() as events:
        server, _, pump = tls_pair(listening(server_contexts(pki), clock, counters), client, clock,
                                   creator=creator)
        pump.flush()
    assert client.lost is not None and client.received == b""
    assert counters.unsuccessful == 1 and counters.outstanding == 0
    [line] = [m for m in messages(events) if "TLS handshake" in m]
    assert "on the client port with 127.0.0.1 failed" in line and why in line


def test_want_accepts_a_client_without_a_certificate(pki: Pki) -> None:
    clock, counters = Clock(), TlsCounters()
    port = listening(server_contexts(pki, client_auth="want"), clock, counters)
    assert echoed(port, client_for(pki, None), clock, b"x") == b"x"


@pytest.mark.parametrize("first_bytes", [
    b"\x00\x00\x00\x2c" + bytes(44),  # a ConnectRequest's frame, in plaintext
    b"\x16\x03\x01\x00\x05garbage that is no ClientHello",
    bytes(range(256)),
])
def test_plaintext_or_garbage_on_a_tls_port_closes_that_connection(pki: Pki, first_bytes: bytes) -> None:
    clock, counters = Clock(), TlsCounters()
    port = listening(server_contexts(pki), clock, counters)
    with capturedLogs() as events:
        server, raw, pump = tls_pair(port, None, clock)
        assert server is not None
        raw.transport.write(first_bytes)  # type: ignore[union-attr]
        pump.flush()
    assert raw.lost is not None  # type: ignore[attr-defined]
    assert counters.unsuccessful == 1
    assert len([m for m in messages(events) if "TLS handshake" in m]) == 1
    # The listener still serves the next client.
    assert echoed(port, client_for(pki, "client"), clock, b"still here") == b"still here"


@pytest.mark.parametrize("first_bytes", [b"", b"ruok"])
def test_a_silent_or_short_client_is_cut_off_at_the_handshake_deadline(pki: Pki, first_bytes: bytes) -> None:
    # Four bytes are less than a TLS record header: the TLS layer waits for more, until the deadline.
    clock, counters = Clock(), TlsCounters()
    with capturedLogs() as events:
        server, raw, pump = tls_pair(listening(server_contexts(pki), clock, counters), None, clock)
        raw.transport.write(first_bytes)  # type: ignore[union-attr]
        pump.flush()
        clock.advance(4.9)
        pump.flush()
        assert raw.lost is None  # type: ignore[attr-defined]
        clock.advance(0.2)
        pump.flush()
    assert raw.lost is not None  # type: ignore[attr-defined]
    assert counters.outstanding == 0 and counters.unsuccessful == 1
    assert any("no TLS handshake within 5.0 s" in m for m in messages(events))


class HangsUpAtOnce(Recorder):
    def connectionMade(self) -> None:
        super().connectionMade()
        assert self.transport is not None
        self.transport.loseConnection()


def test_a_close_of_our_own_before_the_handshake_is_no_failure(pki: Pki) -> None:
    clock, counters = Clock(), TlsCounters()
    port = SecureListening(Factory.forProtocol(HangsUpAtOnce), ServerCreator(server_contexts(pki)), clock,
                           counters, what="quorum")
    with capturedLogs() as events:
        _, outer, pump = tls_pair(port, Recorder(), clock, creator=client_for(pki, "client"))
        pump.flush()
    assert counters.unsuccessful == 0 and counters.outstanding == 0
    assert [m for m in messages(events) if "TLS handshake" in m] == []


def test_outstanding_handshake_limit(pki: Pki) -> None:
    clock, counters = Clock(), TlsCounters()
    port = listening(server_contexts(pki), clock, counters, limit=1)
    first, _, pump1 = tls_pair(port, None, clock)
    second, raw, pump2 = tls_pair(port, None, clock)
    assert first is not None and second is None
    assert counters.exceeded == 1
    clock.advance(5)
    pump1.flush()
    pump2.flush()


def test_port_unification_serves_both(pki: Pki) -> None:
    clock, counters = Clock(), TlsCounters()
    port = listening(server_contexts(pki), clock, counters, unified=True)
    plain_server, plain, pump = tls_pair(port, None, clock)
    plain.transport.write(b"ruok")  # type: ignore[union-attr]
    pump.flush()
    assert plain.received == b"ruok"  # type: ignore[attr-defined]
    assert counters.non_mtls_local == 1
    assert echoed(port, client_for(pki, "client"), clock, b"secret") == b"secret"
    assert counters.non_mtls_local == 1


def test_port_unification_takes_silence_as_plaintext(pki: Pki) -> None:
    clock, counters = Clock(), TlsCounters()
    port = SecureListening(Factory.forProtocol(Recorder), ServerCreator(server_contexts(pki)), clock, counters,
                           what="quorum", unified=True, detection_timeout_s=0.25)
    server, raw, pump = tls_pair(port, None, clock)
    clock.advance(0.25)
    assert server._chosen is not None and server._chosen.made  # type: ignore[union-attr]


def test_the_client_checks_the_server_name(pki: Pki) -> None:
    clock, counters = Clock(), TlsCounters()
    contexts = Contexts(settings_for("ssl", str(pki.identity("other-host", hosts=("127.0.0.9",)).p12),
                                     str(pki.ca_pem), PASSWORD))
    client = Recorder()
    _, _, pump = tls_pair(listening(contexts, clock, counters), client, clock,
                          creator=client_for(pki, "client"))
    pump.flush()
    assert client.lost is not None and counters.unsuccessful == 1
    lenient = client_for(pki, "client", verify=False)
    assert echoed(listening(contexts, clock, counters), lenient, clock, b"ok") == b"ok"


def test_a_quorum_listener_checks_the_dialling_peers_address(pki: Pki) -> None:
    clock, counters = Clock(), TlsCounters()
    port = listening(server_contexts(pki), clock, counters, check_peer_host=True)
    impostor = ClientCreator(client_contexts(str(pki.identity("far", hosts=("10.9.9.9",)).p12),
                                             str(pki.ca_pem), PASSWORD), "127.0.0.1")
    with capturedLogs() as events:
        _, _, pump = tls_pair(port, Recorder(), clock, creator=impostor)
        pump.flush()
    assert counters.unsuccessful == 1
    assert any("does not name 127.0.0.1" in m for m in messages(events))
    assert echoed(port, client_for(pki, "client"), clock, b"peer") == b"peer"


def test_changed_stores_are_reloaded_and_bad_ones_refused(pki: Pki, tmp_path: Path) -> None:
    store = tmp_path / "keystore.p12"
    store.write_bytes(pki.identity("first").p12.read_bytes())
    contexts = Contexts(settings_for("ssl", str(store), str(pki.ca_pem), PASSWORD))
    before = contexts.server
    assert contexts.reload_if_changed() is None and contexts.server is before
    store.write_bytes(pki.identity("second").p12.read_bytes())
    os.utime(store, (1, 1))  # the same size and mtime second would hide the change
    assert contexts.reload_if_changed() is None
    assert contexts.server is not before
    current = contexts.server
    store.write_bytes(b"not a store")
    os.utime(store, (2, 2))
    problem = contexts.reload_if_changed()
    assert problem is not None and "ssl.keyStore" in problem
    assert contexts.server is current
