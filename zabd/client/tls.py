# -*- test-case-name: tests.unit.test_client_tls -*-
"""TLS for the client's connections, with kazoo's parameters (``use_ssl``, ``ca``, ``certfile``, ...).

Part of the Twisted adapter: the sans-IO session never sees TLS, and only a
client made with ``use_ssl`` imports this module (so pyOpenSSL is needed only
for TLS). A :class:`ClientTls` builds one pyOpenSSL context when the client
is made (so a missing or unreadable file fails at once, naming the
parameter) and puts Twisted's TLS layer (``twisted.protocols.tls``) under
every connection the client dials: sessions, read-write search probes and
four-letter words.

The server's certificate must chain to ``ca`` (the system's trusted CAs when
None) and name the host dialled, by DNS name or IP address, with the rules
of :mod:`zabd.tls.hostnames`; ``verify_certs=False`` checks nothing, as in
kazoo. The context's protocols and cipher suites are zabd's defaults for
``ssl.*`` (TLS 1.2 and 1.3, forward-secret suites only).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import IConnector, IOpenSSLClientConnectionCreator
from twisted.internet.protocol import ClientFactory
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from zabd.client.errors import TlsConfigError, TlsError
from zabd.tls.contexts import TlsSettingError, build_context
from zabd.tls.hostnames import certificate_names_host
from zabd.tls.settings import TlsSettings
from zabd.tls.stores import KeyMaterial

__all__ = ["ClientTls", "TlsConfigError", "TlsError", "TlsOptions"]


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """
    kazoo's TLS parameters.

    :param ca: a PEM file of the CA certificates to trust (None: the system's).
    :param certfile: a PEM file with this client's certificate (and chain) to present.
    :param keyfile: its private key, PEM (None: the key is in ``certfile``).
    :param keyfile_password: the key's password, if it is encrypted.
    :param verify_certs: check the server's certificate at all (False: accept any, as kazoo).
    :param check_hostname: with ``verify_certs``, also check that it names the host dialled.
    """

    ca: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    keyfile_password: str | bytes | None = None
    verify_certs: bool = True
    check_hostname: bool = True


def _read(parameter: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TlsConfigError(f"{parameter}={path!r}: cannot read it: {e.strerror}") from None


def _certificates(parameter: str, path: str) -> tuple[x509.Certificate, ...]:
    data = _read(parameter, path)
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise TlsConfigError(f"{parameter}={path!r}: holds no PEM certificate") from None


def _key_material(options: TlsOptions) -> KeyMaterial | None:
    if options.certfile is None:
        if options.keyfile is not None:
            raise TlsConfigError(f"keyfile={options.keyfile!r} needs a certfile to go with it")
        return None
    chain = _certificates("certfile", options.certfile)
    parameter, path = ("keyfile", options.keyfile) if options.keyfile else ("certfile", options.certfile)
    secret = options.keyfile_password
    password = secret.encode() if isinstance(secret, str) else secret
    data = _read(parameter, path)
    start = data.find(b"-----BEGIN")
    blocks = [b"-----BEGIN" + block for block in data[max(start, 0):].split(b"-----BEGIN")[1:]]
    keys = [block for block in blocks if b"PRIVATE KEY-----" in block.split(b"\n", 1)[0]]
    if not keys:
        raise TlsConfigError(f"{parameter}={path!r}: holds no PEM private key")
    try:
        key = load_pem_private_key(keys[0], password if b"ENCRYPTED" in keys[0] else None)
    except (ValueError, TypeError) as e:
        raise TlsConfigError(f"{parameter}={path!r}: cannot read the private key "
                             f"(wrong keyfile_password?): {e}") from None
    return KeyMaterial(key, chain)


def client_context(options: TlsOptions) -> SSL.Context:
    """The one context of a client's connections. :raises TlsConfigError: naming the parameter."""
    material = _key_material(options)
    trusted = _certificates("ca", options.ca) if options.ca is not None else None
    try:  # zabd's ssl.* defaults for protocols and suites; each connection sets its own check
        context = build_context(TlsSettings("ssl"), material, trusted, server=False)
    except (SSL.Error, TlsSettingError) as e:
        raise TlsConfigError(f"certfile={options.certfile!r}, keyfile={options.keyfile!r}: "
                             f"OpenSSL refused them: {e}") from None
    if not options.verify_certs:
        context.set_verify(SSL.VERIFY_NONE)
    return context


#: Why OpenSSL refused a chain, for its most common X509_V_ERR codes.
_CHAIN_ERRORS = {
    9: "not yet valid", 10: "expired", 18: "self-signed, and not trusted (not in ca)",
    19: "a self-signed CA that is not trusted (not in ca)", 20: "issued by a CA that is not trusted (not in ca)",
    21: "cannot verify the signature", 26: "not usable for this purpose",
}


def _subject(cert: crypto.X509) -> str:
    return repr(cert.to_cryptography().subject.rfc4514_string())


class _Check:
    """One connection's check of the server's certificate; ``refusal`` says why it failed."""

    def __init__(self, host: str | None) -> None:
        self.host = host
        self.refusal: str | None = None

    def verify(self, connection: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
        if not ok:
            why = _CHAIN_ERRORS.get(errno, f"OpenSSL verify error {errno}")
            self.refusal = f"server certificate {_subject(cert)} (depth {depth}): {why}"
            return False
        if depth == 0 and self.host is not None and not certificate_names_host(cert.to_cryptography(), self.host):
            self.refusal = f"server certificate {_subject(cert)} does not name {self.host}"
            return False
        return True


@implementer(IOpenSSLClientConnectionCreator)
class _Creator:
    """One dial's TLS connection, verified by its own :class:`_Check`."""

    def __init__(self, context: SSL.Context, host: str, check: _Check | None) -> None:
        self.context = context
        self.host = host
        self.check = check

    def clientConnectionForTLS(self, tls_protocol: TLSMemoryBIOProtocol) -> SSL.Connection:  # noqa: N802
        connection = SSL.Connection(self.context, None)
        # Per connection: Twisted keeps the connection's app data for itself, so the check
        # cannot find its host there.
        if self.check is not None:
            connection.set_verify(SSL.VERIFY_PEER, self.check.verify)
        try:
            ipaddress.ip_address(self.host.strip("[]"))
        except ValueError:  # SNI carries names only, never addresses (RFC 6066)
            connection.set_tlsext_host_name(self.host.encode("idna"))
        return connection


class _TlsDial(TLSMemoryBIOFactory):
    """A dial's TLS factory; its protocols find the dial's check through ``factory``."""

    def __init__(self, creator: _Creator, factory: ClientFactory, clock: Any) -> None:
        super().__init__(creator, True, factory, clock=clock)
        self.check = creator.check


class ClientTls:
    """A client's TLS: the context, built once, :meth:`connect` for every dial, :meth:`failure` after."""

    def __init__(self, options: TlsOptions) -> None:
        self.options = options
        self.context = client_context(options)

    def connect(self, reactor: Any, host: str, port: int, factory: ClientFactory,
                timeout: float) -> IConnector:
        """``reactor.connectTCP`` with TLS between the connection and ``factory``'s protocol."""
        options = self.options
        check = _Check(host if options.check_hostname else None) if options.verify_certs else None
        # The clock is the client's reactor: the TLS layer gathers small writes until its next turn.
        wrapped = _TlsDial(_Creator(self.context, host, check), factory, reactor)
        connector: IConnector = reactor.connectTCP(host, port, wrapped, timeout=timeout)
        return connector

    @staticmethod
    def failure(transport: Any, reason: Failure | None) -> str | None:
        """Why a connection over TLS was lost, if TLS itself failed (None for an ordinary close)."""
        if reason is None or not reason.check(SSL.Error):
            return None
        check = getattr(getattr(transport, "factory", None), "check", None)
        refusal = check.refusal if isinstance(check, _Check) else None
        what = _openssl_text(reason.value)
        return f"{what}: {refusal}" if refusal else what


def _openssl_text(error: BaseException | None) -> str:
    details = error.args[0] if error is not None and error.args and isinstance(error.args[0], list) else []
    texts = [str(item[-1]) for item in details if isinstance(item, tuple) and item and item[-1]]
    return "; ".join(texts) or str(error) or "OpenSSL error"
