"""
Key and trust stores as ZooKeeper reads them: JKS, PKCS12 and PEM files.

JKS comes through pyjks, PKCS12 and PEM through cryptography.  Like 3.8,
the type is ``<store>.type`` or else the file name's ending (``.jks``,
``.p12``/``.pfx``, ``.pem``).  Java's keytool writes PKCS12 by default even
under a ``.jks`` name, and Java reads it as JKS, so a ``.jks`` file is read
by its first bytes.  Every failure is a :class:`StoreError` naming the key
and the file, which the server shows the operator at startup.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key, pkcs12

from zabd.tls.settings import StoreSpec

_JKS_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")  # JKS, JCEKS
_EXTENSION_TYPES = {".jks": "JKS", ".p12": "PKCS12", ".pfx": "PKCS12", ".pem": "PEM", ".crt": "PEM"}
STORE_TYPES = ("JKS", "PKCS12", "PEM")


class StoreError(Exception):
    """A store that cannot be used; the text names the key and the file."""

    def __init__(self, spec: StoreSpec, problem: str) -> None:
        super().__init__(f"{spec.key}.location: {spec.location}: {problem}")
        self.key = f"{spec.key}.location"
        self.path = spec.location


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """A private key and its certificate chain, leaf first."""

    key: PrivateKeyTypes
    chain: tuple[x509.Certificate, ...]


def store_type(spec: StoreSpec) -> str:
    """The store's type, from ``<store>.type`` or the file name."""
    if spec.type:
        wanted = spec.type.upper()
        if wanted not in STORE_TYPES:
            raise StoreError(spec, f"{spec.key}.type {spec.type!r} is not supported "
                                   f"(zabd reads {', '.join(STORE_TYPES)})")
        return wanted
    found = _EXTENSION_TYPES.get(os.path.splitext(spec.location)[1].lower())
    if found is None:
        raise StoreError(spec, f"cannot tell the store type from the file name; set {spec.key}.type "
                               f"to one of {', '.join(STORE_TYPES)}")
    return found


def password(spec: StoreSpec) -> str | None:
    """``passwordPath``'s text (trailing newline dropped) wins over ``password``, as in 3.8."""
    if spec.password_path:
        try:
            with open(spec.password_path, encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except OSError as e:
            raise StoreError(spec, f"cannot read {spec.key}.passwordPath {spec.password_path}: "
                                   f"{e.strerror}") from None
    return spec.password


def _read(spec: StoreSpec) -> bytes:
    try:
        with open(spec.location, "rb") as f:
            return f.read()
    except OSError as e:
        raise StoreError(spec, f"cannot read the store: {e.strerror}") from None


def load_key_store(spec: StoreSpec, now: datetime | None = None) -> KeyMaterial:
    """
    The private key and chain in a key store, checked for dates.

    :param now: the time the leaf must be valid at (default: the wall clock);
        an expired or not-yet-valid certificate is refused here, at startup,
        rather than at every handshake.
    :raises StoreError: naming the key and file.
    """
    kind, data, secret = store_type(spec), _read(spec), password(spec)
    if kind == "PEM":
        material = _pem_key_store(spec, data, secret)
    elif kind == "JKS" and data[:4] in _JKS_MAGIC:
        material = _jks_key_store(spec, data, secret)
    else:
        material = _pkcs12_key_store(spec, data, secret)
    _check_dates(spec, material.chain[0], now or datetime.now(timezone.utc))
    return material


def load_trust_store(spec: StoreSpec) -> tuple[x509.Certificate, ...]:
    """
    The certificates a trust store trusts.

    :raises StoreError: naming the key and file, also for a store with none.
    """
    kind, data, secret = store_type(spec), _read(spec), password(spec)
    if kind == "PEM":
        try:
            certificates = tuple(x509.load_pem_x509_certificates(data))
        except ValueError as e:
            raise StoreError(spec, f"not a PEM file of certificates: {e}") from None
    elif kind == "JKS" and data[:4] in _JKS_MAGIC:
        keystore = _jks(spec, data, secret)
        certificates = tuple(x509.load_der_x509_certificate(entry.cert) for entry in keystore.certs.values())
        certificates += tuple(x509.load_der_x509_certificate(der)
                              for entry in keystore.private_keys.values() for _, der in entry.cert_chain[:1])
    else:
        loaded = _pkcs12(spec, data, secret)
        certificates = tuple(c.certificate for c in loaded.additional_certs)
        if loaded.cert is not None:
            certificates += (loaded.cert.certificate,)
    if not certificates:
        raise StoreError(spec, "the trust store holds no certificate")
    return certificates


def _check_dates(spec: StoreSpec, leaf: x509.Certificate, now: datetime) -> None:
    if now < leaf.not_valid_before_utc:
        raise StoreError(spec, f"the certificate {leaf.subject.rfc4514_string()} is not valid "
                               f"before {leaf.not_valid_before_utc.isoformat()}")
    if now > leaf.not_valid_after_utc:
        raise StoreError(spec, f"the certificate {leaf.subject.rfc4514_string()} expired "
                               f"on {leaf.not_valid_after_utc.isoformat()}")


def _pem_key_store(spec: StoreSpec, data: bytes, secret: str | None) -> KeyMaterial:
    try:
        chain = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise StoreError(spec, "the PEM key store holds no certificate") from None
    start = data.find(b"-----BEGIN")
    blocks = [b"-----BEGIN" + block for block in data[start:].split(b"-----BEGIN")[1:]]
    keys = [block for block in blocks if b"PRIVATE KEY-----" in block.split(b"\n", 1)[0]]
    if not keys:
        raise StoreError(spec, "the PEM key store holds no private key")
    try:
        key = load_pem_private_key(keys[0], secret.encode() if secret and b"ENCRYPTED" in keys[0] else None)
    except (ValueError, TypeError) as e:
        raise StoreError(spec, f"cannot read the private key (wrong {spec.key}.password?): {e}") from None
    return KeyMaterial(key, chain)


def _jks(spec: StoreSpec, data: bytes, secret: str | None) -> Any:
    import jks  # pyjks: imported here, so that servers without JKS stores never load it

    try:
        return jks.KeyStore.loads(data, secret or "", try_decrypt_keys=True)
    except jks.util.KeystoreSignatureException:
        raise StoreError(spec, f"wrong {spec.key}.password (the store's integrity check failed)") from None
    except Exception as e:  # pyjks raises many kinds for a damaged file
        raise StoreError(spec, f"not a readable JKS store: {e}") from None


def _jks_key_store(spec: StoreSpec, data: bytes, secret: str | None) -> KeyMaterial:
    keystore = _jks(spec, data, secret)
    entries = list(keystore.private_keys.values())
    if not entries:
        raise StoreError(spec, "the key store holds no private key entry")
    entry = entries[0]
    if not entry.is_decrypted():
        raise StoreError(spec, f"cannot decrypt the private key with {spec.key}.password")
    try:
        key = load_der_private_key(entry.pkey_pkcs8, None)
    except ValueError as e:
        raise StoreError(spec, f"cannot read the private key: {e}") from None
    chain = tuple(x509.load_der_x509_certificate(der) for _, der in entry.cert_chain)
    return KeyMaterial(key, chain)


def _pkcs12(spec: StoreSpec, data: bytes, secret: str | None) -> pkcs12.PKCS12KeyAndCertificates:
    try:
        return pkcs12.load_pkcs12(data, secret.encode() if secret else None)
    except ValueError:
        raise StoreError(spec, f"wrong {spec.key}.password, or not a PKCS12 store") from None


def _pkcs12_key_store(spec: StoreSpec, data: bytes, secret: str | None) -> KeyMaterial:
    loaded = _pkcs12(spec, data, secret)
    if loaded.key is None or loaded.cert is None:
        raise StoreError(spec, "the key store holds no private key with a certificate")
    chain = (loaded.cert.certificate,) + tuple(c.certificate for c in loaded.additional_certs)
    return KeyMaterial(loaded.key, chain)
