"""zoo.cfg's security keys: honoured, or refused at startup with the key and line; never ignored."""
from __future__ import annotations

from pathlib import Path

import pytest

from zabd.config.zoocfg import ConfigError, parse_config
from zabd.config.keys import canonical_key
from zabd.config.security import key_status

KEYS_FILE = Path(__file__).parent / "data" / "zookeeper38_config_keys.txt"
ENSEMBLE = ("initLimit=5", "syncLimit=2", "server.1=127.0.0.1:2888:3888", "server.2=127.0.0.1:2889:3889", "server.3=127.0.0.1:2890:3890")


def documented_keys() -> list[str]:
    lines = KEYS_FILE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def cfg(*lines: str, myid: str | None = None) -> object:
    return parse_config("\n".join(("dataDir=/tmp/zabd-test", *lines)) + "\n", myid=myid)


def refused(*lines: str, myid: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        cfg(*lines, myid=myid)
    return caught.value


def test_the_list_is_the_guides() -> None:
    keys = documented_keys()
    assert len(keys) > 200
    assert {"sslQuorum", "ssl.quorum.keyStore.location", "enforce.auth.enabled", "authProvider.1"} <= {
        canonical_key(k) for k in keys}


@pytest.mark.parametrize("key", documented_keys())
def test_every_documented_key_is_implemented_refused_or_ignored_with_a_reason(key: str) -> None:
    status, reason = key_status(canonical_key(key))
    assert status in ("implemented", "refused", "ignored"), f"{key} is unknown to zabd"
    assert reason, f"{key} has no stated reason"


# ------------------------------------------------------------ the examples

def test_enforced_auth_is_refused_naming_key_and_line() -> None:
    e = refused("enforce.auth.enabled=true", "enforce.auth.schemes=digest")
    assert e.key == "enforce.auth.enabled" and e.line == 2
    assert "zoo.cfg line 2: enforce.auth.enabled: refused" in str(e)


def test_sasl_only_sessions_are_refused() -> None:
    e = refused("zookeeper.sessionRequireClientSASLAuth=true")
    assert e.key == "zookeeper.sessionRequireClientSASLAuth"


@pytest.mark.parametrize("key", ["quorum.auth.enableSasl", "quorum.auth.learnerRequireSasl",
                                 "quorum.auth.serverRequireSasl"])
def test_quorum_sasl_is_refused_and_points_at_tls(key: str) -> None:
    e = refused(f"{key}=true")
    assert e.key == key and "sslQuorum" in str(e)


@pytest.mark.parametrize("provider", ["org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
                                      "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
                                      "com.example.MyProvider"])
def test_auth_providers_zabd_lacks_are_refused(provider: str) -> None:
    e = refused(f"authProvider.1={provider}")
    assert e.key == "authProvider.1" and provider in str(e)


@pytest.mark.parametrize("key, value", [
    ("ssl.crl", "true"), ("ssl.ocsp", "true"), ("ssl.quorum.crl", "true"), ("ssl.quorum.ocsp", "true"),
    ("ssl.context.supplier.class", "com.example.Supplier"), ("ssl.authProvider", "x509"),
    ("X509AuthenticationProvider.superUser", "CN=admin"), ("zookeeper.superUser", "admin"),
    ("DigestAuthenticationProvider.digestAlg", "SHA-256"),
])
def test_tls_and_auth_features_zabd_lacks_are_refused(key: str, value: str) -> None:
    assert refused(f"{key}={value}").key == key


@pytest.mark.parametrize("line", [
    "enforce.auth.enabled=false", "sessionRequireClientSASLAuth=false", "quorum.auth.enableSasl=false",
    "authProvider.1=org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "authProvider.2=org.apache.zookeeper.server.auth.IPAuthenticationProvider",
    "ssl.crl=false", "ssl.ocsp=false", "DigestAuthenticationProvider.digestAlg=SHA1",
])
def test_values_that_ask_for_nothing_missing_start(line: str) -> None:
    cfg(line)


def test_secure_client_port_alone_opens_no_plaintext_port() -> None:
    c = cfg("secureClientPort=2281", "ssl.keyStore.location=/k.jks")
    assert c.security.secure_client_port == 2281  # type: ignore[attr-defined]
    assert c.security.plain_client_port is False  # type: ignore[attr-defined]


def test_both_client_ports() -> None:
    c = cfg("clientPort=2181", "secureClientPort=2281", "secureClientPortAddress=127.0.0.2",
            "ssl.keyStore.location=/k.jks")
    security = c.security  # type: ignore[attr-defined]
    assert (security.plain_client_port, security.secure_client_port, security.secure_client_port_address) == (
        True, 2281, "127.0.0.2")


def test_a_tls_listener_without_a_key_store_is_refused() -> None:
    assert refused("secureClientPort=2281").key == "ssl.keyStore.location"
    assert refused("clientPort=2181", "client.portUnification=true").key == "ssl.keyStore.location"
    assert refused("admin.forceHttps=true").key == "ssl.quorum.keyStore.location"
    e = refused("sslQuorum=true", *ENSEMBLE, myid="1")
    assert e.key == "ssl.quorum.keyStore.location" and "sslQuorum" in str(e)


def test_quorum_tls_on_a_standalone_server_is_unused_as_in_zookeeper() -> None:
    c = cfg("sslQuorum=true")
    assert c.security.ssl_quorum is True  # type: ignore[attr-defined]


def test_tls_settings_are_read_in_either_spelling() -> None:
    c = cfg("sslQuorum=true", "portUnification=true", "zookeeper.ssl.quorum.keyStore.location=/q.p12",
            "ssl.quorum.keyStore.password=pw", "ssl.quorum.keyStore.type=pkcs12",
            "ssl.quorum.trustStore.location=/t.pem", "ssl.quorum.trustStore.passwordPath=/pw",
            "ssl.quorum.clientAuth=WANT", "ssl.quorum.enabledProtocols=TLSv1.2, TLSv1.3",
            "ssl.quorum.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "ssl.quorum.hostnameVerification=false", "ssl.quorum.handshakeDetectionTimeoutMillis=250",
            "sslQuorumReloadCertFiles=true", *ENSEMBLE, myid="2")
    security = c.security  # type: ignore[attr-defined]
    quorum = security.quorum
    assert (security.ssl_quorum, security.quorum_port_unification, security.reload_quorum_certs) == (
        True, True, True)
    assert quorum.key_store.location == "/q.p12" and quorum.key_store.type == "pkcs12"
    assert quorum.key_store.password == "pw"
    assert quorum.trust_store.password_path == "/pw"
    assert quorum.client_auth == "want"
    assert quorum.protocols == ("TLSv1.2", "TLSv1.3")
    assert quorum.suites == ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",)
    assert quorum.hostname_verification is False
    assert quorum.handshake_detection_timeout_ms == 250


def test_tls_defaults() -> None:
    client = cfg().security.client  # type: ignore[attr-defined]
    assert client.client_auth == "need" and client.hostname_verification is True
    assert client.protocols == ("TLSv1.2", "TLSv1.3")
    assert cfg("ssl.protocol=TLSv1.3").security.client.protocols == ("TLSv1.3",)  # type: ignore[attr-defined]


@pytest.mark.parametrize("line, key", [
    ("ssl.clientAuth=sometimes", "ssl.clientAuth"),
    ("ssl.hostnameVerification=maybe", "ssl.hostnameVerification"),
    ("secureClientPort=70000", "secureClientPort"),
    ("ssl.handshakeDetectionTimeoutMillis=0", "ssl.handshakeDetectionTimeoutMillis"),
])
def test_bad_tls_values_name_the_key(line: str, key: str) -> None:
    assert refused(line).key == key


def test_ignored_keys_are_collected_with_their_reason() -> None:
    c = cfg("serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            "kerberos.removeHostFromPrincipal=true", "admin.idleTimeout=30000")
    reasons = dict(c.ignored_keys)  # type: ignore[attr-defined]
    assert set(reasons) == {"serverCnxnFactory", "kerberos.removeHostFromPrincipal", "admin.idleTimeout"}
    assert all(reasons.values())


def test_digest_logins_can_be_turned_off() -> None:
    assert cfg("DigestAuthenticationProvider.enabled=false").digest_auth_enabled is False  # type: ignore[attr-defined]


def test_conf_shows_the_ports_as_zookeeper_does() -> None:
    secure_only = dict(cfg("secureClientPort=2281", "ssl.keyStore.location=/k.jks").conf_lines(0, 0))  # type: ignore[attr-defined]
    assert (secure_only["clientPort"], secure_only["secureClientPort"]) == ("-1", "2281")
    plain = dict(cfg("clientPort=2181").conf_lines(0, 0))  # type: ignore[attr-defined]
    assert (plain["clientPort"], plain["secureClientPort"]) == ("2181", "-1")
