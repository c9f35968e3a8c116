"""A pytest plugin for kazoo's own suite (zabd.harness.kazoo_suite runs it with ``-p``): kazoo 2.11's harness mended.

- A cluster the harness starts is whole before any test uses it. The harness
  starts the peers and sleeps 2 s; a test could then write through two peers
  while the third was still joining the epoch, and read from the third once
  the other two were stopped (test_read_only's NoNodeError). The start now
  waits until every peer answers ``srvr`` as leader, follower or observer.
- pyOpenSSL 24.3 dropped ``X509.add_extensions``, which the harness calls to
  make its TLS certificates for every cluster; :func:`kazoo_ssl_configuration`
  makes the same ones with cryptography.
"""
from __future__ import annotations

from typing import Any

from zabd.harness.commands import LOCALHOST
from zabd.harness.probes import four_letter, wait_until

#: How long a started cluster may take until every peer serves.
CLUSTER_START_DEADLINE_S = 60.0
SERVING_MODES = ("Mode: leader", "Mode: follower", "Mode: observer", "Mode: standalone")


def pytest_configure(config: object) -> None:
    """A pytest hook (``-p zabd.harness.kazoo_mend``): mend kazoo 2.11's harness."""
    from kazoo.testing.common import ZookeeperCluster
    from OpenSSL import crypto

    ZookeeperCluster.start = start_whole_cluster
    if hasattr(crypto.X509, "add_extensions"):
        return

    # pyOpenSSL 24.3 dropped X509.add_extensions, which the harness's TLS
    # setup calls for every cluster, so no test could start; same certs, built
    # with cryptography instead.
    def generate(cluster: ZookeeperCluster) -> None:
        if not cluster._ssl_configuration:
            cluster._ssl_configuration = kazoo_ssl_configuration()

    ZookeeperCluster.perform_ssl_certs_generation = generate


def start_whole_cluster(cluster: Any) -> None:
    """ZookeeperCluster.start, waiting for every peer to serve where the harness sleeps."""
    for server in reversed(list(cluster)):  # the harness's order: clients prefer the low ports
        server.run()
    ports = [server.client_port for server in cluster]
    wait_until(lambda: all(serves(port) for port in ports), CLUSTER_START_DEADLINE_S,
               f"every peer of the kazoo cluster on ports {ports} to serve",
               describe=lambda: ", ".join(f"{port}: {'serving' if serves(port) else 'not yet'}" for port in ports))


def serves(port: int) -> bool:
    """Whether the server on ``port`` answers ``srvr`` as a member of a working ensemble."""
    try:
        answer = four_letter(LOCALHOST, port, "srvr", timeout=2.0)
    except OSError:
        return False
    return any(mode in answer for mode in SERVING_MODES)


def kazoo_ssl_configuration() -> dict[str, object]:
    """The CA, server and client certificates and the JKS stores kazoo's harness keeps."""
    import datetime

    import jks
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    from OpenSSL import crypto

    start = datetime.datetime.now(datetime.timezone.utc)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca.kazoo.org")])
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def certificate(name: str, serial: int, key: rsa.RSAPrivateKey, ca: bool) -> x509.Certificate:
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(ca_name).public_key(key.public_key()).serial_number(serial)
                   .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=1)))
        if ca:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        return builder.sign(ca_key, hashes.SHA256())

    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = certificate("ca.kazoo.org", 1, ca_key, True)
    server_cert = certificate("localhost", 2, server_key, False)
    client_cert = certificate("client", 3, client_key, False)
    der, pem = serialization.Encoding.DER, serialization.Encoding.PEM
    server_key_der = server_key.private_bytes(der, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
    return {
        "ca_cert": crypto.X509.from_cryptography(ca_cert),
        "ca_key": crypto.PKey.from_cryptography_key(ca_key),
        "ca_cert_pem": ca_cert.public_bytes(pem),
        "server_cert": crypto.X509.from_cryptography(server_cert),
        "server_key": crypto.PKey.from_cryptography_key(server_key),
        "client_cert": crypto.X509.from_cryptography(client_cert),
        "client_key": crypto.PKey.from_cryptography_key(client_key),
        "client_cert_pem": client_cert.public_bytes(pem),
        "client_key_pem": client_key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                   serialization.NoEncryption()),
        "truststore": jks.KeyStore.new(
            "jks", [jks.TrustedCertEntry.new("kazoo ca", ca_cert.public_bytes(der))]),
        "keystore": jks.KeyStore.new("jks", [jks.PrivateKeyEntry.new(
            "server cert", [server_cert.public_bytes(der)], server_key_der, "pkcs8")]),
    }
