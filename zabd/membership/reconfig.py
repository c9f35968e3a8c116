# -*- test-case-name: tests.unit.test_reconfig_plan -*-
"""The next membership for a reconfig request, computed as ZooKeeper 3.8's prep stage does.

Only the membership and the checks on the request's own arguments live here
(PrepRequestProcessor's ``case OpCode.reconfig`` from the split of the
arguments to the "at least 2 followers" rule); the checks that need the
leader's state (reconfigEnabled, a reconfig in progress, the version, a
synced quorum, the ACL) are the pipeline's.

Incremental (``joining``/``leaving``): the last seen members, the leaving
sids removed, each joiner parsed, checked for addresses another member
already uses, and put in. The result prints in the order of 3.8's edited
``HashMap`` copy (:mod:`zabd.java.hashmap`), as ``/zookeeper/config``
shows it. Non-incremental (``new_members``): a whole config text, commas
read as line breaks, parsed as a dynamic config file is. Either way the new
version is the zxid of the reconfig txn.

Where 3.8 answers MARSHALLINGERROR because an unexpected Java exception
escapes (a sid that is not a number, an out-of-range port, observers with no
participants in a new member list), zabd answers BADARGUMENTS: the request is
bad, not the server. zabd also refuses negative sids, which 3.8 accepts.
"""
from __future__ import annotations

import ipaddress
import re

from zabd.membership.hierarchy import QuorumHierarchical
from zabd.java.hashmap import JavaLongHashMap
from zabd.membership.members import Address, MemberSyntaxError, QuorumServer, bracketed, parse_member
from zabd.membership.verifier import (
    QuorumMaj,
    QuorumVerifier,
    verifier_from_entries,
)
from zabd.jute.errors import Code, KeeperError
from zabd.java.limits import LONG_MAX, java_trim
# A pure reader of Java .properties text (it imports nothing but re).
from zabd.java.properties import PropertiesSyntaxError, parse_properties

_JAVA_LONG = re.compile(r"[+-]?[0-9]+")


class ReconfigArgumentError(KeeperError):
    """
    A reconfig request whose arguments 3.8 (or zabd) refuses: BADARGUMENTS.

    :param reason: why, in 3.8's words where 3.8 has some (the client sees only the code).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(Code.BADARGUMENTS)
        self.reason = reason

    def __str__(self) -> str:
        return f"BADARGUMENTS: {self.reason}"


def next_verifier(last_seen: QuorumVerifier, joining: str | None, leaving: str | None,
                  new_members: str | None, zxid: int, *,
                  standalone_enabled: bool = True) -> QuorumMaj | QuorumHierarchical:
    """
    The config a reconfig request asks for, versioned ``zxid``.

    :param last_seen: the leader's last seen (proposed or committed) config.
    :param joining: comma-separated ``server.N=spec;client`` entries, or None.
    :param leaving: comma-separated sids, or None.
    :param new_members: a whole member list (commas or newlines between
        entries); when given, ``joining`` and ``leaving`` are ignored, as in 3.8.
    :param zxid: the reconfig txn's zxid, the new config's version.
    :param standalone_enabled: ``standaloneEnabled``: then the new config needs
        at least 2 participants, else at least 1.
    :raises ReconfigArgumentError: as 3.8 answers BADARGUMENTS (see the module doc).
    """
    if new_members is not None:
        verifier = _replaced(new_members, zxid, standalone_enabled)
    else:
        verifier = _edited(last_seen, _java_split_list(joining), _java_split_list(leaving), zxid)
    voters = len(verifier.voting_members)
    if standalone_enabled and voters < 2:
        raise ReconfigArgumentError("Reconfig failed - new configuration must include at least 2 followers")
    if voters < 1:
        raise ReconfigArgumentError("Reconfig failed - new configuration must include at least 1 follower")
    return verifier


def _replaced(new_members: str, zxid: int, standalone_enabled: bool) -> QuorumMaj | QuorumHierarchical:
    # 3.8: Properties.load of the text with ',' made '\n', then parseDynamicConfig.
    try:
        entries = [(key, value) for key, value, _ in parse_properties(new_members.replace(",", "\n"))]
    except PropertiesSyntaxError as e:
        raise ReconfigArgumentError(f"line {e.line}: {e.problem}") from None
    for key, _ in entries:
        trimmed = java_trim(key)
        # 3.8 takes any group*/weight* key as hierarchical; zabd knows only group.G and weight.SID.
        if not trimmed.startswith(("group.", "weight.", "server.")) and trimmed != "version":
            raise ReconfigArgumentError(f"Unrecognised parameter: {trimmed}")
    try:
        verifier = verifier_from_entries(entries)
    except ValueError as e:  # MemberSyntaxError and HierarchyError are ValueErrors
        raise ReconfigArgumentError(str(e)) from None
    # parseDynamicConfig's own rules on the numbers (3.8 throws IllegalArgumentException).
    voters, observers = len(verifier.voting_members), len(verifier.observing_members)
    if voters == 0 and not standalone_enabled:
        raise ReconfigArgumentError("standaloneEnabled = false then number of participants should be >0")
    if voters == 0 and observers:
        raise ReconfigArgumentError("Observers w/o participants is an invalid configuration")
    if voters == 1 and standalone_enabled and observers:
        raise ReconfigArgumentError("Observers w/o quorum is an invalid configuration")
    return verifier.with_version(zxid)


def _edited(last_seen: QuorumVerifier, joining: list[str], leaving: list[str],
            zxid: int) -> QuorumMaj:
    if not isinstance(last_seen, QuorumMaj):
        raise ReconfigArgumentError("Incremental reconfiguration requested but last configuration "
                                    "seen has a non-majority quorum system")
    servers = JavaLongHashMap.copy_of(last_seen.all_members.items())
    for text in leaving:
        servers.remove(_sid(text, text))
    for joiner in joining:
        parts = _java_split_list(joiner, "=")
        if len(parts) != 2:
            raise ReconfigArgumentError("Wrong format of server string")
        # 3.8 takes what follows the key's last '.', whatever precedes it.
        server = _joiner(_sid(parts[0][parts[0].rfind(".") + 1:], joiner), parts[1])
        for other in servers.values():
            if other.sid != server.sid:
                conflict = address_conflict(server, other)
                if conflict is not None:
                    raise ReconfigArgumentError(conflict)
        # Removed first, so a member given again moves to the end of its bucket, as in 3.8.
        servers.remove(server.sid)
        servers.put(server.sid, server)
    return QuorumMaj(servers.values(), zxid, keep_order=True)


def _joiner(sid: int, spec: str) -> QuorumServer:
    try:
        server = parse_member(sid, spec)
    except MemberSyntaxError as e:
        # 3.8 says "Reconfiguration failed" and logs nothing more; zabd keeps the cause.
        raise ReconfigArgumentError(f"Reconfiguration failed: {e}") from None
    if server.client_addr is None:
        raise ReconfigArgumentError("Wrong format of server string - "
                                    "each server should have 3 ports specified")
    return server


def _sid(text: str, context: str) -> int:
    # Long.parseLong; zabd also wants a non-negative id.
    if _JAVA_LONG.fullmatch(text) is None or abs(int(text)) > LONG_MAX:
        raise ReconfigArgumentError(f"{context!r}: {text!r} is not a server id")
    if int(text) < 0:
        raise ReconfigArgumentError(f"{context!r}: a server id must not be negative")
    return int(text)


def _java_split_list(text: str | None, separator: str = ",") -> list[str]:
    """ZooKeeper's StringUtils.split: split, trim each part, drop the empty ones."""
    if text is None:
        return []
    return [java_trim(part) for part in text.split(separator) if java_trim(part)]


def address_conflict(joiner: QuorumServer, other: QuorumServer) -> str | None:
    """
    3.8's ``checkAddressDuplicate``: the first address of ``joiner`` that ``other`` uses too.

    Quorum, client and election addresses are compared, leaving out wildcard
    and loopback ones, which many members may share. 3.8 compares resolved
    addresses; zabd resolves no names here, so two names meet only when they
    are spelt the same (``localhost`` counts as loopback).

    :returns: 3.8's message naming both, or None if they share nothing.
    """
    others = _distinctive(other)
    for mine in _distinctive(joiner):
        if mine in others:
            return (f"{_java_socket_text(mine)} of server.{joiner.sid} conflicts "
                    f"{_java_socket_text(mine)} of server.{other.sid}")
    return None


def _distinctive(server: QuorumServer) -> list[Address]:
    # 3.8's order: quorum address, client address, election address.
    candidates = [server.quorum_addr, server.client_addr, server.election_addr]
    return [(host.lower(), port) for host, port in (a for a in candidates if a is not None)
            if not _shared_host(host)]


def _shared_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False  # a name: taken as its own address
    return address.is_unspecified or address.is_loopback


def _java_socket_text(address: Address) -> str:
    # InetSocketAddress.toString for an address given as a literal: "/host:port".
    host, port = address
    return f"/{bracketed(host)}:{port}"
