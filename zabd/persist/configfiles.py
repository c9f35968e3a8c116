# -*- test-case-name: tests.unit.test_ensemble_service -*-
"""Keep a peer's zoo.cfg and zoo.cfg.dynamic.<version> files in step with its configs, as 3.8 does.

Only a peer with reconfigEnabled or a dynamicConfigFile keeps these files
(3.8 writes none for a plain static config). A config put in force is
written to ``zoo.cfg.dynamic.<version>`` and zoo.cfg is pointed at it; a
config only proposed goes to ``zoo.cfg.dynamic.next``, removed once it is in
force. The writes (each one fsynced) run on the syncer thread, in order, so
the reactor never waits on the disk.
"""
from __future__ import annotations

from typing import Any

from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from zabd.membership.verifier import QuorumVerifier
from zabd.config.zoocfg import ZabdConfig
from zabd.config.dynamic import (
    backup_static_config,
    remove_next_config,
    write_committed_config,
    write_next_config,
)

log = Logger()


class ConfigFiles:
    """Writes zoo.cfg and zoo.cfg.dynamic.<version> in the storage thread pool as configs change, as 3.8 does."""

    def __init__(self, config: ZabdConfig, reactor: Any, pool: ThreadPool) -> None:
        self.path = config.config_file
        self.enabled = self.path is not None and (config.reconfig_enabled or bool(config.dynamic_config_file))
        self.myid = config.server_id
        self.reactor = reactor
        self.pool = pool
        self._backed_up = bool(config.dynamic_config_file)

    def record(self, verifier: QuorumVerifier, in_force: bool, last_seen_version: int) -> None:
        """Write what 3.8 writes for a config seen (``in_force`` False) or put in force."""
        if not self.enabled:
            return
        deferred = deferToThreadPool(self.reactor, self.pool, self._write, verifier, in_force, last_seen_version)
        deferred.addErrback(lambda failure: log.failure(
            "Cannot write the dynamic config of version 0x{version:x}", failure, version=verifier.version))

    def _write(self, verifier: QuorumVerifier, in_force: bool, last_seen_version: int) -> None:
        path = self.path
        assert path is not None
        if not self._backed_up:
            # 3.8 keeps the zoo.cfg it started from as zoo.cfg.bak before its first rewrite.
            backup_static_config(path)
            self._backed_up = True
        if not in_force:
            write_next_config(path, verifier)
            return
        write_committed_config(path, verifier, self.myid)
        if verifier.version >= last_seen_version:
            remove_next_config(path)
