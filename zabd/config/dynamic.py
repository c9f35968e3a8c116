# -*- test-case-name: tests.unit.test_dynamic_config -*-
"""ZooKeeper 3.8's dynamic config files next to zoo.cfg, written and read as 3.8 does.

A peer with reconfigEnabled keeps its membership in
``<zoo.cfg>.dynamic.<hex version>`` (the ``server.N`` lines sorted as
strings, no ``version`` line, no newline at the end), and points zoo.cfg at
it with a ``dynamicConfigFile=`` line, rewriting zoo.cfg without its server,
group, weight and peerType lines (and without clientPort/clientPortAddress
once its own server line carries a client address). A proposed config that
is not committed yet sits in ``<zoo.cfg>.dynamic.next``, version included,
and goes away when a config of that version is committed. The first time a
peer starts from a zoo.cfg that still holds server lines, 3.8 copies it to
``<zoo.cfg>.bak``.

Every file is written whole to ``<name>.tmp``, fsynced and renamed, as 3.8's
AtomicFileWritingIdiom does; zabd also fsyncs the directory. The I/O blocks:
the callers run it where a short disk wait is acceptable.

Where zabd differs: 3.8 writes zoo.cfg values back unescaped, so a value with
a backslash reads back differently; zabd escapes it. 3.8 erases every key
starting with ``clientPort`` (clientPortListenBacklog too); zabd erases only
clientPort and clientPortAddress.
"""
from __future__ import annotations

import os

from zabd.config.ensemble import (
    QuorumHierarchical,
    QuorumMaj,
    QuorumVerifier,
    properties_key_order,
    verifier_from_entries,
)
from zabd.membership.verifier import parse_version, version_hex
from zabd.java.properties import PropertiesSyntaxError, parse_properties
from zabd.storage.layout import fsync_directory

DYNAMIC_SUFFIX = ".dynamic."
NEXT_SUFFIX = ".dynamic.next"
BACKUP_SUFFIX = ".bak"
TEMP_SUFFIX = ".tmp"  # AtomicFileOutputStream's

# Keys 3.8 leaves out when it rewrites zoo.cfg (prefixes, as it tests them).
_MEMBERSHIP_PREFIXES = ("server.", "group", "weight", "dynamicConfigFile", "peerType")
_CLIENT_KEYS = ("clientPort", "clientPortAddress")


def dynamic_file_path(config_path: str, version: int) -> str:
    """``<zoo.cfg>.dynamic.<version in hex>``, where 3.8 keeps a committed config."""
    return config_path + DYNAMIC_SUFFIX + version_hex(version)


def next_file_path(config_path: str) -> str:
    """``<zoo.cfg>.dynamic.next``, where 3.8 keeps the last proposed config."""
    return config_path + NEXT_SUFFIX


def version_from_file_name(path: str) -> int | None:
    """
    The version a dynamic file's name gives (3.8's getVersionFromFilename).

    :returns: what follows the last ``.`` read as hex, or None if it is not
        (then 3.8 takes the version as 0).
    """
    dot = path.rfind(".")
    if dot < 0:
        return None
    try:
        return parse_version(path[dot + 1:])
    except ValueError:
        return None


class DynamicFileError(ValueError):
    """
    A dynamic config file 3.8 refuses to start with.

    :param problem: what is wrong.
    :param line: the 1-based line at fault, if one is.
    """

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


def dynamic_file_entries(text: str, path: str) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """
    A ``dynamicConfigFile``'s entries as 3.8 reads them at start.

    :param text: the file's text.
    :param path: its name, whose suffix gives the version.
    :returns: (key, value) in file order with ``version`` (from the name, when
        it has one) last, for :func:`zabd.ensemble.build_ensemble`; and the
        line of each key, for messages.
    :raises DynamicFileError: on a ``version`` line, a key that is not
        membership, or a malformed escape.
    """
    try:
        parsed = parse_properties(text)
    except PropertiesSyntaxError as e:
        raise DynamicFileError(e.problem, e.line) from None
    lines: dict[str, int] = {}
    for key, _, line in parsed:
        if key == "version":
            raise DynamicFileError("dynamic file shouldn't have version inside", line)
        if not key.startswith(("server.", "group", "weight")):
            raise DynamicFileError(f"Unrecognised parameter: {key}", line)
        lines.setdefault(key, line)
    entries = [(key, value) for key, value, _ in parsed]
    version = version_from_file_name(path)
    if version is not None:  # 3.8 adds it after loading, so it comes last
        entries.append(("version", version_hex(version)))
    return entries, lines


def dynamic_file_text(verifier: QuorumVerifier, *, keep_version: bool) -> bytes:
    """
    A dynamic file's bytes: the config text's ``key=value`` lines sorted, joined by newlines.

    :param keep_version: True for ``.dynamic.next`` (3.8 keeps the
        ``version=`` line there); False for ``.dynamic.<version>``.
    """
    entries = parse_properties(verifier.config_text().decode("utf-8"))
    lines = sorted({key: f"{key}={value}" for key, value, _ in entries
                    if keep_version or not key.startswith("version")}.values())
    return "\n".join(lines).encode("utf-8")


def edited_static_text(static_text: str, dynamic_path: str, *, erase_client_address: bool) -> str:
    """
    zoo.cfg as 3.8's editStaticConfig rewrites it.

    Every entry in ``java.util.Properties`` order, the last value of each key,
    membership keys dropped, then ``dynamicConfigFile=<canonical path>``.

    :param static_text: zoo.cfg as it is.
    :param dynamic_path: the dynamic file it should point at.
    :param erase_client_address: drop clientPort and clientPortAddress too
        (this server's line in the new config carries a client address).
    """
    settings: dict[str, str] = {}
    for key, value, _ in parse_properties(static_text):
        settings[key] = value
    lines = []
    for key in properties_key_order(settings):
        if key.startswith(_MEMBERSHIP_PREFIXES) or (erase_client_address and key in _CLIENT_KEYS):
            continue
        lines.append(f"{_escaped(key, is_key=True)}={_escaped(settings[key], is_key=False)}\n")
    lines.append(f"dynamicConfigFile={os.path.realpath(dynamic_path)}\n")
    return "".join(lines)


def erases_client_address(verifier: QuorumVerifier, myid: int) -> bool:
    """Whether zoo.cfg loses its client keys (3.8's needEraseClientInfoFromStaticConfig)."""
    me = verifier.all_members.get(myid)
    return me is not None and me.client_addr is not None and not me.client_addr_from_static


def write_committed_config(config_path: str, verifier: QuorumVerifier, myid: int) -> str:
    """
    Store a committed config as 3.8's setQuorumVerifier(qv, true) does.

    Writes ``<zoo.cfg>.dynamic.<version>`` and points zoo.cfg at it. Removing
    ``.dynamic.next`` is :func:`remove_next_config`'s job: 3.8 does it only
    when the committed version is the last one seen.

    :returns: the dynamic file's path.
    :raises OSError: if a file cannot be read or written.
    """
    dynamic_path = dynamic_file_path(config_path, verifier.version)
    write_atomically(dynamic_path, dynamic_file_text(verifier, keep_version=False))
    with open(config_path, "rb") as f:
        static_text = decoded(f.read())
    edited = edited_static_text(static_text, dynamic_path,
                                erase_client_address=erases_client_address(verifier, myid))
    write_atomically(config_path, edited.encode("utf-8"))
    return dynamic_path


def write_next_config(config_path: str, verifier: QuorumVerifier) -> str:
    """Store the last proposed config in ``.dynamic.next`` (3.8's setLastSeenQuorumVerifier)."""
    path = next_file_path(config_path)
    write_atomically(path, dynamic_file_text(verifier, keep_version=True))
    return path


def remove_next_config(config_path: str) -> None:
    """Delete ``.dynamic.next`` if it is there."""
    try:
        os.remove(next_file_path(config_path))
    except FileNotFoundError:
        return
    fsync_directory(os.path.dirname(os.path.abspath(config_path)))


def backup_static_config(config_path: str) -> str:
    """
    Copy zoo.cfg to ``zoo.cfg.bak``, as 3.8 does at start when zoo.cfg still
    holds the membership (no dynamicConfigFile) of a quorum peer with reconfigEnabled.
    """
    with open(config_path, "rb") as f:
        data = f.read()
    backup = config_path + BACKUP_SUFFIX
    write_atomically(backup, data)
    return backup


def read_next_config(config_path: str) -> QuorumMaj | QuorumHierarchical | None:
    """
    The last proposed config from ``.dynamic.next``, None if there is none.

    :raises ValueError: if the file holds a config 3.8 would refuse.
    :raises OSError: if it exists but cannot be read.
    """
    try:
        with open(next_file_path(config_path), "rb") as f:
            text = decoded(f.read())
    except FileNotFoundError:
        return None
    return verifier_from_entries((key, value) for key, value, _ in parse_properties(text))


def decoded(data: bytes) -> str:
    """A config file's text: UTF-8, else ISO-8859-1 (what Java's Properties.load assumes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def write_atomically(path: str, data: bytes) -> None:
    """Write ``path`` whole through ``<path>.tmp``, fsynced and renamed; no .tmp is left on failure."""
    temp_path = path + TEMP_SUFFIX
    try:
        with open(temp_path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_path, path)
    except OSError:
        try:
            os.remove(temp_path)
        except OSError:
            pass
        raise
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def _escaped(text: str, *, is_key: bool) -> str:
    # Only what would read back otherwise: 3.8 writes text raw, which is the same for
    # everything but backslashes, line breaks and (in keys) separators.
    out = []
    for index, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[ch])
        elif is_key and (ch in "=: " or (index == 0 and ch in "#!")):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)
