"""Quorum TLS on real zabd ensembles: each peer's stores, config changes between restarts, raw dials.

Built on :mod:`zabd.harness.ensembleprocs`. :func:`quorum_stores` gives the
``ssl.quorum.*`` lines of one peer (its own key store, the shared trust
store), for ``peer_cfg``; :func:`update_cfg` rewrites a stopped or running
peer's ``zoo.cfg`` so that its next restart takes a new setting, as an
operator's rolling restart does. :func:`plaintext_dial` and
:func:`tls_handshake` are what an outsider can do to a quorum or election
port: talk plaintext to it, or complete a TLS handshake with a certificate.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zabd.election.messages import InitialMessage
from zabd.quorum.packets import LearnerInfo, PacketType, QuorumPacket, encode_packet
from zabd.harness.certs import PASSWORD, Identity, Pki
from zabd.harness.commands import CFG_NAME, LOCALHOST
from zabd.harness.ensembleprocs import EnsemblePeer

#: The one line zabd logs when a TLS handshake on a quorum or election port fails (zabd.server.tls_ports).
HANDSHAKE_FAILED = "TLS handshake on the {what} port with {host} failed: "
#: The first byte of a TLS alert record: the only thing a TLS-only port may answer plaintext with.
TLS_ALERT_RECORD = 0x15
#: How a peer's startup line (zabd.peer.ensemble) describes its quorum transport, as 3.8's does.
_SECURITY = re.compile(r"\(((?:TLS encrypted|insecure \(non-TLS\)) quorum communication, "
                       r"port unification (?:enabled|disabled))\)")


def quorum_stores(identity: Identity, pki: Pki) -> dict[str, str]:
    """The ``ssl.quorum.*`` lines of a peer that presents ``identity`` and trusts ``pki``'s CA (JKS)."""
    return {
        "ssl.quorum.keyStore.location": str(identity.jks),
        "ssl.quorum.keyStore.password": PASSWORD,
        "ssl.quorum.trustStore.location": str(pki.truststore_jks),
        "ssl.quorum.trustStore.password": PASSWORD,
    }


def peer_stores(pki: Pki, sids: list[int]) -> dict[int, dict[str, str]]:
    """``peer_cfg`` for an ensemble where peer N presents the identity ``peerN`` of ``pki``."""
    return {sid: quorum_stores(pki.identity(f"peer{sid}"), pki) for sid in sids}


def update_cfg(peer: EnsemblePeer, changes: Mapping[str, str | None]) -> None:
    """Set (or, for None, remove) keys in the peer's zoo.cfg; the peer reads it at its next start."""
    cfg = peer.workdir / CFG_NAME
    pending = dict(changes)
    lines: list[str] = []
    for line in cfg.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in pending:
            value = pending.pop(key)
            if value is not None:
                lines.append(f"{key}={value}")
            continue
        lines.append(line)
    lines.extend(f"{key}={value}" for key, value in pending.items() if value is not None)
    cfg.write_text("".join(f"{line}\n" for line in lines))


def quorum_security(peer: EnsemblePeer) -> str | None:
    """How the peer's latest start describes its quorum transport, e.g.
    "TLS encrypted quorum communication, port unification disabled"; None before it logged one."""
    found = _SECURITY.findall(peer.log_text())
    return found[-1] if found else None


def follower_info(sid: int, zxid: int) -> bytes:
    """The first packet a follower ``sid`` at ``zxid`` sends the leader's quorum port, in plaintext."""
    return encode_packet(QuorumPacket(PacketType.FOLLOWERINFO, zxid, LearnerInfo(sid).encode()))


def election_header(sid: int, election_port: int) -> bytes:
    """The initial message peer ``sid`` sends when it dials an election port, in plaintext."""
    return InitialMessage(sid, f"{LOCALHOST}:{election_port}").encode()


@dataclass(frozen=True)
class DialOutcome:
    """What a plaintext dial got back before the server closed the connection, and how fast."""

    received: bytes
    seconds: float


def plaintext_dial(port: int, payload: bytes, timeout: float) -> DialOutcome:
    """Connect to 127.0.0.1:port, send ``payload`` and read until the server closes.

    :raises TimeoutError: the connection was still open after ``timeout``.
    """
    started = time.monotonic()
    chunks: list[bytes] = []
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            while True:
                remaining = started + timeout - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"127.0.0.1:{port} kept a plaintext connection open for {timeout} s")
                sock.settimeout(remaining)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            raise TimeoutError(f"127.0.0.1:{port} kept a plaintext connection open for {timeout} s") from None
        except (ConnectionResetError, BrokenPipeError):
            pass  # an abortive close is a close
    return DialOutcome(b"".join(chunks), time.monotonic() - started)


@dataclass(frozen=True)
class HandshakeOutcome:
    """What a TLS handshake with a port agreed on."""

    version: str
    #: The common name of the certificate the port presented.
    server_name: str


def tls_handshake(port: int, identity: Identity, ca_pem: Path, timeout: float) -> HandshakeOutcome:
    """Complete a TLS handshake with 127.0.0.1:port as ``identity``, checking the server against ``ca_pem``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(ca_pem))
    context.load_cert_chain(str(identity.cert_pem), str(identity.key_pem))
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as raw:
        with context.wrap_socket(raw, server_hostname=LOCALHOST) as tls:
            version = tls.version()
            cert = tls.getpeercert()
    assert version is not None and cert is not None
    # getpeercert()'s subject: relative names, each a tuple of (attribute, value) pairs.
    names = [str(pair[1]) for rdn in cert["subject"] for pair in rdn if pair[0] == "commonName"]
    return HandshakeOutcome(version, names[-1] if names else "")
