"""
What zoo.cfg asks of TLS, as records: one :class:`TlsSettings` per prefix
(``ssl.`` for clients, ``ssl.quorum.`` for peers and the admin server) and
the ports' switches in :class:`SecuritySettings`.

Pure data: :mod:`zabd.config.security` fills these from the file and
:mod:`zabd.tls.contexts` turns them into OpenSSL contexts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: ``ssl.clientAuth`` values (3.8 takes them in any case; empty means need).
CLIENT_AUTH_MODES = ("none", "want", "need")

#: Protocol names Java uses, in order of age.
PROTOCOL_NAMES = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

#: 3.8's cipher suites for Java 9 and later (GCM first); TLS 1.3 adds its own.
DEFAULT_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
)

#: 3.8.0's outstanding-handshake limit on a TLS client port: none.
DEFAULT_OUTSTANDING_HANDSHAKES = -1


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """
    A key or trust store as zoo.cfg names it.

    :param key: the key prefix, e.g. ``ssl.quorum.keyStore`` (named in errors).
    :param location: the file.
    :param password: ``<key>.password``, if given.
    :param password_path: ``<key>.passwordPath``: a file whose text is the
        password; it wins over ``password``, as in 3.8.
    :param type: ``JKS``, ``PKCS12`` or ``PEM``; None: from the file name.
    """

    key: str
    location: str
    password: str | None = None
    password_path: str | None = None
    type: str | None = None

    @property
    def files(self) -> tuple[str, ...]:
        """The files whose change means the store must be read again."""
        return (self.location,) + ((self.password_path,) if self.password_path else ())


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """
    One prefix's TLS settings (``ssl`` or ``ssl.quorum``), with 3.8's defaults.

    ``enabled_protocols`` and ``cipher_suites`` empty mean zabd's defaults
    (see :attr:`protocols`); ``protocol`` is ``ssl.protocol`` as written.
    """

    prefix: str
    key_store: StoreSpec | None = None
    trust_store: StoreSpec | None = None
    protocol: str | None = None
    enabled_protocols: tuple[str, ...] = ()
    cipher_suites: tuple[str, ...] = ()
    hostname_verification: bool = True
    client_auth: str = "need"
    handshake_detection_timeout_ms: int = 5000

    @property
    def protocols(self) -> tuple[str, ...]:
        """
        The protocol versions to enable.

        3.8.0 enables ``ssl.protocol`` alone (TLSv1.2 when unset); zabd, given
        neither key, enables TLSv1.2 and TLSv1.3, so clients that offer 1.3
        get it and 3.8's peers and clients still meet it on 1.2.
        """
        if self.enabled_protocols:
            return self.enabled_protocols
        if self.protocol is not None:
            return (self.protocol,)
        return ("TLSv1.2", "TLSv1.3")

    @property
    def suites(self) -> tuple[str, ...]:
        return self.cipher_suites or DEFAULT_CIPHER_SUITES

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for store in (self.key_store, self.trust_store) if store for f in store.files)


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """
    Every TLS switch of a server, with 3.8's defaults (all off).

    :param secure_client_port: ``secureClientPort``; None: no TLS client port.
    :param plain_client_port: whether the plaintext ``clientPort`` opens:
        false when zoo.cfg gives only ``secureClientPort``.
    :param client_port_unification: ``client.portUnification``: the plaintext
        client port also takes TLS.
    :param ssl_quorum: ``sslQuorum``: peers dial each other over TLS.
    :param quorum_port_unification: ``portUnification``: the quorum and
        election ports take TLS and plaintext alike (the rolling upgrade).
    :param reload_client_certs: ``client.certReload``.
    :param reload_quorum_certs: ``sslQuorumReloadCertFiles``.
    :param admin_force_https: ``admin.forceHttps``.
    :param admin_port_unification: ``admin.portUnification``.
    """

    client: TlsSettings = field(default_factory=lambda: TlsSettings("ssl"))
    quorum: TlsSettings = field(default_factory=lambda: TlsSettings("ssl.quorum"))
    secure_client_port: int | None = None
    secure_client_port_address: str | None = None
    plain_client_port: bool = True
    client_port_unification: bool = False
    ssl_quorum: bool = False
    quorum_port_unification: bool = False
    reload_client_certs: bool = True
    reload_quorum_certs: bool = False
    admin_force_https: bool = False
    admin_port_unification: bool = False
    outstanding_handshake_limit: int = DEFAULT_OUTSTANDING_HANDSHAKES

    @property
    def client_tls(self) -> bool:
        """Whether any client-port listener speaks TLS."""
        return self.secure_client_port is not None or self.client_port_unification

    @property
    def quorum_tls(self) -> bool:
        """Whether the quorum and election ports need the quorum stores."""
        return self.ssl_quorum or self.quorum_port_unification

    @property
    def admin_tls(self) -> bool:
        return self.admin_force_https or self.admin_port_unification
