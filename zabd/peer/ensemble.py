# -*- test-case-name: tests.unit.test_ensemble_service -*-
"""Wire one ensemble peer from a ZabdConfig with server.N lines: three ports and a QuorumPeer.

- the election port (ElectionPortFactory) carries FLE notifications;
- the quorum port (QuorumPortFactory) takes learners while this peer leads,
  and ReactorQuorumNetwork dials the leader while it follows;
- the client port answers clients through whichever server the peer runs
  (zabd.peer.switch), and four-letter words at any time.

Storage is the standalone server's (one syncer thread, group commit,
snapshots, autopurge) under a DiskReplica, which the Zab roles drive.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from twisted.application.service import MultiService
from twisted.logger import Logger

from zabd.config.ensemble import EnsembleConfig
from zabd.ensemble.peer import QuorumPeer
from zabd.membership.verifier import QuorumVerifier
from zabd.metrics.server import ServerMetrics
from zabd.metrics.tls import TlsCounters
from zabd.quorum.roles import Timing
from zabd.config.zoocfg import ZabdConfig
from zabd.server.binding import PortBinder, bind_or_exit
from zabd.persist.configfiles import ConfigFiles
from zabd.persist.diskreplica import DiskReplica
from zabd.server.election_port import ElectionPortFactory
from zabd.views.ensemble_view import EnsembleView
from zabd.persist.persistence import Storage, data_dirs
from zabd.server.quorum_port import QuorumPortFactory, ReactorQuorumNetwork, ReactorScheduler
from zabd.server.security import (
    RELOAD_INTERVAL_S, ClientListeners, Security, load_security, quorum_reactor, reload_stores,
)
from zabd.peer.standalone import client_ports_text, exit_now, load_database, server_options
from zabd.views.stats_view import FourLetterWords
from zabd.serving.readonly import read_only_grace_ms
from zabd.serving.server import ClientServer
from zabd.serving.standalone import StandaloneServer
from zabd.peer.assembly import AcceptLearner, PeerParts, PeerSpec, assemble_peer
from zabd.peer.clientside import every, serve_clients
from zabd.peer.servers import standalone_server
from zabd.peer.switch import ServingSwitch
from zabd.election.links import MessageHandler

log = Logger()

#: How often a LOOKING peer checks whether to start or stop its read-only server.
READ_ONLY_POLL_MS = 100


class EnsembleService(MultiService):
    """twistd's ensemble peer: its storage, ports, timers and the QuorumPeer of zabd.peer.assembly.

    It owns the peer (a PeerOwner): clients follow the peer's role, and
    addresses and the dynamic config files follow its configs.
    """

    def __init__(self, config: ZabdConfig, reactor: Any, halt: Callable[[int], None] = exit_now,
                 security: Security | None = None) -> None:
        super().__init__()
        assert config.ensemble is not None
        self.config = config
        self.ensemble: EnsembleConfig = config.ensemble
        self.reactor = reactor
        self.halt = halt
        self.election_binder: PortBinder | None = None
        self.peer: QuorumPeer | None = None
        self.replica: DiskReplica | None = None
        #: The process's metrics: every role, server and the storage record into them.
        self.metrics = ServerMetrics()
        self.security = security if security is not None else load_security(config)
        self.storage = Storage(config, reactor, self._durable_state, halt, metrics=self.metrics)
        self.storage.setServiceParent(self)
        self.client_ports = ClientListeners(config, self.security, reactor, self.metrics.tls)
        self.client_ports.setServiceParent(self)
        #: The quorum and election ports' handshakes (3.8 shows no figures for them).
        self.quorum_tls = TlsCounters()
        quorum_stores = self.security.quorum
        if quorum_stores is not None and config.security.reload_quorum_certs:
            every(self, reactor, int(RELOAD_INTERVAL_S * 1000), lambda: reload_stores(quorum_stores, "quorum"))
        every(self, reactor, config.tick_time, self._expire_sessions)
        every(self, reactor, config.container_check_interval_ms, self._collect_containers)
        if config.read_only_mode_enabled:
            every(self, reactor, READ_ONLY_POLL_MS, self._poll_read_only)

    # -- startup -------------------------------------------------------------

    def privilegedStartService(self) -> None:
        self._open()
        super().privilegedStartService()

    def startService(self) -> None:
        self._open()
        super().startService()
        me, options = self.ensemble.my_server, self.ensemble.options
        host = "" if options.quorum_listen_on_all_ips else me.quorum_addr[0]
        bind_or_exit(lambda: self.quorum_port.listen(me.quorum_addr[1], host), "learners", self.halt)
        election_host = "" if options.quorum_listen_on_all_ips else me.election_addr[0]
        # 3.8's election listener retries its bind; the peer runs meanwhile, dialling out.
        self.election_binder = PortBinder(lambda: self.election.listen(me.election_addr[1], election_host),
                                          "elections", options.election_port_bind_retry, self.reactor, self.halt)
        self.election_binder.start()
        assert self.peer is not None
        self.peer.start()

    def stopService(self) -> Any:
        if self.election_binder is not None:
            self.election_binder.stop()
        if self.peer is not None:
            self.peer.stop()
        self.quorum_network.stop()
        self.quorum_port.stop()
        self.election.stop()
        return super().stopService()

    def _open(self) -> None:
        if self.peer is not None:
            return
        config, ensemble = self.config, self.ensemble
        recovered = load_database(config)
        self.storage.loaded(recovered)
        options = ensemble.options
        replica = DiskReplica(data_dirs(config), recovered, self.storage.log,
                              commit_log_count=options.commit_log_count)
        replica.before_rewrite = self.storage.snapshotter.abandon
        self.replica = replica
        timing = Timing(config.tick_time, config.init_limit, config.sync_limit)
        scheduler = ReactorScheduler(self.reactor)
        members = ensemble.verifier.all_members
        me = ensemble.my_server
        quorum_tcp = quorum_reactor(config, self.security, self.reactor, self.quorum_tls, "quorum")
        self.quorum_network = ReactorQuorumNetwork(
            quorum_tcp, {sid: m.quorum_addr for sid, m in members.items()},
            connect_timeout_ms=timing.init_ms, keep_alive=options.tcp_keep_alive,
        )
        read_only_after = read_only_grace_ms(config.tick_time) if config.read_only_mode_enabled else None
        switch = ServingSwitch(dataclasses.replace(server_options(config, self.metrics, scheduler),
                                                   server_id=ensemble.myid),
                               self.reactor.seconds, read_only_after_ms=read_only_after)

        def election_links(deliver: MessageHandler) -> ElectionPortFactory:
            return ElectionPortFactory(
                ensemble.myid, f"{me.election_addr[0]}:{me.election_addr[1]}",
                {sid: m.election_addr for sid, m in members.items() if sid != ensemble.myid}, deliver,
                quorum_reactor(config, self.security, self.reactor, self.quorum_tls, "election"),
                connect_timeout_ms=options.cnx_timeout_ms, handshake_timeout_ms=timing.sync_ms,
            )

        def learners_port(accept: AcceptLearner) -> QuorumPortFactory:
            return QuorumPortFactory(accept, quorum_tcp, keep_alive=options.tcp_keep_alive)

        spec = PeerSpec(ensemble.myid, ensemble.verifier, timing, observer=ensemble.is_observer,
                        observer_logs=options.sync_enabled, last_seen=ensemble.last_seen)
        parts = PeerParts(replica, scheduler, scheduler.now_ms, election_links, self.quorum_network, learners_port,
                          self.metrics, switch)
        assembled = assemble_peer(spec, parts, self)
        self.election, self.quorum_port, self.switch = assembled.election, assembled.quorum_listener, switch
        peer = self.peer = assembled.peer
        self.config_files = ConfigFiles(config, self.reactor, self.storage.pool)
        self.view = EnsembleView(peer, standalone_server(switch.options, self.reactor.seconds, tree=replica.tree),
                                 config)
        words = FourLetterWords(self.view.server, config, self.view)
        self.clients = serve_clients(self, config, self.reactor, self.security, self.metrics, self.client_ports,
                                     None, words, self.view)
        log.info("zabd peer {myid} of {n} ({kind}): clients on {ports}, quorum on {quorum}, election on {election}"
                 " ({quorum_security})", myid=ensemble.myid, n=len(members),
                 kind="observer" if ensemble.is_observer else "participant", ports=client_ports_text(config),
                 quorum=me.quorum_addr[1], election=me.election_addr[1], quorum_security=quorum_security(config))

    def _peer(self) -> QuorumPeer:
        assert self.peer is not None
        return self.peer

    # -- roles ---------------------------------------------------------------

    def serving_changed(self, peer: QuorumPeer) -> None:
        """The switch has followed the peer: clients and the views follow the switch."""
        self._switched(peer)

    def _poll_read_only(self) -> None:
        peer = self.peer
        if peer is not None and self.switch.poll(peer):
            self._switched(peer)

    def _switched(self, peer: QuorumPeer) -> None:
        self.clients.server = client_server(self.switch, peer, self.ensemble.options.leader_serves)
        self.view.follow(self.switch.server)

    def config_changed(self, verifier: QuorumVerifier, in_force: bool) -> None:
        """Peers' addresses follow the config in force; the dynamic config files record each one."""
        if in_force:
            members = verifier.all_members
            self.election.set_peers({sid: m.election_addr for sid, m in members.items()})
            self.quorum_network.set_addresses({sid: m.quorum_addr for sid, m in members.items()})
        self.config_files.record(verifier, in_force, self._peer().last_seen.version)

    def _durable_state(self) -> Any:
        assert self.replica is not None
        return self.replica.tree, self.replica.sessions()

    def _expire_sessions(self) -> None:
        if self.switch.server is not None:
            self.switch.server.expire_sessions()

    def _collect_containers(self) -> None:
        peer = self.peer
        if peer is not None and peer.leader is not None and self.switch.server is not None:
            self.switch.server.collect_containers()


def quorum_security(config: ZabdConfig) -> str:
    """How peers talk, in the words of 3.8's startup lines."""
    settings = config.security
    tls = "TLS encrypted quorum communication" if settings.ssl_quorum else "insecure (non-TLS) quorum communication"
    return f"{tls}, port unification {'enabled' if settings.quorum_port_unification else 'disabled'}"


def client_server(switch: ServingSwitch, peer: QuorumPeer, leader_serves: bool) -> ClientServer | None:
    """Who answers client sessions: with leaderServes=no, a leader answers none (it still
    runs its server for the learners' requests), so clients go to the followers."""
    if peer.leader is not None and not leader_serves:
        return None
    return switch.server
