# -*- test-case-name: tests.unit.test_standalone -*-
"""A standalone ZooKeeper server, sans-IO: the prep → sync → final chain plus sessions.

It is a ClientServer (zabd.serving.server) given a standalone's parts: a
session table with no local sessions, whatever the settings say (as 3.8),
the plain final stage, and the chain that logs each txn before answering.
"""
from __future__ import annotations

from typing import Callable

from zabd.core.datatree import DataTree
from zabd.core.sessions import SessionTracker
from zabd.pipeline.final import FinalStage
from zabd.pipeline.sync import TxnLog
from zabd.serving.chain import Chain
from zabd.serving.clients import ClientTable
from zabd.serving.server import ClientServer, ServerOptions, request_throttler, server_context
from zabd.serving.sessions import Housekeeper, SessionSettler


class StandaloneServer(ClientServer):
    """The server of a standalone peer; only puts a ClientServer together.

    :param txn_log: where txns become durable (in memory, at once, if None).
    :param tree: the recovered tree (an empty one if None).
    :param sessions: the recovered sessions and their timeouts.
    """

    def __init__(self, options: ServerOptions, clock: Callable[[], float],
                 txn_log: TxnLog | None = None, tree: DataTree | None = None,
                 sessions: dict[int, int] | None = None) -> None:
        table = SessionTracker(options.tick_ms, options.server_id, int(clock() * 1000))
        ctx = server_context(options, clock, tree, table, sessions)
        clients = ClientTable(ctx.stats, ctx.watches)
        chain = Chain(ctx, FinalStage(ctx, clients.session_closed), clients, txn_log)
        throttler = request_throttler(options, ctx, chain)
        super().__init__(options, ctx, clients, chain, throttler,
                         SessionSettler(ctx, options, clients, throttler.submit),
                         Housekeeper(ctx, options, table.expire, throttler.submit, chain.submit))


__all__ = ["ServerOptions", "StandaloneServer"]
