"""
The zoo.cfg reader.

zoo.cfg is a Java ``.properties`` file; ZooKeeper reads some keys itself and
turns the rest into ``zookeeper.<key>`` system properties.  zabd reads both
spellings (``snapCount`` and ``zookeeper.snapCount``) into one frozen
:class:`ZabdConfig`.  Every error names the file, line and key, so a bad
config fails at start with a message the operator can act on.  The
``.properties`` syntax is read by :mod:`zabd.java.properties` and each
key's type and range come from :mod:`zabd.config.keys`.
"""

from __future__ import annotations

import os
from dataclasses import replace

from zabd.config.keys import (
    COMMAND_NAMES,
    FIELDS,
    KEPT,
    QUORUM_FIELDS,
    BadValue,
    canonical_key,
    four_letter_whitelist,
    kept_reason,
    server_entry,
)
from zabd.config.overload import overload_settings
from zabd.config.security import inert_reason, is_security_key, security_settings
from zabd.config.zoocfg_ensemble import dynamic_membership, with_ensemble, with_last_seen
from zabd.config.errors import ConfigError, config_error, read_properties
from zabd.config.dynamic import decoded, next_file_path
from zabd.config.model import DEFAULT_FOUR_LETTER_WORDS, ZabdConfig, default_config

__all__ = [
    "DEFAULT_FOUR_LETTER_WORDS", "ConfigError", "ZabdConfig", "default_config", "load_config", "parse_config",
    "read_properties",
]

def parse_config(text: str, source: str = "zoo.cfg", myid: str | None = None,
                 dynamic_text: str | None = None, next_text: str | None = None) -> ZabdConfig:
    """
    Build a :class:`ZabdConfig` from zoo.cfg text.

    :param text: the file contents.
    :param source: file name shown in error messages.
    :param myid: the text of ``<dataDir>/myid``, None if there is no such file;
        a quorum peer needs it (:func:`load_config` reads it).
    :param dynamic_text: the text of the ``dynamicConfigFile``, which holds the
        membership when zoo.cfg names one (:func:`load_config` reads it).
    :param next_text: the text of ``<zoo.cfg>.dynamic.next``, None if there is
        none: a proposed config 3.8 reads back as the last seen one.
    :raises ConfigError: naming the key and line (or the file) at fault.
    """
    entries = read_properties(text, source)
    latest: dict[str, tuple[str, str, int]] = {}  # canonical -> (as written, value, line)
    for key, value, line in entries:
        latest[canonical_key(key)] = (key, value, line)

    values: dict[str, object] = {}
    quorum_values: dict[str, object] = {}
    servers: dict[int, str] = {}
    unknown: list[str] = []
    ignored: list[tuple[str, str]] = []
    warnings: list[str] = []
    for name, (written, value, line) in latest.items():
        try:
            if name in FIELDS:
                attribute, convert = FIELDS[name]
                values[attribute] = convert(value)
            elif name in QUORUM_FIELDS:
                attribute, convert = QUORUM_FIELDS[name]
                quorum_values[attribute] = convert(value)
            elif name.startswith("server.") and written == name:  # 3.8 reads no zookeeper.server.N
                sid, address = server_entry(name, value)
                servers[sid] = address
            elif is_security_key(name):
                reason = inert_reason(name)
                if reason is not None:
                    ignored.append((written, reason))
            elif name.startswith("server.") or kept_reason(name) is None:
                unknown.append(written)
            else:
                check = KEPT[name][0] if name in KEPT else None
                if check is not None:
                    check(value)
                reason = kept_reason(name) or ""
                if reason.startswith("ignored"):
                    ignored.append((written, reason))
        except BadValue as e:
            raise config_error(source, written, line, str(e)) from None

    config = ZabdConfig(**values, servers=servers)  # type: ignore[arg-type]
    if "dataDir" not in latest:
        raise ConfigError(f"{source}: dataDir is not set", "dataDir", source, None)
    if config.snap_retain_count < 3:
        written, _, line = latest["autopurge.snapRetainCount"]
        warnings.append(f"{source} line {line}: {written}: "
                        f"{config.snap_retain_count} is below the minimum 3; using 3")
        config = replace(config, snap_retain_count=3)
    if config.min_session_timeout_ms > config.max_session_timeout_ms:
        blamed = "minSessionTimeout" if "minSessionTimeout" in latest else "maxSessionTimeout"
        written, _, line = latest[blamed]
        raise config_error(source, written, line,
                     f"minSessionTimeout ({config.min_session_timeout_ms}) must not be "
                     f"larger than maxSessionTimeout ({config.max_session_timeout_ms})")
    if "4lw.commands.whitelist" in latest:
        written, value, line = latest["4lw.commands.whitelist"]
        words = four_letter_whitelist(value, config.read_only_mode_enabled)
        strays = sorted({n.strip().lower() for n in value.split(",")} - COMMAND_NAMES - {"*", ""})
        warnings += [f"{source} line {line}: {written}: ignoring unknown command {name!r}"
                     for name in strays]
    else:
        words = DEFAULT_FOUR_LETTER_WORDS
    dynamic = dynamic_membership(config, entries, latest, source, dynamic_text)
    config = with_ensemble(config, entries, latest, quorum_values, myid, source, warnings, dynamic)
    if config.ensemble is not None and config.dynamic_config_file and next_text is not None:
        config = with_last_seen(config, next_text, source, warnings)
    has_client_port = "clientPort" in latest or (
        config.ensemble is not None and config.ensemble.client_address is not None)
    security = security_settings(latest, source, has_client_port, config.ensemble is not None)
    overload = overload_settings(latest, source, warnings)
    return replace(
        config,
        four_letter_words=words,
        raw=tuple((key, value) for key, value, _ in entries),
        unknown_keys=tuple(unknown),
        ignored_keys=tuple(ignored),
        warnings=tuple(warnings),
        security=security,
        overload=overload,
    )


def load_config(path: str) -> ZabdConfig:
    """
    Read and parse a zoo.cfg file, and the myid file in its dataDir if there is one.

    :param path: the file.
    :raises ConfigError: if it cannot be read or is invalid.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}", None, path, None) from None
    text = decoded(data)
    # A quorum peer's id is in <dataDir>/myid; 3.8 ignores the path unless it is a file.
    data_dirs = [v for k, v, _ in read_properties(text, path) if canonical_key(k) == "dataDir"]
    myid_path = os.path.join(data_dirs[-1], "myid") if data_dirs else ""
    myid = None
    if os.path.isfile(myid_path):
        try:
            with open(myid_path, "rb") as f:
                myid = f.read().decode("utf-8", "replace")
        except OSError as e:
            raise ConfigError(f"{myid_path}: cannot read myid: {e.strerror}",
                              None, myid_path, None) from None
    dynamic_text = next_text = None
    dynamic_paths = [v for k, v, _ in read_properties(text, path)
                     if canonical_key(k) == "dynamicConfigFile"]
    if dynamic_paths:
        try:
            with open(dynamic_paths[-1], "rb") as f:
                dynamic_text = decoded(f.read())
        except OSError as e:
            raise ConfigError(f"{dynamic_paths[-1]}: cannot read dynamic config: {e.strerror}",
                              None, dynamic_paths[-1], None) from None
        if os.path.exists(next_file_path(path)):
            try:
                with open(next_file_path(path), "rb") as f:
                    next_text = decoded(f.read())
            except OSError:
                pass  # as 3.8: an unreadable .next file leaves no last seen config
    config = parse_config(text, source=path, myid=myid, dynamic_text=dynamic_text, next_text=next_text)
    return replace(config, config_file=os.path.abspath(path))
