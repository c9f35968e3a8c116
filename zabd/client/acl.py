# -*- test-case-name: tests.unit.test_client_api -*-
"""ACL helpers with kazoo's names, on zabd's own ACL and Id records."""
from __future__ import annotations

from zabd.core.acl import CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, digest
from zabd.jute.opcodes import Perms
from zabd.jute.records import ACL, Id

__all__ = ["ACL", "Id", "Permissions", "OPEN_ACL_UNSAFE", "CREATOR_ALL_ACL", "READ_ACL_UNSAFE",
           "make_acl", "make_digest_acl", "make_digest_acl_credential"]

Permissions = Perms


def make_acl(scheme: str, credential: str, read: bool = False, write: bool = False, create: bool = False,
             delete: bool = False, admin: bool = False, all: bool = False) -> ACL:  # noqa: A002 (kazoo's name)
    """One ACL entry from permission flags."""
    if all:
        perms = Perms.ALL
    else:
        perms = ((Perms.READ if read else 0) | (Perms.WRITE if write else 0) | (Perms.CREATE if create else 0)
                 | (Perms.DELETE if delete else 0) | (Perms.ADMIN if admin else 0))
    return ACL(perms, Id(scheme, credential))


def make_digest_acl_credential(username: str, password: str) -> str:
    """``user:base64(sha1(user:password))``, the id a digest ACL names."""
    return digest(f"{username}:{password}")


def make_digest_acl(username: str, password: str, read: bool = False, write: bool = False,
                    create: bool = False, delete: bool = False, admin: bool = False,
                    all: bool = False) -> ACL:  # noqa: A002
    return make_acl("digest", make_digest_acl_credential(username, password), read=read, write=write,
                    create=create, delete=delete, admin=admin, all=all)
