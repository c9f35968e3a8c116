"""
OpenSSL contexts from :class:`~zabd.tls.settings.TlsSettings` and the stores.

One :class:`Contexts` per prefix holds the server-side and client-side
``SSL.Context`` built from the stores as they were last read;
:meth:`Contexts.reload_if_changed` reads them again when their files change
(a store that fails to load then keeps the old contexts and says why).
The verify callback checks the chain (OpenSSL does) and, at the leaf, the
host the connection expects (``ssl.hostnameVerification``): the server's
name for a dialler, and for a quorum listener the dialling peer's address,
as 3.8's quorum trust manager does.  No Twisted here: the adapters in
``zabd.server.tls_ports`` make connections from these contexts.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL, crypto

from zabd.tls.ciphernames import OPENSSL_NAMES, TLS13_SUITES
from zabd.tls.hostnames import certificate_names_host
from zabd.tls.settings import PROTOCOL_NAMES, TlsSettings
from zabd.tls.stores import KeyMaterial, StoreError, load_key_store, load_trust_store

_VERSIONS = {"TLSv1": SSL.TLS1_VERSION, "TLSv1.1": SSL.TLS1_1_VERSION,
             "TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION}
_CLIENT_AUTH = {
    "none": SSL.VERIFY_NONE,
    "want": SSL.VERIFY_PEER,
    "need": SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
}

#: OpenSSL's X509_V_ERR codes a refused peer certificate most often has.
_VERIFY_ERRORS = {
    9: "not yet valid", 10: "expired", 18: "self-signed and not trusted",
    19: "signed by a CA that is not trusted", 20: "issuer not trusted",
    21: "cannot verify the signature", 26: "not usable for this purpose",
}


class TlsSettingError(Exception):
    """A TLS setting zabd cannot honour; the text names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(slots=True)
class Expectation:
    """
    What a connection's verify callback checks the peer's leaf against:
    ``host``, or for a listener the dialler's address, which ``peer_host``
    reads once the connection has its transport.
    """

    host: str | None = None
    peer_host: Callable[[], str | None] | None = None
    #: Why the leaf was refused, for the one log line of a failed handshake.
    refusal: str | None = None

    def expected_host(self) -> str | None:
        return self.host if self.peer_host is None else self.peer_host()


def _protocol_bounds(settings: TlsSettings) -> tuple[int, int]:
    names = settings.protocols
    key = f"{settings.prefix}.enabledProtocols" if settings.enabled_protocols else f"{settings.prefix}.protocol"
    unknown = [n for n in names if n not in _VERSIONS]
    if unknown:
        raise TlsSettingError(key, f"unsupported protocol {unknown[0]!r} (zabd speaks {', '.join(PROTOCOL_NAMES)})")
    ordered = sorted(PROTOCOL_NAMES.index(n) for n in names)
    if ordered != list(range(ordered[0], ordered[-1] + 1)):
        raise TlsSettingError(key, "the enabled protocols must be consecutive versions")
    return _VERSIONS[PROTOCOL_NAMES[ordered[0]]], _VERSIONS[PROTOCOL_NAMES[ordered[-1]]]


def _cipher_lists(settings: TlsSettings) -> tuple[str, str]:
    """(OpenSSL's TLS 1.2 cipher list, its TLS 1.3 suite list) for ``ssl.ciphersuites``."""
    key = f"{settings.prefix}.ciphersuites"
    unknown = [s for s in settings.suites if s not in OPENSSL_NAMES and s not in TLS13_SUITES]
    if unknown:
        raise TlsSettingError(key, f"unknown cipher suite {unknown[0]!r}")
    legacy = ":".join(OPENSSL_NAMES[s] for s in settings.suites if s in OPENSSL_NAMES)
    modern = ":".join(s for s in settings.suites if s in TLS13_SUITES)
    if not settings.cipher_suites:
        modern = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    return legacy, modern


def expectation_of(connection: SSL.Connection) -> Expectation | None:
    """
    A connection's :class:`Expectation`: its app data, or (Twisted makes the
    TLS protocol the app data) that object's ``tls_expectation``.
    """
    holder = connection.get_app_data()
    found = holder if isinstance(holder, Expectation) else getattr(holder, "tls_expectation", None)
    return found if isinstance(found, Expectation) else None


def _verify(enabled: bool) -> Callable[[SSL.Connection, crypto.X509, int, int, int], bool]:
    def verify(connection: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
        expected = expectation_of(connection)
        subject = cert.to_cryptography().subject.rfc4514_string()
        if not ok:
            if expected is not None:
                why = _VERIFY_ERRORS.get(errno, f"OpenSSL verify error {errno}")
                expected.refusal = f"certificate {subject}: {why}"
            return False
        if depth == 0 and enabled and expected is not None:
            host = expected.expected_host()
            if host is not None and not certificate_names_host(cert.to_cryptography(), host):
                expected.refusal = f"certificate {subject} does not name {host}"
                return False
        return True
    return verify


def _trust(context: SSL.Context, trusted: tuple[x509.Certificate, ...] | None) -> None:
    if trusted is None:
        context.set_default_verify_paths()  # 3.8 without a trust store uses the JDK's
        return
    store = context.get_cert_store()
    assert store is not None
    for cert in trusted:
        store.add_cert(crypto.X509.from_cryptography(cert))


def _identity(context: SSL.Context, key: KeyMaterial) -> None:
    context.use_privatekey(key.key)  # type: ignore[arg-type]
    context.use_certificate(key.chain[0])
    for extra in key.chain[1:]:
        context.add_extra_chain_cert(extra)
    context.check_privatekey()


def build_context(settings: TlsSettings, key: KeyMaterial | None,
                  trusted: tuple[x509.Certificate, ...] | None, server: bool,
                  client_auth: str | None = None) -> SSL.Context:
    """
    One side's context.

    :param client_auth: for a server, ``none``, ``want`` or ``need``
        (default: the settings' ``clientAuth``).
    """
    context = SSL.Context(SSL.TLS_SERVER_METHOD if server else SSL.TLS_CLIENT_METHOD)
    low, high = _protocol_bounds(settings)
    context.set_min_proto_version(low)
    context.set_max_proto_version(high)
    legacy, modern = _cipher_lists(settings)
    try:
        if legacy:
            context.set_cipher_list(legacy.encode())
        context.set_tls13_ciphersuites(modern.encode())
    except SSL.Error as e:
        raise TlsSettingError(f"{settings.prefix}.ciphersuites", f"OpenSSL refused the list: {e}") from None
    context.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION)
    if key is not None:
        _identity(context, key)
    _trust(context, trusted)
    if server:
        mode = _CLIENT_AUTH[client_auth or settings.client_auth]
        context.set_session_id(b"zabd")
    else:
        mode = SSL.VERIFY_PEER
    context.set_verify(mode, _verify(settings.hostname_verification))
    return context


def _fingerprint(paths: tuple[str, ...]) -> tuple[tuple[float, int], ...]:
    def stat(path: str) -> tuple[float, int]:
        try:
            info = os.stat(path)
        except OSError:
            return (-1.0, -1)
        return (info.st_mtime, info.st_size)
    return tuple(stat(p) for p in paths)


class Contexts:
    """
    A prefix's server and client contexts, read again when the store files change.

    :param settings: the prefix's settings.
    :param need_key: whether a key store is required (any listener is).
    :raises StoreError: or :class:`TlsSettingError` at construction.
    """

    def __init__(self, settings: TlsSettings, need_key: bool = True,
                 server_client_auth: str | None = None) -> None:
        self.settings = settings
        self._need_key = need_key
        self._client_auth = server_client_auth
        self._seen = _fingerprint(settings.files)
        self.server, self.client = self._build()

    def _build(self) -> tuple[SSL.Context | None, SSL.Context]:
        settings = self.settings
        if settings.key_store is None and self._need_key:
            raise TlsSettingError(f"{settings.prefix}.keyStore.location",
                                  "not set, and a TLS listener needs a key store")
        key = load_key_store(settings.key_store) if settings.key_store else None
        trusted = load_trust_store(settings.trust_store) if settings.trust_store else None
        server = build_context(settings, key, trusted, True, self._client_auth) if key else None
        return server, build_context(settings, key, trusted, False)

    def reload_if_changed(self) -> str | None:
        """
        Rebuild the contexts if a store file changed since the last look.

        :returns: None if nothing changed or the reload worked, else why the
            new files were refused (the old contexts stay in force).
        """
        seen = _fingerprint(self.settings.files)
        if seen == self._seen:
            return None
        self._seen = seen
        try:
            self.server, self.client = self._build()
        except (StoreError, TlsSettingError, SSL.Error) as e:
            return str(e)
        return None


def peer_certificate_der(connection: SSL.Connection) -> bytes | None:
    """The peer's leaf certificate, DER, if it sent one."""
    cert = connection.get_peer_certificate()
    return None if cert is None else cert.to_cryptography().public_bytes(Encoding.DER)
