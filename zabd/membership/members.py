# -*- test-case-name: tests.unit.test_ensemble_config -*-
"""One ensemble member: the value of a ``server.N`` line, read as ZooKeeper 3.8 reads it.

The syntax is ``host:quorumPort:electionPort[:participant|:observer]`` with an
optional ``;[clientHost:]clientPort``, IPv6 hosts in brackets. Hosts are kept
as Java's ``InetSocketAddress.getHostString`` shows them (``[::1]`` becomes
``0:0:0:0:0:0:0:1``, ``127.000.000.001`` becomes ``127.0.0.1``), because that
is the text 3.8 writes back into notifications, NEWLEADER and
``/zookeeper/config``; a name is never resolved here.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import IntEnum

from zabd.java.compat import java_parse_int, java_split
from zabd.java.limits import java_trim

Address = tuple[str, int]

_FORM = ("expected host:quorumPort:electionPort[:participant|:observer]"
         "[;[clientHost:]clientPort]")


class MemberSyntaxError(ValueError):
    """A ``server.N`` value that ZooKeeper 3.8 (or zabd) refuses; the text says why."""


class LearnerType(IntEnum):
    """QuorumPeer.LearnerType; the ordinal is what ``conf`` prints as ``peerType``."""

    PARTICIPANT = 0
    OBSERVER = 1


@dataclass(frozen=True, slots=True)
class QuorumServer:
    """
    One ``server.N`` entry.

    ``client_addr_from_static`` marks a client address that came from the
    ``clientPort`` key rather than the server line: 3.8 keeps it for the server
    but leaves it out of the config text (``isClientAddrFromStatic``).
    """

    sid: int
    quorum_addr: Address
    election_addr: Address
    learner_type: LearnerType = LearnerType.PARTICIPANT
    client_addr: Address | None = None
    client_addr_from_static: bool = False

    @property
    def is_participant(self) -> bool:
        """Whether this member votes (and may lead)."""
        return self.learner_type is LearnerType.PARTICIPANT

    def spec(self) -> str:
        """The value 3.8 writes for this member (``QuorumServer.toString``)."""
        host, quorum_port = self.quorum_addr
        text = f"{bracketed(host)}:{quorum_port}:{self.election_addr[1]}"
        text += ":participant" if self.is_participant else ":observer"
        if self.client_addr is not None and not self.client_addr_from_static:
            text += f";{bracketed(self.client_addr[0])}:{self.client_addr[1]}"
        return text


def bracketed(host: str) -> str:
    """A host as it stands before ``:port``: IPv6 literals in brackets."""
    return f"[{host}]" if ":" in host else host


def parse_member(sid: int, value: str) -> QuorumServer:
    """
    Read a ``server.N`` value as 3.8's QuorumServer does.

    Several ``|``-separated addresses (3.8's multiAddress feature) are refused:
    3.8 itself refuses them unless ``multiAddress.enabled=true``, and zabd does
    not implement that feature.

    :param sid: N, the server id.
    :param value: the text after ``=`` (3.8 does not trim it, so neither does zabd).
    :raises MemberSyntaxError: naming what is wrong.
    """
    server_client = java_split(value, ";")
    if len(server_client) > 2:
        raise MemberSyntaxError(f"{value!r}: more than one ';'; {_FORM}")
    if "|" in server_client[0]:
        raise MemberSyntaxError(
            f"{value!r}: several '|'-separated addresses (ZooKeeper's multiAddress) "
            "are not supported by zabd")
    parts = host_and_port(server_client[0])
    if not 3 <= len(parts) <= 4:
        raise MemberSyntaxError(f"{value!r}: {_FORM}")
    host = java_host_string(parts[0])
    quorum_port = _port(parts[1], "quorum port")
    election_port = _port(parts[2], "election port")
    if quorum_port == election_port:
        raise MemberSyntaxError(
            f"{value!r}: the quorum and election ports must differ (both {quorum_port})")
    learner_type = _learner_type(parts[3]) if len(parts) == 4 else LearnerType.PARTICIPANT
    client_addr = None
    if len(server_client) == 2:
        client_parts = host_and_port(server_client[1])
        if len(client_parts) > 2:
            raise MemberSyntaxError(f"{value!r}: {_FORM}")
        client_host = java_host_string(client_parts[0]) if len(client_parts) == 2 else "0.0.0.0"
        client_addr = (client_host, _port(client_parts[-1], "client port"))
    return QuorumServer(sid, (host, quorum_port), (host, election_port), learner_type, client_addr)


def host_and_port(text: str) -> list[str]:
    """
    Split ``host:port[:...]`` at colons, a bracketed IPv6 host kept whole.

    As 3.8's ConfigUtils.getHostAndPort, the character after ``]`` is skipped
    unchecked and a lone ``[host]`` is returned as one part.
    """
    if not text.startswith("["):
        return java_split(text, ":")
    close = text.find("]")
    if close < 0:
        raise MemberSyntaxError(f"{text!r} starts with '[' but has no matching ']'")
    if close + 2 == len(text):
        raise MemberSyntaxError(f"{text!r} has no port after the colon")
    if close + 2 < len(text):
        return [text[1:close]] + java_split(text[close + 2:], ":")
    return [text.replace("[", "").replace("]", "")]


def java_host_string(host: str) -> str:
    """
    The host as ``new InetSocketAddress(host, port).getHostString()`` shows it.

    IP literals come back in Java's form; names (resolvable or not) unchanged.
    An empty host is the loopback address, which Java names ``localhost``.
    """
    if not host:
        return "localhost"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ipv4 = _java_ipv4(host)
    if ipv4 is not None:
        return ipv4
    if ":" not in host:
        return host
    literal, percent, zone = host.partition("%")
    if percent and not zone.isdigit():
        return host  # an interface-name zone: Java leaves it as written when it cannot bind it
    try:
        address = ipaddress.IPv6Address(literal)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    groups = address.exploded.split(":")
    return ":".join(format(int(group, 16), "x") for group in groups) + percent + zone


def _java_ipv4(host: str) -> str | None:
    # Java takes 1 to 4 decimal parts, the last filling the remaining bytes ("127.1").
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    values = [int(p) for p in parts]
    last_bytes = 5 - len(parts)
    if any(v > 255 for v in values[:-1]) or values[-1] >= 256 ** last_bytes:
        return None
    raw = bytes(values[:-1]) + values[-1].to_bytes(last_bytes, "big")
    return ".".join(str(b) for b in raw)


def _port(text: str, what: str) -> int:
    # Integer.parseInt then InetSocketAddress's range check (0 is allowed, as in Java).
    value = java_parse_int(text)
    if value is None or not 0 <= value <= 65535:
        raise MemberSyntaxError(f"{what} {text!r} is not a number from 0 to 65535")
    return value


def _learner_type(text: str) -> LearnerType:
    lowered = java_trim(text).lower()
    if lowered == "participant":
        return LearnerType.PARTICIPANT
    if lowered == "observer":
        return LearnerType.OBSERVER
    raise MemberSyntaxError(f"unknown peer type {text!r} (expected participant or observer)")
