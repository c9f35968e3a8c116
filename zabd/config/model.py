# -*- test-case-name: tests.unit.test_config -*-
"""
The configuration zabd runs with: one frozen, typed record of zoo.cfg.

:class:`ZabdConfig` is what the rest of zabd reads; :mod:`zabd.config.zoocfg`
builds it from the file, with the per-key rules of :mod:`zabd.config.keys`.
Every key zabd acts on is a typed field here, never a string looked up later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from zabd.config.ensemble import EnsembleConfig
from zabd.config.overload_settings import OverloadSettings
from zabd.tls.settings import SecuritySettings

__all__ = ["DEFAULT_FOUR_LETTER_WORDS", "ZabdConfig", "default_config"]

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
    #: ``db.autocreate``: an empty data directory starts a new database (unless "false").
    db_autocreate: bool = True
    #: ``snapshot.trust.empty``: txn logs without a snapshot may be loaded (only "true" allows it).
    trust_empty_snapshot: bool = False
    #: ``fsync.warningthresholdms``: a slower fsync is logged.
    fsync_warning_threshold_ms: int = 1000
    raw: tuple[tuple[str, str], ...] = ()
    unknown_keys: tuple[str, ...] = ()
    #: Keys 3.8 knows that zabd leaves without effect, with why (logged at startup).
    ignored_keys: tuple[tuple[str, str], ...] = ()
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
        ] + ([("initLimit", str(self.init_limit)), ("syncLimit", str(self.sync_limit)),
              *self.ensemble.conf_lines()] if self.ensemble else [])

    def conf_text(self, data_dir_size: int, log_dir_size: int) -> str:
        """The whole ``conf`` reply: a quorum peer ends it with the config text, no newline."""
        lines = "".join(f"{k}={v}\n" for k, v in self.conf_lines(data_dir_size, log_dir_size))
        return lines + (self.ensemble.conf_membership() if self.ensemble else "")


def default_config() -> ZabdConfig:
    """The configuration a newcomer runs with no zoo.cfg: loopback only."""
    return ZabdConfig(tick_time=2000, data_dir="./zabd-data", client_port_address="127.0.0.1")
