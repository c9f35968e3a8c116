"""
Does a certificate name a host?  The check behind ``ssl.hostnameVerification``.

As ZooKeeper's verifier (after RFC 2818): an IP address must be an IP
subjectAltName; a host name matches a DNS subjectAltName, with ``*`` as the
whole left-most label; with no DNS subjectAltName at all, the most specific
CN counts.  A peer seen only by its IP address is also accepted under the
name ``localhost`` when the address is loopback, which is the name 3.8 gets
from its reverse lookup there; zabd does no reverse lookups, which would
block the reactor.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import NameOID


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _dns_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    first, _, rest = pattern.partition(".")
    # A wildcard stands for one whole label, and never for a public suffix alone.
    return first == "*" and rest.count(".") >= 1 and host.partition(".")[2] == rest


def _alt_names(cert: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def certificate_names_host(cert: x509.Certificate, host: str) -> bool:
    """Whether ``cert`` is a certificate for ``host`` (a name or an IP address)."""
    names = _alt_names(cert)
    address = _ip(host)
    if address is not None:
        if names is not None and address in names.get_values_for_type(x509.IPAddress):
            return True
        return address.is_loopback and certificate_names_host(cert, "localhost")
    dns = names.get_values_for_type(x509.DNSName) if names is not None else []
    if dns:
        return any(_dns_matches(pattern, host) for pattern in dns)
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return bool(common) and _dns_matches(str(common[-1].value), host)
