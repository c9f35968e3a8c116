"""A throwaway PKI on disk for TLS tests, in every shape ZooKeeper's TLS settings accept.

:func:`make_pki` makes a fresh CA (EC P-256: fast to generate) under a
directory, with its certificate as a PEM, JKS and PKCS12 trust store;
:meth:`Pki.identity` issues leaves signed by it, each as an unencrypted PKCS8
key, PEM certificate and chain, ZooKeeper's combined PEM keystore, a JKS
keystore (via pyjks) and a PKCS12 keystore. Stores are protected by
:data:`PASSWORD`. Expired or not-yet-valid leaves come from ``not_before`` /
``not_after``; an untrusted leaf is one from a second :func:`make_pki`.

:func:`keytool_stores` instead runs Java's ``keytool`` the way ZooKeeper's
admin guide does, so tests also cover stores that Java itself wrote.
"""
from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

import jks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASSWORD = "apassword"

#: The alias (JKS) / friendly name (PKCS12) of every identity's key entry.
KEY_ALIAS = "key"
CA_ALIAS = "ca"


@dataclass(frozen=True)
class Identity:
    """One leaf's key and certificate, written in each format a TLS config may name."""

    key_pem: Path
    cert_pem: Path
    chain_pem: Path
    combined_pem: Path
    jks: Path
    p12: Path
    name: str


@dataclass(frozen=True)
class Pki:
    """A CA under ``directory`` with its trust stores; issues leaves via :meth:`identity`."""

    directory: Path
    ca_pem: Path
    truststore_jks: Path
    truststore_p12: Path

    @property
    def ca_key_pem(self) -> Path:
        """The CA's private key, kept on disk so leaves can be issued later (and by other processes)."""
        return self.directory / "ca-key.pem"

    def identity(
        self, name: str, *, hosts: Sequence[str] = ("127.0.0.1", "localhost"),
        not_before: datetime | None = None, not_after: datetime | None = None,
        client: bool = True, server: bool = True,
    ) -> Identity:
        """The leaf ``name`` (CN=name, SANs from ``hosts``), issued on first use and then reused.

        The cache is keyed by name alone, so give differently-made leaves different names.
        """
        ident = _identity_paths(self.directory / _checked_name(name), name)
        if all(p.exists() for p in (ident.key_pem, ident.cert_pem, ident.chain_pem,
                                     ident.combined_pem, ident.jks, ident.p12)):
            return ident
        ca_cert = x509.load_pem_x509_certificate(self.ca_pem.read_bytes())
        ca_key = serialization.load_pem_private_key(self.ca_key_pem.read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        now = _now()
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _leaf_cert(
            name, key, ca_cert, ca_key, hosts,
            not_before or now - timedelta(hours=1), not_after or now + timedelta(days=365),
            client=client, server=server,
        )
        _write_identity(ident, key, cert, ca_cert)
        return ident


def make_pki(directory: Path, name: str = "zabd test CA") -> Pki:
    """A new CA and trust stores in ``directory``; refuses a directory that already holds one,
    since leaves cached there would be signed by the old CA."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory, directory / "ca.pem", directory / "truststore.jks", directory / "truststore.p12")
    if pki.ca_pem.exists() or pki.ca_key_pem.exists():
        raise FileExistsError(f"{directory} already holds a CA; use a fresh directory per make_pki")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _ca_cert(name, key)
    pki.ca_key_pem.write_bytes(_pkcs8_pem(key))
    pki.ca_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    der = cert.public_bytes(serialization.Encoding.DER)
    jks.KeyStore.new("jks", [jks.TrustedCertEntry.new(CA_ALIAS, der)]).save(str(pki.truststore_jks), PASSWORD)
    pki.truststore_p12.write_bytes(pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(cert, CA_ALIAS.encode())], _encryption(),
    ))
    return pki


def keytool_stores(directory: Path, hostname: str = "localhost", password: str = PASSWORD) -> tuple[Path, Path]:
    """(keystore.jks, truststore.jks) made by Java's keytool per ZooKeeper's admin guide.

    Reused when both already exist (keytool refuses to overwrite an alias).
    Missing keytool is an error, not a skip: these tests should not pass vacuously.
    """
    keystore, truststore = directory / "keystore.jks", directory / "truststore.jks"
    if keystore.exists() and truststore.exists():
        return keystore, truststore
    directory.mkdir(parents=True, exist_ok=True)
    cert = directory / f"{hostname}.cer"
    san = "SAN=dns:localhost,ip:127.0.0.1" + ("" if hostname == "localhost" else f",dns:{hostname}")
    _keytool("-genkeypair", "-alias", hostname, "-keyalg", "RSA", "-keysize", "2048",
             "-dname", f"cn={hostname}", "-ext", san, "-keypass", password,
             "-keystore", str(keystore), "-storepass", password, "-storetype", "JKS")
    _keytool("-exportcert", "-alias", hostname, "-keystore", str(keystore), "-storepass", password,
             "-file", str(cert), "-rfc")
    _keytool("-importcert", "-noprompt", "-alias", hostname, "-file", str(cert),
             "-keystore", str(truststore), "-storepass", password, "-storetype", "JKS")
    return keystore, truststore


def _keytool(*args: str) -> str:
    """Run keytool, turning its absence or failure into an error that shows what it said."""
    exe = shutil.which("keytool")
    if exe is None:
        raise RuntimeError("Java's keytool is not on PATH; install a JDK (e.g. openjdk-17-jdk-headless)")
    done = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"keytool {args[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout


def _checked_name(name: str) -> str:
    """Identity names become directory names, so they must be a single plain path component."""
    if not name or name in (".", "..") or Path(name).name != name:
        raise ValueError(f"identity name must be a plain file name, not {name!r}")
    return name


def _identity_paths(where: Path, name: str) -> Identity:
    return Identity(
        key_pem=where / "key.pem", cert_pem=where / "cert.pem", chain_pem=where / "chain.pem",
        combined_pem=where / "combined.pem", jks=where / "keystore.jks", p12=where / "keystore.p12",
        name=name,
    )


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _subject(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    """IP literals as IPAddress SANs (hostname checks on IPs look only there), the rest as DNSName."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _ca_cert(name: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """Self-signed CA, valid from a year ago so that deliberately expired leaves still chain to it."""
    now = _now()
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_subject(name)).issuer_name(_subject(name))
        .public_key(public).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=365)).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_cert(
    name: str, key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str], not_before: datetime, not_after: datetime, *, client: bool, server: bool,
) -> x509.Certificate:
    """A leaf with the extensions Java's PKIX and endpoint checks look for."""
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(_san(hosts), critical=False)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """CA: keyCertSign + cRLSign; leaf: digitalSignature + keyEncipherment."""
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=not cert_sign,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )


def _pkcs8_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _encryption() -> serialization.KeySerializationEncryption:
    return serialization.BestAvailableEncryption(PASSWORD.encode())


def _write_identity(
    ident: Identity, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, ca_cert: x509.Certificate,
) -> None:
    """Write every format :class:`Identity` names, from the one key and certificate."""
    ident.key_pem.parent.mkdir(parents=True, exist_ok=True)
    key_pem = _pkcs8_pem(key)
    leaf_pem, ca_pem = (c.public_bytes(serialization.Encoding.PEM) for c in (cert, ca_cert))
    ident.key_pem.write_bytes(key_pem)
    ident.cert_pem.write_bytes(leaf_pem)
    ident.chain_pem.write_bytes(leaf_pem + ca_pem)
    ident.combined_pem.write_bytes(key_pem + leaf_pem + ca_pem)
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    certs_der = [c.public_bytes(serialization.Encoding.DER) for c in (cert, ca_cert)]
    entry = jks.PrivateKeyEntry.new(KEY_ALIAS, certs_der, key_der, "pkcs8")
    entry.encrypt(PASSWORD)
    jks.KeyStore.new("jks", [entry]).save(str(ident.jks), PASSWORD)
    ident.p12.write_bytes(pkcs12.serialize_key_and_certificates(
        KEY_ALIAS.encode(), key, cert, [ca_cert], _encryption(),
    ))
