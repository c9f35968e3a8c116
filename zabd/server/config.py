"""
The zoo.cfg reader.

zoo.cfg is a Java ``.properties`` file; ZooKeeper reads some keys itself and
turns the rest into ``zookeeper.<key>`` system properties.  zabd reads both
spellings (``snapCount`` and ``zookeeper.snapCount``) into one frozen
:class:`ZabdConfig`.  Every error names the file, line and key, so a bad
config fails at start with a message the operator can act on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Callable

from zabd.server.fourletter import COMMAND_NAMES

#: zabd's 4lw whitelist when the key is absent (ZooKeeper's is srvr only).
DEFAULT_FOUR_LETTER_WORDS: frozenset[str] = frozenset({"srvr", "ruok", "mntr", "isro", "stat"})

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


class ConfigError(Exception):
    """
    A configuration that zabd refuses to start with.

    :param message: full text, ``<source> line <n>: <key>: <problem>``.
    :param key: the key at fault, if any.
    :param source: the file name shown to the operator.
    :param line: 1-based line number, if the problem has one.
    """

    def __init__(self, message: str, key: str | None = None,
                 source: str = "zoo.cfg", line: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.source = source
        self.line = line


@dataclass(frozen=True, slots=True)
class ZabdConfig:
    """
    Everything zabd reads from zoo.cfg, with ZooKeeper's defaults.

    Times are milliseconds.  ``data_log_dir`` left empty means ``data_dir``.
    ``raw`` keeps every (key, value) in file order; ``unknown_keys`` the keys
    zabd does not understand (logged, never fatal); ``warnings`` values that
    were adjusted as ZooKeeper adjusts them.
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
    client_port_listen_backlog: int = -1
    max_cnxns: int = 0
    servers: dict[int, str] = field(default_factory=dict)
    raw: tuple[tuple[str, str], ...] = ()
    unknown_keys: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.data_log_dir:
            object.__setattr__(self, "data_log_dir", self.data_dir)

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

        :param data_dir_size: bytes in the snapshot directory.
        :param log_dir_size: bytes in the log directory.
        """
        def version_dir(d: str) -> str:
            return os.path.join(os.path.abspath(d), "version-2")
        return [
            ("clientPort", str(self.client_port)),
            ("secureClientPort", "-1"),
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
        ]


def default_config() -> ZabdConfig:
    """The configuration a newcomer runs with no zoo.cfg: loopback only."""
    return ZabdConfig(tick_time=2000, data_dir="./zabd-data", client_port_address="127.0.0.1")


# ---------------------------------------------------------------- .properties

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WHITESPACE = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
# Java's String.trim(): every char up to and including space.
_TRIM = "".join(chr(i) for i in range(33))


class _BadValue(Exception):
    """A value that does not convert; the caller adds key and line."""


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch != "\\" or i == len(text):
            out.append(ch)
            continue
        ch = text[i]
        i += 1
        if ch == "u":
            code = text[i:i + 4]
            if len(code) != 4 or not all(c in "0123456789abcdefABCDEF" for c in code):
                raise _BadValue("malformed \\uxxxx escape")
            out.append(chr(int(code, 16)))
            i += 4
        else:
            out.append(_ESCAPES.get(ch, ch))
    return "".join(out)


def _odd_trailing_backslashes(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def read_properties(text: str, source: str = "zoo.cfg") -> list[tuple[str, str, int]]:
    """
    Split Java ``.properties`` text into (key, value, line) in file order.

    Handles ``=``, ``:`` and whitespace separators, ``#``/``!`` comments,
    backslash continuations and escapes; keys and values are trimmed as
    ZooKeeper trims them.

    :param text: the file contents.
    :param source: file name for error messages.
    :raises ConfigError: on a malformed ``\\u`` escape.
    """
    lines = _LINE_BREAK.split(text)
    entries: list[tuple[str, str, int]] = []
    index = 0
    while index < len(lines):
        number = index + 1
        logical = lines[index].lstrip(_WHITESPACE)
        index += 1
        if not logical or logical[0] in "#!":
            continue
        while _odd_trailing_backslashes(logical) and index < len(lines):
            logical = logical[:-1] + lines[index].lstrip(_WHITESPACE)
            index += 1
        if _odd_trailing_backslashes(logical):
            logical = logical[:-1]
        end = 0
        while end < len(logical) and logical[end] not in "=:" + _WHITESPACE:
            end += 2 if logical[end] == "\\" else 1
        end = min(end, len(logical))
        rest = logical[end:].lstrip(_WHITESPACE)
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(_WHITESPACE)
        try:
            key, value = _unescape(logical[:end]), _unescape(rest)
        except _BadValue as e:
            raise ConfigError(f"{source} line {number}: {e}", None, source, number) from None
        entries.append((key.strip(_TRIM), value.strip(_TRIM), number))
    return entries


# ---------------------------------------------------------------- converters

Converter = Callable[[str], object]


def _integer(low: int, high: int, what: str | None = None) -> Converter:
    def convert(value: str) -> int:
        if re.fullmatch(r"[+-]?[0-9]+", value) and low <= int(value) <= high:
            return int(value)
        raise _BadValue(f"expected {what or 'an integer'}, got {value!r}")
    return convert


_any_int = _integer(_INT_MIN, _INT_MAX)
_any_long = _integer(_LONG_MIN, _LONG_MAX)
_positive = _integer(1, _INT_MAX, "a positive integer")
_non_negative = _integer(0, _INT_MAX, "a non-negative integer")
_port = _integer(1, 65535, "a port number from 1 to 65535")
_port_or_zero = _integer(0, 65535, "a port number from 0 to 65535")
_timeout = _integer(-1, _INT_MAX, "-1 or a non-negative integer")


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    raise _BadValue(f"expected true, false, yes or no, got {value!r}")


def _text(value: str) -> str:
    if not value:
        raise _BadValue("expected a value, got nothing")
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise _BadValue(f"expected a path starting with '/', got {value!r}")
    return value


def _super_digest(value: str) -> str:
    if ":" not in value:
        raise _BadValue(f"expected user:base64-sha1-digest, got {value!r}")
    return value


def _election_alg(value: str) -> int:
    if value != "3":
        raise _BadValue(f"only 3 (fast leader election) is supported, got {value!r}")
    return 3


def _peer_type(value: str) -> str:
    if value.lower() not in ("participant", "observer"):
        raise _BadValue(f"expected participant or observer, got {value!r}")
    return value.lower()


#: zoo.cfg key -> (ZabdConfig field, converter).
_FIELDS: dict[str, tuple[str, Converter]] = {
    "tickTime": ("tick_time", _positive),
    "dataDir": ("data_dir", _text),
    "dataLogDir": ("data_log_dir", _text),
    "clientPort": ("client_port", _port),
    "clientPortAddress": ("client_port_address", _text),
    "maxClientCnxns": ("max_client_cnxns", _non_negative),
    "minSessionTimeout": ("min_session_timeout", _timeout),
    "maxSessionTimeout": ("max_session_timeout", _timeout),
    "jute.maxbuffer": ("jute_max_buffer", _positive),
    "extendedTypesEnabled": ("extended_types_enabled", _boolean),
    "DigestAuthenticationProvider.superDigest": ("super_digest", _super_digest),
    "skipACL": ("skip_acl", _boolean),
    "serverId": ("server_id", _integer(1, 255, "an integer from 1 to 255")),
    "initLimit": ("init_limit", _positive),
    "syncLimit": ("sync_limit", _positive),
    "snapCount": ("snap_count", _integer(2, _INT_MAX, "an integer of at least 2")),
    "preAllocSize": ("pre_alloc_size_kb", _positive),
    "forceSync": ("force_sync", _boolean),
    "autopurge.snapRetainCount": ("snap_retain_count", _any_int),
    "autopurge.purgeInterval": ("purge_interval_hours", _non_negative),
    "globalOutstandingLimit": ("global_outstanding_limit", _positive),
    "znode.container.checkIntervalMs": ("container_check_interval_ms", _positive),
    "znode.container.maxPerMinute": ("container_max_per_minute", _positive),
    "digest.enabled": ("digest_enabled", _boolean),
    "reconfigEnabled": ("reconfig_enabled", _boolean),
    "standaloneEnabled": ("standalone_enabled", _boolean),
    "admin.enableServer": ("admin_enable_server", _boolean),
    "admin.serverAddress": ("admin_server_address", _text),
    "admin.serverPort": ("admin_server_port", _port_or_zero),
    "admin.commandURL": ("admin_command_url", _url_path),
    "readonlymode.enabled": ("read_only_mode_enabled", _boolean),
    "localSessionsEnabled": ("local_sessions_enabled", _boolean),
    "localSessionsUpgradingEnabled": ("local_sessions_upgrading_enabled", _boolean),
    "clientPortListenBacklog": ("client_port_listen_backlog", _any_int),
    "maxCnxns": ("max_cnxns", _non_negative),
}

#: Keys ZooKeeper knows that zabd keeps in ``raw`` only; checked when typed.
_KEPT: dict[str, Converter | None] = {
    "4lw.commands.whitelist": None,
    "secureClientPort": _port_or_zero, "secureClientPortAddress": _text,
    "observerMasterPort": _port_or_zero, "connectToLearnerMasterLimit": _non_negative,
    "electionAlg": _election_alg, "peerType": _peer_type,
    "quorumListenOnAllIPs": _boolean, "syncEnabled": _boolean, "sslQuorum": _boolean,
    "portUnification": _boolean, "sslQuorumReloadCertFiles": _boolean,
    "multiAddress.enabled": _boolean, "multiAddress.reachabilityCheckEnabled": _boolean,
    "multiAddress.reachabilityCheckTimeoutMs": _non_negative,
    "quorum.auth.enableSasl": _boolean, "quorum.auth.serverRequireSasl": _boolean,
    "quorum.auth.learnerRequireSasl": _boolean, "quorum.cnxn.threads.size": _positive,
    "snapSizeLimitInKb": _any_long, "txnLogSizeLimitInKb": _any_long,
    "fsync.warningthresholdms": _any_long, "commitLogCount": _non_negative,
    "audit.enable": _boolean, "dynamicConfigFile": _text, "oraclePath": None,
    "serverCnxnFactory": None, "flushDelay": _any_long, "maxBatchSize": _any_int,
    "maxWriteQueuePollTime": _any_long, "leaderServes": None, "cnxTimeout": _any_int,
    "electionPortBindRetry": _any_int, "maxTimeToWaitForEpoch": _any_int,
    "closeSessionTxn.enabled": _boolean, "emulate353TTLNodes": _boolean,
    "sessionRequireClientSASLAuth": _boolean, "ensembleAuthName": None,
    "watchManagerName": None, "watcherCleanThreshold": _any_int,
    "watcherCleanIntervalInSeconds": _any_int, "watcherCleanThreadsNum": _any_int,
    "maxResponseCacheSize": _any_int, "maxGetChildrenResponseCacheSize": _any_int,
    "largeRequestMaxBytes": _any_int, "largeRequestThreshold": _any_int,
    "fips-mode": _boolean, "tcpKeepAlive": _boolean, "clientTcpKeepAlive": _boolean,
    "jute.maxbuffer.extrasize": _any_int, "digest.log.interval": None,
    "digest.log.limit": None, "version": None, "datadir.autocreate": _boolean,
    "db.autocreate": _boolean,
}

_KEPT_PREFIXES = (
    "server.", "group.", "weight.", "metricsProvider.", "admin.", "ssl.", "quorum.",
    "authProvider.", "jvm.pause.", "autopurge.", "nio.", "netty.", "audit.", "request_",
    "connection_throttle_", "learner.", "leader.", "follower.", "observer.", "snapshot.",
    "digest.", "sasl.", "kerberos.", "client.", "znode.container.", "messageTracker.",
    "enforce", "X509", "DigestAuthenticationProvider.", "pathStats.", "request_throttle",
)


def _canonical(key: str) -> str:
    # zoo.cfg may use the system-property spelling of a key.
    return key[len("zookeeper."):] if key.startswith("zookeeper.") else key


def _whitelist(value: str, read_only: bool) -> frozenset[str]:
    names = {name.strip().lower() for name in value.split(",")}
    enabled = set(COMMAND_NAMES) if "*" in names else names & COMMAND_NAMES
    # As in ZooKeeper: zkServer.sh needs srvr; read-only clients probe with isro.
    enabled.add("srvr")
    if read_only:
        enabled.add("isro")
    return frozenset(enabled)


def parse_config(text: str, source: str = "zoo.cfg") -> ZabdConfig:
    """
    Build a :class:`ZabdConfig` from zoo.cfg text.

    :param text: the file contents.
    :param source: file name shown in error messages.
    :raises ConfigError: naming the key and line of the first bad value.
    """
    entries = read_properties(text, source)
    latest: dict[str, tuple[str, str, int]] = {}  # canonical -> (as written, value, line)
    for key, value, line in entries:
        latest[_canonical(key)] = (key, value, line)

    def fail(key: str, line: int | None, problem: str) -> ConfigError:
        where = f"{source} line {line}" if line is not None else source
        return ConfigError(f"{where}: {key}: {problem}", key, source, line)

    values: dict[str, object] = {}
    servers: dict[int, str] = {}
    unknown: list[str] = []
    warnings: list[str] = []
    dynamic = "dynamicConfigFile" in latest
    for name, (written, value, line) in latest.items():
        try:
            if name in _FIELDS:
                attribute, convert = _FIELDS[name]
                values[attribute] = convert(value)
            elif name.startswith(("server.", "group.", "weight.")) and dynamic:
                raise _BadValue("must be in the separate dynamic config file")
            elif name.startswith("server."):
                sid = _integer(0, _LONG_MAX, "server.N with N a server id")(name[7:])
                assert isinstance(sid, int)
                servers[sid] = _text(value)
            elif name in _KEPT:
                check = _KEPT[name]
                if check is not None:
                    check(value)
            elif not name.startswith(_KEPT_PREFIXES):
                unknown.append(written)
        except _BadValue as e:
            raise fail(written, line, str(e)) from None

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
        raise fail(written, line,
                   f"minSessionTimeout ({config.min_session_timeout_ms}) must not be "
                   f"larger than maxSessionTimeout ({config.max_session_timeout_ms})")
    if "4lw.commands.whitelist" in latest:
        written, value, line = latest["4lw.commands.whitelist"]
        words = _whitelist(value, config.read_only_mode_enabled)
        strays = sorted({n.strip().lower() for n in value.split(",")} - COMMAND_NAMES - {"*", ""})
        warnings += [f"{source} line {line}: {written}: ignoring unknown command {name!r}"
                     for name in strays]
    else:
        words = DEFAULT_FOUR_LETTER_WORDS
    return replace(
        config,
        four_letter_words=words,
        raw=tuple((key, value) for key, value, _ in entries),
        unknown_keys=tuple(unknown),
        warnings=tuple(warnings),
    )


def load_config(path: str) -> ZabdConfig:
    """
    Read and parse a zoo.cfg file.

    :param path: the file.
    :raises ConfigError: if it cannot be read or is invalid.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}", None, path, None) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # what Java's Properties.load assumes
    return parse_config(text, source=path)
