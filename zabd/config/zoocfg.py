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
from dataclasses import dataclass, field, replace

from zabd.config.ensemble import EnsembleConfig
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
from zabd.config.overload_settings import OverloadSettings
from zabd.tls.settings import SecuritySettings
from zabd.config.zoocfg_ensemble import dynamic_membership, with_ensemble, with_last_seen
from zabd.config.errors import ConfigError, config_error, read_properties
from zabd.config.dynamic import decoded, next_file_path

__all__ = ["ConfigError", "ZabdConfig", "default_config", "load_config", "parse_config", "read_properties"]

#: zabd's 4lw whitelist when the key is absent (ZooKeeper's is srvr only).
DEFAULT_FOUR_LETTER_WORDS: frozenset[str] = frozenset({"srvr", "ruok", "mntr", "isro", "stat"})


@dataclass(frozen=True, slots=True)
class ZabdConfig:
    """
    Everything zabd reads from zoo.cfg, with ZooKeeper's defaults.

    Times are milliseconds.  ``data_log_dir`` left empty means ``data_dir``.
    ``ensemble`` is None for a standalone server; for a quorum peer it holds
    myid, the members and the peer settings, and ``server_id``, ``client_port``
    and ``client_port_address`` follow it.  ``servers`` keeps each
    ``server.N`` value as written.  ``raw`` keeps every (key, value) in file
    order; ``unknown_keys`` the keys zabd does not understand (logged, never
    fatal); ``warnings`` values that were adjusted as ZooKeeper adjusts them.
    """

    tick_time: int = 3000
    data_dir: str = "./zabd-data"
    data_log_dir: str = ""
    client_port: int = 2181
    client_port_address: str | None = None
    max_client_cnxns: int = 60
    min_session_timeout: int = -1
    max_session_timeout: int = -1
    four_letter_words: frozenset[str] = DEFAULT_FOUR_LETTER_WORDS
    jute_max_buffer: int = 0xFFFFF
    extended_types_enabled: bool = False
    super_digest: str | None = None
    skip_acl: bool = False
    server_id: int = 1
    init_limit: int = 10
    sync_limit: int = 5
    snap_count: int = 100000
    pre_alloc_size_kb: int = 65536
    force_sync: bool = True
    snap_retain_count: int = 3
    purge_interval_hours: int = 1
    global_outstanding_limit: int = 1000
    container_check_interval_ms: int = 60000
    container_max_per_minute: int = 10000
    digest_enabled: bool = True
    reconfig_enabled: bool = False
    standalone_enabled: bool = True
    admin_enable_server: bool = True
    admin_server_address: str = "127.0.0.1"
    admin_server_port: int = 8080
    admin_command_url: str = "/commands"
    read_only_mode_enabled: bool = False
    local_sessions_enabled: bool = False
    local_sessions_upgrading_enabled: bool = False
    enforce_quota: bool = False
    client_port_listen_backlog: int = -1
    max_cnxns: int = 0
    dynamic_config_file: str | None = None
    #: ZooKeeper's Prometheus provider class; zabd serves /metrics itself either way.
    metrics_provider_class: str | None = None
    #: 127.0.0.1 unless set, like the admin server (ZooKeeper's is 0.0.0.0).
    metrics_http_host: str = "127.0.0.1"
    #: A second listener for /metrics (ZooKeeper's provider: 7000); None: /metrics on the admin port only.
    metrics_http_port: int | None = None
    #: The zoo.cfg this came from (reconfig rewrites it and writes dynamic files beside it).
    config_file: str | None = None
    servers: dict[int, str] = field(default_factory=dict)
    ensemble: EnsembleConfig | None = None
    #: The TLS listeners and stores; all off unless zoo.cfg asks.
    security: SecuritySettings = field(default_factory=SecuritySettings)
    #: The request throttler, the connection throttle and the large-request limits; all off unless asked.
    overload: OverloadSettings = field(default_factory=OverloadSettings)
    #: ``DigestAuthenticationProvider.enabled``: false turns digest logins and ACLs off.
    digest_auth_enabled: bool = True
    raw: tuple[tuple[str, str], ...] = ()
    unknown_keys: tuple[str, ...] = ()
    #: Keys 3.8 knows that zabd leaves without effect, with why (logged at startup).
    ignored_keys: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.data_log_dir:
            object.__setattr__(self, "data_log_dir", self.data_dir)

    def setting(self, key: str, default: str) -> str:
        """The last value given for ``key`` (with or without ``zookeeper.``), else ``default``."""
        value = default
        for written, given in self.raw:
            if canonical_key(written) == key:
                value = given
        return value

    @property
    def min_session_timeout_ms(self) -> int:
        """The effective minimum session timeout (2 ticks unless set)."""
        return self.tick_time * 2 if self.min_session_timeout == -1 else self.min_session_timeout

    @property
    def max_session_timeout_ms(self) -> int:
        """The effective maximum session timeout (20 ticks unless set)."""
        return self.tick_time * 20 if self.max_session_timeout == -1 else self.max_session_timeout

    def conf_lines(self, data_dir_size: int, log_dir_size: int) -> list[tuple[str, str]]:
        """
        The ``conf`` four-letter word's lines, in ZooKeeper 3.8's order.

        ZooKeeper prints the absolute ``version-2`` directories and, for a
        standalone server, ``serverId=0``; zabd prints its own ``server_id``.
        A quorum peer adds its quorum lines; see :meth:`conf_text` for the
        whole output, which ends with the membership.

        :param data_dir_size: bytes in the snapshot directory.
        :param log_dir_size: bytes in the log directory.
        """
        def version_dir(d: str) -> str:
            return os.path.join(os.path.abspath(d), "version-2")
        security = self.security
        return [
            ("clientPort", str(self.client_port if security.plain_client_port else -1)),
            ("secureClientPort", str(security.secure_client_port or -1)),
            ("dataDir", version_dir(self.data_dir)),
            ("dataDirSize", str(data_dir_size)),
            ("dataLogDir", version_dir(self.data_log_dir)),
            ("dataLogSize", str(log_dir_size)),
            ("tickTime", str(self.tick_time)),
            ("maxClientCnxns", str(self.max_client_cnxns)),
            ("minSessionTimeout", str(self.min_session_timeout_ms)),
            ("maxSessionTimeout", str(self.max_session_timeout_ms)),
            ("clientPortListenBacklog", str(self.client_port_listen_backlog)),
            ("serverId", str(self.server_id)),
        ] + (self.ensemble.conf_lines() if self.ensemble else [])

    def conf_text(self, data_dir_size: int, log_dir_size: int) -> str:
        """The whole ``conf`` reply: a quorum peer ends it with the config text, no newline."""
        lines = "".join(f"{k}={v}\n" for k, v in self.conf_lines(data_dir_size, log_dir_size))
        return lines + (self.ensemble.conf_membership() if self.ensemble else "")


def default_config() -> ZabdConfig:
    """The configuration a newcomer runs with no zoo.cfg: loopback only."""
    return ZabdConfig(tick_time=2000, data_dir="./zabd-data", client_port_address="127.0.0.1")


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
