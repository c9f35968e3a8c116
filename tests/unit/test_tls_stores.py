"""Key and trust stores: JKS (pyjks and keytool), PKCS12 and PEM; every failure names the key and file."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from zabd.harness.certs import PASSWORD, Identity, Pki, keytool_stores
from zabd.tls.settings import StoreSpec
from zabd.tls.stores import StoreError, load_key_store, load_trust_store, store_type


@pytest.fixture(scope="module")
def leaf(pki: Pki) -> Identity:
    return pki.identity("server")


def key_spec(path: Path, password: str | None = PASSWORD, kind: str | None = None) -> StoreSpec:
    return StoreSpec("ssl.keyStore", str(path), password, None, kind)


def trust_spec(path: Path, password: str | None = PASSWORD, kind: str | None = None) -> StoreSpec:
    return StoreSpec("ssl.trustStore", str(path), password, None, kind)


@pytest.mark.parametrize("store", ["jks", "p12", "combined_pem"])
def test_key_stores_load_key_and_chain(leaf: Identity, store: str) -> None:
    material = load_key_store(key_spec(getattr(leaf, store), kind="PEM" if store == "combined_pem" else None))
    assert material.chain[0].subject.rfc4514_string() == "CN=server"
    assert len(material.chain) == 2


@pytest.mark.parametrize("store", ["truststore_jks", "truststore_p12", "ca_pem"])
def test_trust_stores_load_the_ca(pki: Pki, store: str) -> None:
    [ca] = load_trust_store(trust_spec(getattr(pki, store)))
    assert "zabd test CA" in ca.subject.rfc4514_string()


def test_keytool_made_jks_stores_load(tmp_path: Path) -> None:
    keystore, truststore = keytool_stores(tmp_path)
    material = load_key_store(key_spec(keystore))
    assert "localhost" in material.chain[0].subject.rfc4514_string()
    assert len(load_trust_store(trust_spec(truststore))) == 1


def test_password_path_wins_over_password(leaf: Identity, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    spec = StoreSpec("ssl.keyStore", str(leaf.p12), "wrong", str(secret))
    assert load_key_store(spec).chain


@pytest.mark.parametrize("store", ["jks", "p12"])
def test_wrong_password_names_key_and_file(leaf: Identity, store: str) -> None:
    path = getattr(leaf, store)
    with pytest.raises(StoreError) as caught:
        load_key_store(key_spec(path, "not-the-password"))
    assert caught.value.key == "ssl.keyStore.location" and caught.value.path == str(path)
    assert "ssl.keyStore.password" in str(caught.value) and str(path) in str(caught.value)


def test_wrong_trust_store_password(pki: Pki) -> None:
    with pytest.raises(StoreError, match="ssl.trustStore.password"):
        load_trust_store(trust_spec(pki.truststore_jks, "nope"))


def test_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot read the store: No such file") as caught:
        load_key_store(key_spec(tmp_path / "absent.jks"))
    assert str(tmp_path / "absent.jks") in str(caught.value)


def test_unreadable_store(tmp_path: Path) -> None:
    # A directory cannot be read as a file, even by root (for whom mode bits do not count).
    (tmp_path / "dir.jks").mkdir()
    with pytest.raises(StoreError, match="cannot read the store"):
        load_key_store(key_spec(tmp_path / "dir.jks"))


def test_garbage_store(tmp_path: Path) -> None:
    (tmp_path / "junk.p12").write_bytes(b"\x00junk" * 20)
    with pytest.raises(StoreError, match="not a PKCS12 store"):
        load_key_store(key_spec(tmp_path / "junk.p12"))


def test_expired_and_not_yet_valid_certificates_are_refused(pki: Pki) -> None:
    now = datetime.now(timezone.utc)
    expired = pki.identity("stores-expired", not_before=now - timedelta(days=30),
                           not_after=now - timedelta(days=1))
    with pytest.raises(StoreError, match="expired on"):
        load_key_store(key_spec(expired.p12))
    future = pki.identity("stores-future", not_before=now + timedelta(days=1),
                          not_after=now + timedelta(days=30))
    with pytest.raises(StoreError, match="is not valid before"):
        load_key_store(key_spec(future.jks))


def test_store_type_from_setting_or_name(leaf: Identity) -> None:
    assert store_type(key_spec(Path("a.JKS"))) == "JKS"
    assert store_type(key_spec(Path("a.pfx"))) == "PKCS12"
    assert store_type(key_spec(Path("a.bin"), kind="pem")) == "PEM"
    with pytest.raises(StoreError, match="set ssl.keyStore.type"):
        store_type(key_spec(Path("a.bin")))
    with pytest.raises(StoreError, match="BCFKS"):
        store_type(key_spec(Path("a.bcfks"), kind="BCFKS"))


def test_keytool_pkcs12_under_a_jks_name_loads(leaf: Identity, tmp_path: Path) -> None:
    # Java's keytool writes PKCS12 by default, even to keystore.jks; Java reads it as JKS.
    renamed = tmp_path / "keystore.jks"
    renamed.write_bytes(leaf.p12.read_bytes())
    assert load_key_store(key_spec(renamed)).chain


def test_pem_key_store_without_a_key(leaf: Identity) -> None:
    with pytest.raises(StoreError, match="no private key"):
        load_key_store(key_spec(leaf.chain_pem, kind="PEM"))
