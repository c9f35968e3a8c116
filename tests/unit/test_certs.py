"""zabd.harness.certs writes stores that pyjks, cryptography, openssl and Java's keytool all read back."""
from __future__ import annotations

import ipaddress
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jks
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from zabd.harness.certs import PASSWORD, Identity, Pki, keytool_stores, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def leaf(pki: Pki) -> Identity:
    return pki.identity("server")


def keytool_list(store: Path, storetype: str) -> str:
    """What Java itself makes of a store; a non-zero exit fails the test."""
    done = subprocess.run(
        ["keytool", "-list", "-keystore", str(store), "-storepass", PASSWORD, "-storetype", storetype],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_is_a_ca(pki: Pki) -> None:
    ca = load_cert(pki.ca_pem)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    ca.verify_directly_issued_by(ca)


def test_leaf_names_and_extensions(pki: Pki, leaf: Identity) -> None:
    cert, ca = load_cert(leaf.cert_pem), load_cert(pki.ca_pem)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.rfc4514_string() == "CN=server"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest != ski.digest


def test_leaf_pems(pki: Pki, leaf: Identity) -> None:
    cert, ca = leaf.cert_pem.read_bytes(), pki.ca_pem.read_bytes()
    key_pem = leaf.key_pem.read_bytes()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    key = serialization.load_pem_private_key(key_pem, None)
    assert key.public_key() == load_cert(leaf.cert_pem).public_key()
    assert leaf.chain_pem.read_bytes() == cert + ca
    assert leaf.combined_pem.read_bytes() == key_pem + cert + ca


def test_openssl_verifies_chain_and_purpose(pki: Pki, leaf: Identity) -> None:
    for purpose in ("sslserver", "sslclient"):
        done = subprocess.run(
            ["openssl", "verify", "-CAfile", str(pki.ca_pem), "-purpose", purpose, str(leaf.cert_pem)],
            capture_output=True, text=True, check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_eku_follows_flags(pki: Pki) -> None:
    cert = load_cert(pki.identity("server-only", client=False).cert_pem)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH]
    cert = load_cert(pki.identity("client-only", server=False, hosts=("::1", "zk1.example")).cert_pem)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("::1")]
    assert san.get_values_for_type(x509.DNSName) == ["zk1.example"]


def test_validity_windows(pki: Pki) -> None:
    now = datetime.now(timezone.utc)
    current = load_cert(pki.identity("current").cert_pem)
    assert current.not_valid_before_utc <= now < current.not_valid_after_utc
    expired = load_cert(pki.identity(
        "expired", not_before=now - timedelta(days=2), not_after=now - timedelta(days=1)).cert_pem)
    assert expired.not_valid_after_utc < now
    future = load_cert(pki.identity(
        "not-yet-valid", not_before=now + timedelta(days=1), not_after=now + timedelta(days=2)).cert_pem)
    assert future.not_valid_before_utc > now


def test_identity_is_cached_by_name(pki: Pki, leaf: Identity) -> None:
    before = leaf.cert_pem.read_bytes()
    assert pki.identity("server") == leaf
    assert leaf.cert_pem.read_bytes() == before


def test_untrusted_is_another_pki(tmp_path: Path, pki: Pki) -> None:
    other = make_pki(tmp_path / "other")
    stranger = load_cert(other.identity("stranger").cert_pem)
    with pytest.raises(InvalidSignature):  # same CA name, different key
        stranger.verify_directly_issued_by(load_cert(pki.ca_pem))


def test_make_pki_refuses_a_used_directory(pki: Pki) -> None:
    with pytest.raises(FileExistsError):
        make_pki(pki.directory)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_identity_name_is_a_plain_file_name(pki: Pki, name: str) -> None:
    with pytest.raises(ValueError):
        pki.identity(name)


def test_jks_keystore(pki: Pki, leaf: Identity) -> None:
    store = jks.KeyStore.load(str(leaf.jks), PASSWORD)
    assert list(store.private_keys) == ["key"]
    entry = store.private_keys["key"]
    assert entry.is_decrypted()  # the key password is the store password
    assert [der for _, der in entry.cert_chain] == [
        load_cert(p).public_bytes(serialization.Encoding.DER) for p in (leaf.cert_pem, pki.ca_pem)]
    key = serialization.load_der_private_key(entry.pkey_pkcs8, None)
    assert key.public_key() == load_cert(leaf.cert_pem).public_key()
    assert "PrivateKeyEntry" in keytool_list(leaf.jks, "JKS")


def test_jks_truststore(pki: Pki) -> None:
    store = jks.KeyStore.load(str(pki.truststore_jks), PASSWORD)
    assert not store.private_keys
    [entry] = store.certs.values()
    assert entry.cert == load_cert(pki.ca_pem).public_bytes(serialization.Encoding.DER)
    assert "trustedCertEntry" in keytool_list(pki.truststore_jks, "JKS")


def test_p12_keystore(pki: Pki, leaf: Identity) -> None:
    loaded = pkcs12.load_pkcs12(leaf.p12.read_bytes(), PASSWORD.encode())
    assert loaded.key is not None and loaded.cert is not None
    assert loaded.cert.friendly_name == b"key"
    assert loaded.cert.certificate == load_cert(leaf.cert_pem)
    assert loaded.key.public_key() == loaded.cert.certificate.public_key()
    assert [c.certificate for c in loaded.additional_certs] == [load_cert(pki.ca_pem)]
    assert "PrivateKeyEntry" in keytool_list(leaf.p12, "PKCS12")


def test_p12_truststore(pki: Pki) -> None:
    loaded = pkcs12.load_pkcs12(pki.truststore_p12.read_bytes(), PASSWORD.encode())
    assert loaded.key is None and loaded.cert is None
    assert [c.certificate for c in loaded.additional_certs] == [load_cert(pki.ca_pem)]
    assert "trustedCertEntry" in keytool_list(pki.truststore_p12, "PKCS12")


def test_keytool_stores(tmp_path: Path) -> None:
    keystore, truststore = keytool_stores(tmp_path)
    assert (keystore.name, truststore.name) == ("keystore.jks", "truststore.jks")
    assert "PrivateKeyEntry" in keytool_list(keystore, "JKS")
    assert "trustedCertEntry" in keytool_list(truststore, "JKS")
    key_entry = jks.KeyStore.load(str(keystore), PASSWORD).private_keys["localhost"]
    cert = x509.load_der_x509_certificate(key_entry.cert_chain[0][1])
    assert cert.subject.rfc4514_string() == "CN=localhost"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    trusted = jks.KeyStore.load(str(truststore), PASSWORD).certs["localhost"]
    assert trusted.cert == key_entry.cert_chain[0][1]
    assert keytool_stores(tmp_path) == (keystore, truststore)  # reused, not regenerated


def test_keytool_missing_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="keytool"):
        keytool_stores(tmp_path / "stores")
