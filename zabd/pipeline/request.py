# -*- test-case-name: tests.unit.test_pipeline -*-
"""A request as it moves through the processor chain, and what stages need of a client."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union

from zabd.jute.errors import KeeperError
from zabd.jute.records import Id
from zabd.jute.schema import Record
from zabd.jute.txns import Txn


#: A reply body: a record, bytes already encoded (the hot paths), or nothing.
Reply = Union[Record, bytes, None]


class Client(Protocol):
    """The connection a request came from, as the stages see it."""

    session_id: int
    remote_ip: str
    auth_ids: tuple[Id, ...]

    def __hash__(self) -> int:
        """Clients are watchers: the watch tables key on them."""

    @property
    def connected(self) -> bool:
        """False once the connection is gone: nothing more is sent or watched for it."""

    def send_reply(self, xid: int, zxid: int, err: int, body: Reply, now_ms: float = 0.0) -> None: ...

    def send_event(self, event_type: int, path: str) -> None: ...

    def session_established(self, valid: bool) -> None: ...

    def close(self) -> None: ...


class Stage(Protocol):
    """One processor of the chain: takes a request and passes it on when it may."""

    def process(self, request: Request) -> None: ...


@dataclass(slots=True, eq=False)
class Request:
    """One client request (or an internal one such as an expiry's closeSession)."""

    session_id: int
    xid: int
    type: int
    payload: bytes
    client: Client | None
    auth_ids: tuple[Id, ...] = ()
    #: The txn prep built for a write; None for reads, pings and the like.
    txn: Txn | None = None
    #: Set by prep when a non-txn request must fail (an expired session).
    error: KeeperError | None = None
    #: When the request arrived, in ms of the server clock (for latency figures).
    received_ms: float = 0.0
    #: The bytes it holds of the large-request budget; -1: none (3.8's largeRequestSize).
    large_size: int = -1
    #: Counted in ServerStats.in_process (the request throttler let it in).
    in_process: bool = False
    #: It waited past throttled_op_wait_time: prep skips it and it is answered THROTTLEDOP.
    throttled: bool = False
