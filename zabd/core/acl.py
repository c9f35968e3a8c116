# -*- test-case-name: tests.unit.test_acl -*-
"""ACLs and authentication as ZooKeeper 3.8 does them (protocol doc section 2.6).

Only the two providers 3.8 registers by default exist: ``ip`` (IPv4 only:
3.8's IPAuthenticationProvider has no IPv6 parser) and ``digest``.
``world:anyone`` and ``auth`` are handled by the ACL logic itself, and
``super`` is an id without a provider. The string handling copies Java's
behaviour where it shows (``String.split`` dropping trailing empty strings,
``Integer.parseInt`` accepting a sign), so that the same ACLs are accepted and
rejected as on a real server; those Java pieces live in :mod:`zabd.java.compat`.
"""
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence

from zabd.java.compat import AuthIds as AuthIds  # re-exported: callers import it from here
from zabd.java.compat import ipv4_acl, ipv4_bytes, java_decode, java_split
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import Perms
from zabd.jute.records import ACL, Id

ANYONE = Id("world", "anyone")
AUTH_IDS = Id("auth", "")
SUPER = Id("super", "")

# Shared constants: callers must not mutate them.
OPEN_ACL_UNSAFE: list[ACL] = [ACL(Perms.ALL, ANYONE)]
CREATOR_ALL_ACL: list[ACL] = [ACL(Perms.ALL, AUTH_IDS)]
READ_ACL_UNSAFE: list[ACL] = [ACL(Perms.READ, ANYONE)]

# Java's ":.*" in String.replaceAll: '.' stops at Java's line terminators.
_DIGEST_SECRET = re.compile(":[^\n\r\u0085\u2028\u2029]*")


def digest(user_password: str) -> str:
    """``user:base64(sha1(b"user:password"))``, DigestAuthenticationProvider.generateDigest."""
    user = user_password.split(":", 1)[0]
    # Java's getBytes(UTF_8) turns unpaired surrogates into '?'.
    raw = user_password.encode("utf-8", "replace")
    return user + ":" + base64.b64encode(hashlib.sha1(raw).digest()).decode("ascii")


class AuthProviders:
    """The server's authentication providers (3.8 defaults: ip and digest).

    :param super_digest: ``zookeeper.DigestAuthenticationProvider.superDigest``,
        the ``user:base64hash`` whose digest login also grants ``super``.
    :param digest_enabled: ``zookeeper.DigestAuthenticationProvider.enabled``.
    """

    def __init__(self, super_digest: str | None = None, digest_enabled: bool = True) -> None:
        self.super_digest = super_digest
        self.digest_enabled = digest_enabled

    def has_provider(self, scheme: str) -> bool:
        return scheme == "ip" or (scheme == "digest" and self.digest_enabled)

    def authenticate(self, scheme: str, auth: bytes, remote_ip: str) -> list[Id]:
        """The ids an AuthPacket adds to the connection, in ZooKeeper's order.

        :raises KeeperError: AUTHFAILED for a scheme without a provider.
        """
        if scheme == "digest" and self.digest_enabled:
            # Java decodes the packet with new String(bytes) (UTF-8 here).
            ident = digest(java_decode(auth))
            if self.super_digest is not None and ident == self.super_digest:
                return [SUPER, Id("digest", ident)]
            return [Id("digest", ident)]
        if scheme == "ip":
            return [Id("ip", remote_ip)]
        raise KeeperError(Code.AUTHFAILED)

    def is_authenticated_scheme(self, scheme: str) -> bool:
        """Whether ids of ``scheme`` count for the ``auth`` ACL placeholder.

        ``super`` has no provider in ZooKeeper, so it never counts; ``ip``'s
        provider says it is not an authenticated scheme.
        """
        return scheme == "digest" and self.digest_enabled

    def is_valid(self, ident: Id) -> bool:
        """Whether an ACL may name ``ident`` (world:anyone is always valid)."""
        scheme, value = ident.scheme, ident.id
        if not isinstance(value, str):
            return False
        if scheme == "world":
            return value == "anyone"
        if scheme == "digest" and self.digest_enabled:
            return len(java_split(value, ":")) == 2
        if scheme == "ip":
            return ipv4_acl(value) is not None
        return False

    def matches(self, acl_id: Id, client_id: Id) -> bool:
        """Whether the client id satisfies the ACL id (same scheme required)."""
        if acl_id.scheme == "world" and acl_id.id == "anyone":
            return True
        if acl_id.scheme != client_id.scheme:
            return False
        if acl_id.scheme == "digest" and self.digest_enabled:
            return acl_id.id == client_id.id
        if acl_id.scheme == "ip":
            return _ip_matches(acl_id.id, client_id.id)
        return False


def _ip_matches(acl_expr: str, client_addr: str) -> bool:
    acl = ipv4_acl(acl_expr)
    if acl is None:
        return False
    client = ipv4_bytes(client_addr)
    if client is None:
        return False
    network, bits = acl
    mask = ((1 << bits) - 1) << (32 - bits)
    return (int.from_bytes(client, "big") & mask) == (network & mask)


def normalize_acls(
    acls: Sequence[ACL] | None,
    auth_ids: Iterable[Id],
    providers: AuthProviders,
    path: str | None = None,
) -> list[ACL]:
    """The ACL list a create or setACL stores (PrepRequestProcessor.fixupACL).

    Duplicates are dropped first (keeping the first), then ``auth`` entries
    expand into one entry per authenticated id of the client, in the order of
    ``auth_ids``. Entries produced by that expansion are *not* deduplicated
    again, exactly as in ZooKeeper.

    A null (``None``) scheme or id, which kazoo sends for ``""``, fails where
    3.8 hits a NullPointerException: MARSHALLINGERROR.

    :raises KeeperError: INVALIDACL or MARSHALLINGERROR.
    """
    if not acls:
        raise KeeperError(Code.INVALIDACL, path)
    if len(acls) == 1 and isinstance(acls, list):
        ident = acls[0].id
        if ident.scheme == "world" and ident.id == "anyone":
            return acls  # the usual open ACL, as it came: the loop below would keep it too
    unique: list[ACL] = []
    for acl in acls:
        if _is_duplicate(acl, unique):
            continue
        unique.append(acl)
    out: list[ACL] = []
    for acl in unique:
        ident = acl.id
        scheme, value = ident.scheme, ident.id
        if scheme is None:
            raise KeeperError(Code.INVALIDACL, path)
        if scheme == "world" and value is None:
            raise KeeperError(Code.MARSHALLINGERROR, path)
        if scheme == "world" and value == "anyone":
            out.append(acl)
        elif scheme == "auth":
            before = len(out)
            for client_id in auth_ids:
                if providers.is_authenticated_scheme(client_id.scheme):
                    out.append(ACL(acl.perms, client_id))
            if len(out) == before:
                raise KeeperError(Code.INVALIDACL, path)
        elif not providers.has_provider(scheme):
            raise KeeperError(Code.INVALIDACL, path)
        elif value is None:
            raise KeeperError(Code.MARSHALLINGERROR, path)
        elif providers.is_valid(ident):
            out.append(acl)
        else:
            raise KeeperError(Code.INVALIDACL, path)
    if isinstance(acls, list) and len(out) == len(acls) and all(a is b for a, b in zip(out, acls)):
        return acls  # unchanged: keep sharing the list (see zabd.jute.schema)
    return out


def _is_duplicate(acl: ACL, seen: list[ACL]) -> bool:
    """``seen.contains(acl)`` with Java's generated equals, NPEs included."""
    for other in seen:
        if acl.perms != other.perms:
            continue
        if acl.id.scheme is None:
            raise KeeperError(Code.MARSHALLINGERROR)
        if acl.id.scheme != other.id.scheme:
            continue
        if acl.id.id is None:
            raise KeeperError(Code.MARSHALLINGERROR)
        if acl.id.id == other.id.id:
            return True
    return False


def check_acl(
    acls: Sequence[ACL],
    perm: int,
    auth_ids: Sequence[Id],
    providers: AuthProviders,
    skip: bool = False,
) -> None:
    """Raise NOAUTH unless the client's ids grant some bit of ``perm``.

    An empty ACL list and a ``super`` id pass everything; ``skip`` is
    ZooKeeper's skipACL setting.
    """
    if skip or not acls:
        return
    for client_id in auth_ids:
        if client_id.scheme == "super":
            return
    for acl in acls:
        if not acl.perms & perm:
            continue
        ident = acl.id
        if ident.scheme == "world" and ident.id == "anyone":
            return
        if not providers.has_provider(ident.scheme):
            continue
        for client_id in auth_ids:
            if client_id.scheme == ident.scheme and providers.matches(ident, client_id):
                return
    raise KeeperError(Code.NOAUTH)


def has_perm(
    acls: Sequence[ACL], perm: int, auth_ids: Sequence[Id], providers: AuthProviders, skip: bool = False
) -> bool:
    """:func:`check_acl` as a boolean."""
    try:
        check_acl(acls, perm, auth_ids, providers, skip)
    except KeeperError:
        return False
    return True


def mask_for_get_acl(acls: Sequence[ACL]) -> list[ACL]:
    """Hide digest secrets (``user:hash`` -> ``user:x``) as 3.8 getACL does without ADMIN."""
    out: list[ACL] = []
    for acl in acls:
        if acl.id.scheme == "digest":
            masked = _DIGEST_SECRET.sub(":x", acl.id.id)
            out.append(ACL(acl.perms, Id("digest", masked)))
        else:
            out.append(acl)
    return out


def acl_for_get(
    acls: Sequence[ACL], auth_ids: Sequence[Id], providers: AuthProviders, skip: bool = False
) -> list[ACL]:
    """The ACL list a getACL reply carries, with 3.8's two checks.

    Needs READ or ADMIN (NOAUTH otherwise); without ADMIN, digests are masked.
    """
    check_acl(acls, Perms.READ | Perms.ADMIN, auth_ids, providers, skip)
    if has_perm(acls, Perms.ADMIN, auth_ids, providers, skip):
        return list(acls)
    return mask_for_get_acl(acls)


def who_am_i(auth_ids: Iterable[Id], providers: AuthProviders | None = None) -> list[tuple[str, str]]:
    """``(scheme, user)`` pairs for a whoAmI reply (AuthUtil.getClientInfos).

    digest shows the user name only, ip shows the address, and schemes
    without a provider (``super``) show an empty user.
    """
    digest_enabled = providers is None or providers.digest_enabled
    out: list[tuple[str, str]] = []
    for ident in auth_ids:
        if ident.scheme == "digest" and digest_enabled:
            parts = java_split(ident.id, ":")
            out.append((ident.scheme, parts[0] if parts else ""))
        elif ident.scheme == "ip":
            out.append((ident.scheme, ident.id))
        else:
            out.append((ident.scheme, ""))
    return out
