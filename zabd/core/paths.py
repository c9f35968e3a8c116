# -*- test-case-name: tests.unit.test_paths -*-
"""Znode path validation and manipulation (ZooKeeper 3.8's PathUtils rules).

Paths are Python ``str``. ZooKeeper validates Java ``char``s (UTF-16 code
units), so a code point above U+FFFF arrives there as a surrogate pair in
U+D800..U+DFFF, which is a forbidden range: such characters are rejected
here too.
"""
from __future__ import annotations

import re

from zabd.jute.errors import Code, KeeperError

ROOT = "/"
ZOOKEEPER = "/zookeeper"
QUOTA = "/zookeeper/quota"
CONFIG = "/zookeeper/config"

# ZooKeeper's DataTree.isSpecialPath: these nodes can never be deleted.
SPECIAL_PATHS = frozenset((ROOT, ZOOKEEPER, QUOTA, CONFIG))

# Characters ZooKeeper forbids: NUL and the C0 controls, DEL and the C1
# controls, surrogates and the private use area, U+FFF0..U+FFFF, and (being
# surrogate pairs in Java) everything outside the BMP. For an ASCII path,
# str.isprintable() is exactly "none of \x00-\x1f or \x7f", and much faster.
_FORBIDDEN_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\U0010ffff]")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|\Z)")

_INT32 = 1 << 32


def validate_path(path: str | None) -> str:
    """Return ``path`` if it is a valid znode path, else raise BADARGUMENTS.

    :raises KeeperError: ``Code.BADARGUMENTS`` carrying ``path``.
    """
    if not path or path[0] != "/":
        raise KeeperError(Code.BADARGUMENTS, path)
    if len(path) == 1:
        return path
    if (
        path[-1] == "/"
        or "//" in path
        or ("/." in path and _DOT_SEGMENT.search(path) is not None)
        or not (path.isprintable() if path.isascii() else _FORBIDDEN_CHAR.search(path) is None)
    ):
        raise KeeperError(Code.BADARGUMENTS, path)
    return path


def is_valid_path(path: str | None) -> bool:
    """Whether :func:`validate_path` would accept ``path``."""
    try:
        validate_path(path)
    except KeeperError:
        return False
    return True


def parent_or_root(path: str) -> str:
    """The parent of a path, and the root for the root itself (watch triggers walk up to it)."""
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else ROOT


def parent_of(path: str) -> str:
    """The parent of a valid non-root path: ``/a`` -> ``/``, ``/a/b`` -> ``/a``.

    :raises ValueError: for the root, which has no parent.
    """
    cut = path.rfind("/")
    if cut < 0 or path == ROOT:
        raise ValueError(f"{path!r} has no parent")
    return path[:cut] if cut else ROOT


def basename(path: str) -> str:
    """The last segment of a path (``""`` for the root)."""
    return path[path.rfind("/") + 1 :]


def join(parent: str, child: str) -> str:
    """The path of ``child`` (a single segment) under ``parent``."""
    if parent == ROOT:
        return ROOT + child
    return f"{parent}/{child}"


def split(path: str) -> tuple[str, str]:
    """``(parent_of(path), basename(path))`` in one step."""
    cut = path.rfind("/")
    if cut < 0 or path == ROOT:
        raise ValueError(f"{path!r} has no parent")
    return (path[:cut] if cut else ROOT), path[cut + 1 :]


def ancestors(path: str) -> list[str]:
    """Every proper ancestor of ``path``, nearest first, ending with ``/``."""
    out: list[str] = []
    while path != ROOT:
        cut = path.rfind("/")
        path = path[:cut] if cut > 0 else ROOT
        out.append(path)
    return out


def sequential_name(path: str, counter: int) -> str:
    """``path`` plus the sequence suffix ZooKeeper derives from ``counter``.

    The counter is the parent's stored cversion, a Java int: it is wrapped to
    a signed 32-bit value and printed as Java's ``%010d`` does (zero padded to
    ten characters including a minus sign: ``-1`` -> ``-000000001``).
    """
    counter &= _INT32 - 1
    if counter >= _INT32 >> 1:
        counter -= _INT32
    return f"{path}{counter:010d}"


def is_reserved(path: str) -> bool:
    """True for ``/zookeeper`` and everything below it.

    ZooKeeper 3.8 itself only refuses to delete :data:`SPECIAL_PATHS`; it
    lets clients create and delete their own nodes under ``/zookeeper`` when
    the (open) ACL allows. Use :func:`is_special` for that exact rule.
    """
    return path == ZOOKEEPER or path.startswith("/zookeeper/")


def is_special(path: str) -> bool:
    """ZooKeeper's DataTree.isSpecialPath: ``/``, ``/zookeeper``, its quota and config nodes."""
    return path in SPECIAL_PATHS
