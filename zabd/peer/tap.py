# -*- test-case-name: tests.unit.test_cli -*-
"""``twistd zabd``: command-line options and the service they make."""
from __future__ import annotations

from twisted.application.service import IService
from twisted.python import usage

from zabd.config.zoocfg import ConfigError, ZabdConfig, default_config, load_config

#: twistd's name for zabd and its one-line description (twisted/plugins/zabd_plugin.py says the same).
TAPNAME = "zabd"
DESCRIPTION = "A ZooKeeper-compatible coordination service."


class Options(usage.Options):
    """``twistd zabd``'s options: a zoo.cfg, read and checked (TLS stores too) before any port opens."""

    synopsis = "[--config zoo.cfg]"
    longdesc = (
        "Run a zabd server. With no --config, a standalone server listens on "
        "127.0.0.1:2181 and keeps its data in ./zabd-data."
    )
    optParameters = [
        ["config", "c", None, "Path of a ZooKeeper-format zoo.cfg."],
    ]

    def postOptions(self) -> None:
        from zabd.server.binding import StartupError
        from zabd.server.security import load_security

        path = self["config"]
        try:
            self.zabd_config: ZabdConfig = load_config(path) if path else default_config()
            # Every TLS store is read now: a bad one stops startup before any port opens.
            self.security = load_security(self.zabd_config)
        except ConfigError as e:
            # One line that names the key and the file, without twistd's usage text around it.
            raise StartupError(f"zabd: {e}") from None
        except OSError as e:
            raise StartupError(f"zabd: cannot read config {path}: {e.strerror}") from None


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    from zabd.server.signals import run_signal_handlers_in_reactor

    # twistd runs the reactor in this process's main thread: its SIGTERM handler must not log in place.
    reactor.callWhenRunning(run_signal_handlers_in_reactor, reactor)
    config = options.zabd_config
    if config.ensemble is not None:
        from zabd.peer.ensemble import EnsembleService

        return EnsembleService(config, reactor, security=options.security)
    from zabd.peer.standalone import ZabdService

    return ZabdService(config, reactor, security=options.security)
