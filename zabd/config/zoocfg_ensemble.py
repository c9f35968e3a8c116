"""
The ensemble part of zoo.cfg: the members, from zoo.cfg or its dynamicConfigFile, and the last seen config.

3.8's QuorumPeerConfig rules, applied after ``config.py`` has read the
single keys; every refusal names the file, line and key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from zabd.config.ensemble import EnsembleError, QuorumOptions, java_host_string, verifier_from_entries, version_hex
from zabd.config.ensemble_build import build_ensemble
from zabd.config.errors import ConfigError, config_error, read_properties
from zabd.config.keys import canonical_key
from zabd.config.model import ZabdConfig
from zabd.config.dynamic import DynamicFileError, dynamic_file_entries, next_file_path


def with_ensemble(config: ZabdConfig, entries: list[tuple[str, str, int]],
                   latest: dict[str, tuple[str, str, int]], quorum_values: dict[str, object],
                   myid: str | None, source: str, warnings: list[str],
                   dynamic: DynamicMembership | None) -> ZabdConfig:
    """``config`` with its ensemble (3.8's QuorumPeerConfig rules), or as it is if standalone."""
    options = QuorumOptions(**quorum_values)  # type: ignore[arg-type]
    static_client = ((java_host_string(config.client_port_address or "0.0.0.0"), config.client_port)
                     if "clientPort" in latest else None)

    def at(key: str, problem: str) -> ConfigError:  # names the key as written, and its line
        if dynamic is not None and key in dynamic.lines:
            return config_error(dynamic.path, key, dynamic.lines[key], problem)
        written, _, line = latest.get(canonical_key(key), (key, "", None))
        return config_error(source, written, line, problem)

    try:
        ensemble, notes = build_ensemble(
            [(key, value) for key, value, _ in entries], options,
            standalone_enabled=config.standalone_enabled, myid=myid,
            myid_path=os.path.join(config.data_dir, "myid"), static_client=static_client,
            dynamic=None if dynamic is None else dynamic.entries)
    except EnsembleError as e:
        if e.key is not None:
            raise at(e.key, e.problem) from None
        file = e.file or source
        raise ConfigError(f"{file}: {e.problem}", None, file, None) from None
    warnings += [f"{source}: {note}" if key is None else str(at(key, note)) for key, note in notes]
    if ensemble is None:
        return config
    client = ensemble.client_address  # the server line's client address beats clientPort
    port, host = (config.client_port, config.client_port_address) if client is None else (
        client[1], None if client[0] in ("0.0.0.0", "0:0:0:0:0:0:0:0") else client[0])
    return replace(config, ensemble=ensemble, server_id=ensemble.myid, client_port=port,
                   client_port_address=host)


@dataclass(frozen=True, slots=True)
class DynamicMembership:
    """The dynamicConfigFile's entries (version last), and the line of each key."""

    path: str
    entries: list[tuple[str, str]]
    lines: dict[str, int]


def dynamic_membership(config: ZabdConfig, entries: list[tuple[str, str, int]],
                        latest: dict[str, tuple[str, str, int]], source: str,
                        dynamic_text: str | None) -> DynamicMembership | None:
    """The membership from the dynamicConfigFile, None without one (3.8's parse)."""
    path = config.dynamic_config_file
    if path is None:
        return None
    for key, _, line in entries:  # 3.8 tests the keys as written, with these prefixes
        if key.startswith(("server.", "group", "weight")):
            raise config_error(source, key, line, "must be in the separate dynamic config file "
                                            f"{path} when dynamicConfigFile is set")
    if dynamic_text is None:
        written, _, line = latest["dynamicConfigFile"]
        raise config_error(source, written, line, f"{path} was not read")
    try:
        members, lines = dynamic_file_entries(dynamic_text, path)
    except DynamicFileError as e:
        where = path if e.line is None else f"{path} line {e.line}"
        raise ConfigError(f"{where}: {e.problem}", None, path, e.line) from None
    return DynamicMembership(path, members, lines)


def with_last_seen(config: ZabdConfig, next_text: str, source: str,
                    warnings: list[str]) -> ZabdConfig:
    """The config with the proposed membership of ``.dynamic.next``, if it is newer."""
    assert config.ensemble is not None
    next_path = next_file_path(source)
    try:
        last_seen = verifier_from_entries((k, v) for k, v, _ in read_properties(next_text, next_path))
    except ValueError as e:
        raise ConfigError(f"{next_path}: {e}", None, next_path, None) from None
    # 3.8 takes it even when it is older than the committed config, and then
    # keeps a stale last seen config; zabd ignores a stale file.
    if last_seen.version <= config.ensemble.verifier.version:
        warnings.append(f"{next_path}: ignored: its version {version_hex(last_seen.version)} "
                        f"is not newer than the committed {version_hex(config.ensemble.verifier.version)}")
        return config
    return replace(config, ensemble=replace(config.ensemble, last_seen=last_seen))
