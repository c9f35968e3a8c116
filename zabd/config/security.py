"""
zoo.cfg's security keys: read into :class:`~zabd.tls.settings.SecuritySettings`,
or refused.

A secured ZooKeeper config must never start an open zabd.  Every key that
protects something is either honoured here or stops startup with the key,
the line and what zabd offers instead (:data:`REFUSALS`); none is kept and
ignored.  The keys that only matter once a refused one is on (the Kerberos
and SASL details) are listed with that reason in :data:`INERT`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from zabd.config.errors import ConfigError, config_error
from zabd.config.keys import (
    FIELDS, QUORUM_FIELDS, BadValue, boolean, integer, kept_reason, port_or_zero, text,
)
from zabd.java.limits import INT_MAX, INT_MIN
from zabd.tls.settings import CLIENT_AUTH_MODES, SecuritySettings, StoreSpec, TlsSettings

Latest = Mapping[str, tuple[str, str, int]]  # canonical key -> (as written, value, line)

_LATER = "zabd does not implement it yet (SASL, Kerberos and x509 identities are to come)"
_BUILT_IN_PROVIDERS = (
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
)


def _when_true(what: str) -> Callable[[str], str | None]:
    def refuse(value: str) -> str | None:
        return what if value.strip().lower() == "true" else None
    return refuse


def _always(what: str) -> Callable[[str], str | None]:
    return lambda value: what


def _provider(value: str) -> str | None:
    if value.strip() in _BUILT_IN_PROVIDERS:
        return None
    return (f"the authentication provider {value.strip()} is not available: {_LATER}; "
            "zabd's built-in providers are digest and ip")


def _digest_algorithm(value: str) -> str | None:
    if value.strip().upper() in ("SHA1", "SHA-1"):
        return None
    return f"only SHA1 digests are supported (3.8's default), not {value!r}"


#: Key -> why its value is refused (None: the value asks for nothing zabd lacks).
REFUSALS: dict[str, Callable[[str], str | None]] = {
    "enforce.auth.enabled": _when_true(f"enforced authentication: {_LATER}"),
    "sessionRequireClientSASLAuth": _when_true(f"SASL-only sessions: {_LATER}"),
    "quorum.auth.enableSasl": _when_true(f"quorum SASL: {_LATER}; use sslQuorum=true for mutual TLS"),
    "quorum.auth.learnerRequireSasl": _when_true(f"quorum SASL: {_LATER}; use sslQuorum=true"),
    "quorum.auth.serverRequireSasl": _when_true(f"quorum SASL: {_LATER}; use sslQuorum=true"),
    "ssl.authProvider": _always(f"x509 client identities: {_LATER}"),
    "ssl.quorum.authProvider": _always(f"x509 peer identities: {_LATER}"),
    "X509AuthenticationProvider.superUser": _always(f"x509 super users: {_LATER}"),
    "superUser": _always(f"SASL super users: {_LATER}"),
    "DigestAuthenticationProvider.digestAlg": _digest_algorithm,
    "ssl.crl": _when_true("certificate revocation lists are not supported; remove revoked "
                          "certificates from the trust store instead"),
    "ssl.quorum.crl": _when_true("certificate revocation lists are not supported"),
    "ssl.ocsp": _when_true("OCSP is not supported; remove revoked certificates from the trust store"),
    "ssl.quorum.ocsp": _when_true("OCSP is not supported"),
    "ssl.context.supplier.class": _always("a Java SSLContext supplier cannot run in zabd; "
                                          "give key and trust stores instead"),
    "ssl.quorum.context.supplier.class": _always("a Java SSLContext supplier cannot run in zabd"),
}

#: Key prefixes whose every key is refused unless the value asks for nothing.
REFUSED_PREFIXES: dict[str, Callable[[str], str | None]] = {
    "authProvider.": _provider,
    "enforce.auth.": lambda value: None,  # read with enforce.auth.enabled, refused with it
    "quorum.auth.": _when_true(f"quorum SASL: {_LATER}"),
}

#: Keys that only matter while a refused key is on: kept, logged with this reason.
INERT: dict[str, str] = {
    "kerberos.": "used by SASL authentication, which zabd refuses to start with",
    "sasl.": "used by SASL authentication, which zabd refuses to start with",
    "allowSaslFailedClients": "used by SASL authentication, which zabd refuses to start with",
    "ensembleAuthName": "used by the ensemble authentication provider, which zabd refuses to start with",
    "netty.server.earlyDropSecureConnectionHandshakes": "zabd refuses TLS clients only while it "
                                                         "serves none, after the handshake",
    "fips-mode": "zabd's TLS is OpenSSL's; hostname checks are always zabd's own",
}

_STORE_FIELDS = ("location", "password", "passwordPath", "type")
_TLS_FIELDS = tuple(f"{store}.{field}" for store in ("keyStore", "trustStore") for field in _STORE_FIELDS) + (
    "protocol", "enabledProtocols", "ciphersuites", "hostnameVerification", "clientAuth",
    "handshakeDetectionTimeoutMillis")

#: The security keys zabd honours (besides REFUSALS' values that ask for nothing).
IMPLEMENTED: frozenset[str] = frozenset(
    [f"{prefix}.{name}" for prefix in ("ssl", "ssl.quorum") for name in _TLS_FIELDS] + [
        "secureClientPort", "secureClientPortAddress", "client.portUnification", "client.certReload",
        "sslQuorum", "portUnification", "sslQuorumReloadCertFiles", "admin.forceHttps",
        "admin.portUnification", "netty.server.outstandingHandshake.limit",
    ])


def is_security_key(name: str) -> bool:
    """Whether this module reads ``name`` (a canonical key)."""
    return (name in IMPLEMENTED or name in REFUSALS or name.startswith(tuple(REFUSED_PREFIXES))
            or name in INERT or name.startswith(tuple(k for k in INERT if k.endswith("."))))


def refusal(name: str, value: str) -> str | None:
    """Why zabd will not start with ``name=value``, or None."""
    if name in REFUSALS:
        return REFUSALS[name](value)
    for prefix, rule in REFUSED_PREFIXES.items():
        if name.startswith(prefix) and name not in IMPLEMENTED:
            return rule(value)
    return None


def inert_reason(name: str) -> str | None:
    """Why ``name`` is kept without effect, if it is one of :data:`INERT`."""
    for key, reason in INERT.items():
        if name == key or (key.endswith(".") and name.startswith(key)):
            return reason
    return None


def key_status(name: str) -> tuple[str, str]:
    """
    What zabd does with a canonical zoo.cfg key: ``("implemented", how)``,
    ``("refused", when)``, ``("ignored", why)`` or ``("unknown", "")``.
    """
    if name in FIELDS or name in QUORUM_FIELDS or name in IMPLEMENTED:
        return "implemented", "a setting zabd honours"
    if name in REFUSALS or (name.startswith(tuple(REFUSED_PREFIXES)) and name not in IMPLEMENTED):
        return "refused", "stops startup unless its value asks for nothing zabd lacks"
    inert = inert_reason(name)
    if inert is not None:
        return "ignored", inert
    reason = kept_reason(name)
    if reason is None:
        return "unknown", ""
    return ("ignored", reason) if reason.startswith("ignored") else ("implemented", reason)


def _store(latest: Latest, prefix: str) -> StoreSpec | None:
    def value(field: str) -> str | None:
        entry = latest.get(f"{prefix}.{field}")
        return entry[1] if entry is not None and entry[1] else None
    location = value("location")
    if location is None:
        return None
    return StoreSpec(prefix, location, value("password"), value("passwordPath"), value("type"))


def _tls(latest: Latest, prefix: str, read: Callable[[str, Callable[[str], object], object], object]) -> TlsSettings:
    def names(key: str) -> tuple[str, ...]:
        raw = read(f"{prefix}.{key}", text, "")
        return tuple(n.strip() for n in str(raw).split(",") if n.strip())

    def client_auth(value: str) -> str:
        mode = value.strip().lower() or "need"
        if mode not in CLIENT_AUTH_MODES:
            raise BadValue(f"expected none, want or need, got {value!r}")
        return mode

    protocol = read(f"{prefix}.protocol", text, None)
    return TlsSettings(
        prefix=prefix,
        key_store=_store(latest, f"{prefix}.keyStore"),
        trust_store=_store(latest, f"{prefix}.trustStore"),
        protocol=str(protocol) if protocol is not None else None,
        enabled_protocols=names("enabledProtocols"),
        cipher_suites=names("ciphersuites"),
        hostname_verification=bool(read(f"{prefix}.hostnameVerification", boolean, True)),
        client_auth=str(read(f"{prefix}.clientAuth", client_auth, "need")),
        handshake_detection_timeout_ms=int(read(f"{prefix}.handshakeDetectionTimeoutMillis",  # type: ignore[call-overload]
                                                integer(1, INT_MAX, "a positive integer"), 5000)),
    )


def security_settings(latest: Latest, source: str, has_client_port: bool, ensemble: bool) -> SecuritySettings:
    """
    The security settings of a config, or the error that refuses it.

    :param latest: the config's keys, canonical, with their last value and line.
    :param has_client_port: whether zoo.cfg gives a plaintext client port
        (``clientPort`` or a client address on its ``server.N`` line).
    :param ensemble: whether this is a quorum peer (a standalone server, as
        3.8's, leaves ``sslQuorum`` and ``portUnification`` unused).
    :raises ConfigError: naming the key and line of a refused or bad value.
    """
    for name, (written, value, line) in latest.items():
        why = refusal(name, value)
        if why is not None:
            raise config_error(source, written, line, f"refused: {why}")

    def read(key: str, convert: Callable[[str], object], default: object) -> object:
        entry = latest.get(key)
        if entry is None:
            return default
        written, value, line = entry
        try:
            return convert(value)
        except BadValue as e:
            raise config_error(source, written, line, str(e)) from None

    secure_port = read("secureClientPort", port_or_zero, None)
    settings = SecuritySettings(
        client=_tls(latest, "ssl", read),
        quorum=_tls(latest, "ssl.quorum", read),
        secure_client_port=secure_port if secure_port else None,  # type: ignore[arg-type]
        secure_client_port_address=read("secureClientPortAddress", text, None),  # type: ignore[arg-type]
        plain_client_port=has_client_port or not secure_port,
        client_port_unification=bool(read("client.portUnification", boolean, False)),
        ssl_quorum=bool(read("sslQuorum", boolean, False)),
        quorum_port_unification=bool(read("portUnification", boolean, False)),
        reload_client_certs=bool(read("client.certReload", boolean, True)),
        reload_quorum_certs=bool(read("sslQuorumReloadCertFiles", boolean, False)),
        admin_force_https=bool(read("admin.forceHttps", boolean, False)),
        admin_port_unification=bool(read("admin.portUnification", boolean, False)),
        outstanding_handshake_limit=int(read("netty.server.outstandingHandshake.limit",  # type: ignore[call-overload]
                                             integer(INT_MIN, INT_MAX), -1)),
    )
    if settings.client_tls and settings.client.key_store is None:
        raise ConfigError(f"{source}: ssl.keyStore.location: not set, and "
                          f"{'secureClientPort' if settings.secure_client_port else 'client.portUnification'} "
                          "needs a key store", "ssl.keyStore.location", source, None)
    if ((settings.quorum_tls and ensemble) or settings.admin_tls) and settings.quorum.key_store is None:
        wanting = "sslQuorum" if settings.ssl_quorum else (
            "portUnification" if settings.quorum_port_unification else "admin.forceHttps/admin.portUnification")
        raise ConfigError(f"{source}: ssl.quorum.keyStore.location: not set, and {wanting} needs a key store",
                          "ssl.quorum.keyStore.location", source, None)
    return settings
