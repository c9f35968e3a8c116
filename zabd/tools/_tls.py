# -*- test-case-name: tests.unit.test_bench -*-
"""TLS for the benchmark (``--tls``): certificates, the servers' secure client ports, the loaders' context.

The same loader runs over TLS: each connection is an asyncio SSL transport
(``ssl.SSLContext`` from :class:`TlsFiles`, which a worker process builds
once for all its connections); the request and reply handling does not
change. ``--start`` gives zabd and ZooKeeper the same zoo.cfg lines and the
same certificates: a JKS key store and trust store from one throwaway CA
(:mod:`zabd.harness.certs`), ``ssl.clientAuth=need``, and a client
certificate for the loader. ZooKeeper's TLS port needs its Netty factory.
"""
from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zabd.harness.commands import LOCALHOST, NETTY_SERVER_FACTORY
from zabd.harness.probes import free_port, listens_on, wait_until

#: The one password of the throwaway stores (zabd.harness.certs.PASSWORD).
STORE_PASSWORD = "apassword"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The loader's side of TLS, as files (picklable: worker processes build their own context)."""

    ca: str
    cert: str | None = None
    key: str | None = None

    def describe(self) -> str:
        return f"ca={self.ca}" + (f" cert={self.cert}" if self.cert else "")


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """The server must chain to ``ca`` and name the host dialled; the client presents ``cert`` if given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=files.ca)
    if files.cert:
        context.load_cert_chain(files.cert, files.key)
    return context


def secure_server_cfg(port: int, keystore: Path | str, truststore: Path | str,
                      password: str = STORE_PASSWORD) -> dict[str, str]:
    """zoo.cfg lines for a TLS client port that needs client certificates, the same for zabd and ZooKeeper."""
    return {
        "serverCnxnFactory": NETTY_SERVER_FACTORY,  # ZooKeeper's TLS needs it; zabd ignores it
        "secureClientPort": str(port),
        "secureClientPortAddress": LOCALHOST,
        "ssl.keyStore.location": str(keystore),
        "ssl.keyStore.password": password,
        "ssl.trustStore.location": str(truststore),
        "ssl.trustStore.password": password,
        "ssl.clientAuth": "need",
    }


@dataclass(frozen=True, slots=True)
class BenchPki:
    """The TLS files a TLS benchmark uses: the client's identity and the server's stores."""

    client: TlsFiles
    keystore: Path
    truststore: Path


def make_bench_pki(directory: Path) -> BenchPki:
    """A fresh CA with a server identity (127.0.0.1, localhost) and a client identity for the loader."""
    from zabd.harness.certs import PASSWORD, make_pki  # pyjks and cryptography only for --tls

    assert PASSWORD == STORE_PASSWORD
    pki = make_pki(directory)
    server, client = pki.identity("bench-server"), pki.identity("bench-client")
    return BenchPki(TlsFiles(str(pki.ca_pem), str(client.cert_pem), str(client.key_pem)),
                    server.jks, pki.truststore_jks)


def start_secure_server(kind: str, workdir: Path, extra_cfg: dict[str, str], pki: BenchPki,
                        timeout: float = 60.0) -> tuple[Any, int]:
    """Start zabd or ZooKeeper with a secure client port beside its plaintext one; (server, secure port)."""
    from zabd.harness.processes import start_zabd, start_zookeeper

    port = free_port()
    settings = {**extra_cfg, **secure_server_cfg(port, pki.keystore, pki.truststore)}
    server = (start_zabd if kind == "zabd" else start_zookeeper)(workdir, extra_cfg=settings)
    try:  # ready means its plaintext port serves; the secure one may open a moment later
        wait_until(lambda: listens_on(server.pid, port), timeout, f"{kind} to listen on {port}", server.describe)
    except BaseException:
        server.stop()
        raise
    return server, port


def tls_ask(host: str, port: int, files: TlsFiles, word: str = "srvr", timeout: float = 5.0) -> tuple[str, str]:
    """A four-letter word over TLS: (the answer, "protocol cipher" as negotiated)."""
    chunks: list[bytes] = []
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with client_context(files).wrap_socket(raw, server_hostname=host) as sock:
            session = f"{sock.version()} {(sock.cipher() or ('?',))[0]}"
            sock.sendall(word.encode("ascii"))
            while True:
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, ssl.SSLError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace"), session
