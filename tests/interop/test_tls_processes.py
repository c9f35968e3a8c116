"""
A real ``twistd zabd`` with TLS client ports: what opens, what startup refuses,
and bad input at run time (each closed with one log line while a good TLS
client keeps being served).
"""
from __future__ import annotations

import socket
import ssl
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from zabd.harness.certs import PASSWORD, Pki, make_pki
from zabd.harness.commands import write_config, zabd_command, zabd_environment
from zabd.harness.probes import free_port, listening_ports, wait_until
from zabd.harness.processes import start_zabd

DEADLINE = 30.0
STARTUP_REFUSAL_DEADLINE = 60.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_settings(pki: Pki, **extra: str) -> dict[str, str]:
    server = pki.identity("server")
    return {
        "ssl.keyStore.location": str(server.jks), "ssl.keyStore.password": PASSWORD,
        "ssl.trustStore.location": str(pki.truststore_jks), "ssl.trustStore.password": PASSWORD,
        **extra,
    }


def tls_context(pki: Pki, client: str | None = "client", ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca or pki.ca_pem))
    if client is not None:
        identity = pki.identity(client)
        context.load_cert_chain(str(identity.cert_pem), str(identity.key_pem))
    return context


def tls_word(port: int, word: str, context: ssl.SSLContext) -> str:
    """A four-letter word over TLS, as 3.8 answers them on its secure port."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(word.encode())
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks).decode()


def closed_by_server(port: int, payload: bytes) -> bool:
    """Send ``payload`` in plaintext; True once the server hangs up (EOF or reset) within the deadline."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(payload)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
    return True


def kazoo_tls(pki: Pki, port: int) -> KazooClient:
    client = pki.identity("client")
    kazoo = KazooClient(f"127.0.0.1:{port}", use_ssl=True, ca=str(pki.ca_pem), certfile=str(client.cert_pem),
                        keyfile=str(client.key_pem), timeout=10)
    kazoo.start(timeout=DEADLINE)
    return kazoo


def test_secure_client_port_alone_opens_only_the_tls_port(pki: Pki, tmp_path: Path) -> None:
    secure = free_port()
    cfg = write_config(tmp_path, 0, tls_settings(pki, secureClientPort=str(secure)))
    # write_config always names a clientPort; this config must have none.
    cfg.write_text("".join(line + "\n" for line in cfg.read_text().splitlines()
                           if not line.startswith(("clientPort=", "clientPortAddress="))))
    with open(tmp_path / "server.log", "wb") as log:
        process = subprocess.Popen(zabd_command(cfg), env=zabd_environment(), cwd=tmp_path,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: secure in listening_ports(process.pid), DEADLINE, "the secure port",
                   lambda: (tmp_path / "server.log").read_text())
        assert listening_ports(process.pid) == {secure}
        kazoo = kazoo_tls(pki, secure)
        try:
            kazoo.create("/tls", b"private")
            assert kazoo.get("/tls")[0] == b"private"
        finally:
            kazoo.stop()
            kazoo.close()
        conf = tls_word(secure, "conf", tls_context(pki))
        assert "clientPort=-1\n" in conf and f"secureClientPort={secure}\n" in conf
        assert "Mode: standalone" in tls_word(secure, "srvr", tls_context(pki))
    finally:
        process.terminate()
        process.wait(DEADLINE)


def startup_refusal(tmp_path: Path, settings: dict[str, str]) -> tuple[int, str]:
    cfg = write_config(tmp_path, free_port(), settings)
    done = subprocess.run(zabd_command(cfg), env=zabd_environment(), cwd=tmp_path, capture_output=True,
                          text=True, timeout=STARTUP_REFUSAL_DEADLINE, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout + done.stderr


def _expired(pki: Pki) -> Path:
    now = datetime.now(timezone.utc)
    return pki.identity("expired", not_before=now - timedelta(days=9), not_after=now - timedelta(days=1)).jks


def _future(pki: Pki) -> Path:
    now = datetime.now(timezone.utc)
    return pki.identity("future", not_before=now + timedelta(days=1), not_after=now + timedelta(days=9)).jks


@pytest.mark.parametrize("case", ["wrong password", "missing store", "unreadable store", "expired",
                                  "not yet valid", "wrong trust store password"])
def test_a_bad_store_stops_startup_naming_key_and_file(pki: Pki, tmp_path: Path, case: str) -> None:
    store: Path = pki.identity("server").jks
    settings = tls_settings(pki, secureClientPort=str(free_port()))
    key = "ssl.keyStore"
    if case == "wrong password":
        settings["ssl.keyStore.password"] = "not-it"
    elif case == "missing store":
        store = tmp_path / "nowhere.jks"
    elif case == "unreadable store":
        store = tmp_path / "a-directory.jks"
        store.mkdir()
    elif case == "expired":
        store = _expired(pki)
    elif case == "not yet valid":
        store = _future(pki)
    else:
        settings["ssl.trustStore.password"] = "not-it"
        key, store = "ssl.trustStore", pki.truststore_jks
    if key == "ssl.keyStore":
        settings["ssl.keyStore.location"] = str(store)
    code, output = startup_refusal(tmp_path, settings)
    assert code != 0
    assert f"{key}.location: {store}" in output, output


@pytest.mark.parametrize("settings, key", [
    ({"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"}, "enforce.auth.enabled"),
    ({"sessionRequireClientSASLAuth": "true"}, "sessionRequireClientSASLAuth"),
    ({"ssl.crl": "true"}, "ssl.crl"),
    ({"secureClientPort": "2281"}, "ssl.keyStore.location"),
])
def test_security_the_server_lacks_stops_startup(tmp_path: Path, settings: dict[str, str], key: str) -> None:
    code, output = startup_refusal(tmp_path, settings)
    assert code != 0 and f"{key}: " in output, output


def test_bad_input_closes_one_connection_and_the_rest_are_served(pki: Pki, tmp_path: Path) -> None:
    secure = free_port()
    stranger = make_pki(tmp_path / "stranger")
    with start_zabd(tmp_path / "zabd", tls_settings(pki, secureClientPort=str(secure))) as zabd:
        good = kazoo_tls(pki, secure)
        try:
            good.create("/before", b"1")
            log_start = len(zabd.log_text())
            # An untrusted client certificate (clientAuth defaults to need).
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                tls_word(secure, "ruok", _stranger_context(pki, stranger))
            # No certificate at all.
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
                tls_word(secure, "ruok", tls_context(pki, client=None))
            # A plaintext client on the TLS-only port, and garbage instead of a ClientHello.
            assert closed_by_server(secure, b"\x00\x00\x00\x2c" + bytes(44))
            assert closed_by_server(secure, b"\x16\x03\x01\x00\x10" + b"not a hello at all")
            # A TLS client on the plaintext port.
            with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, OSError)):
                tls_word(zabd.port, "ruok", tls_context(pki))
            wait_until(lambda: zabd.log_text()[log_start:].count("TLS handshake on the client port") >= 4,
                       DEADLINE, "one log line per refused TLS connection", zabd.describe)
            failures = zabd.log_text()[log_start:].count("TLS handshake on the client port")
            assert failures == 4
            assert "out of range" in zabd.log_text()[log_start:]
            # Everyone else is still served, nothing lost.
            good.create("/after", b"2")
            assert good.get("/before")[0] == b"1" and good.get("/after")[0] == b"2"
            mntr = tls_word(secure, "mntr", tls_context(pki))
            assert "zk_unsuccessful_handshake\t4\n" in mntr, mntr
        finally:
            good.stop()
            good.close()


def _stranger_context(pki: Pki, stranger: Pki) -> ssl.SSLContext:
    """Trusts our server, but presents a certificate from a CA the server does not trust."""
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    identity = stranger.identity("client")
    context.load_cert_chain(str(identity.cert_pem), str(identity.key_pem))
    return context


def test_plaintext_and_tls_share_a_port_with_client_port_unification(pki: Pki, tmp_path: Path) -> None:
    with start_zabd(tmp_path / "zabd", tls_settings(pki, **{"client.portUnification": "true"})) as zabd:
        assert zabd.four_letter("ruok") == "imok"
        kazoo = kazoo_tls(pki, zabd.port)
        try:
            kazoo.create("/both", b"ways")
        finally:
            kazoo.stop()
            kazoo.close()
        plain = KazooClient(f"127.0.0.1:{zabd.port}", timeout=10)
        plain.start(timeout=DEADLINE)
        try:
            assert plain.get("/both")[0] == b"ways"
        finally:
            plain.stop()
            plain.close()
        figures = dict(line.split("\t") for line in zabd.four_letter("mntr").splitlines())
        assert int(figures["zk_non_mtls_local_conn_count"]) >= 2  # the plain session and the 4lw probes


def test_a_changed_key_store_is_served_without_a_restart(pki: Pki, tmp_path: Path) -> None:
    secure = free_port()
    store = tmp_path / "keystore.jks"
    store.write_bytes(pki.identity("server").jks.read_bytes())
    settings = tls_settings(pki, secureClientPort=str(secure), **{"ssl.keyStore.location": str(store)})

    def served_subject() -> str:
        with socket.create_connection(("127.0.0.1", secure), timeout=DEADLINE) as raw:
            with tls_context(pki).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                cert = tls.getpeercert()
        return dict(pair[0] for pair in cert["subject"])["commonName"]  # type: ignore[index]

    with start_zabd(tmp_path / "zabd", settings) as zabd:
        assert served_subject() == "server"
        renewed = tmp_path / "renewed.jks"
        renewed.write_bytes(pki.identity("renewed").jks.read_bytes())
        renewed.replace(store)  # as a certificate manager swaps files
        wait_until(lambda: served_subject() == "renewed", DEADLINE, "the renewed certificate", zabd.describe)
        assert "Reloaded the client TLS key and trust stores" in zabd.log_text()
