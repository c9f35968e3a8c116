# -*- test-case-name: tests.unit.test_bench -*-
"""What a load-generator worker is asked to do, and the requests each workload sends.

Kept apart from :mod:`zabd.tools._loadgen`, which only moves bytes: here a
:class:`WorkerSpec` (which server, which workload, how hard) turns into one
endless stream of pre-encoded requests per connection, so the mix of a
workload can be read and tested without any connection.
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from zabd.tools._tls import TlsFiles
from zabd.harness.wire import INT, OP_CREATE, OP_GET_DATA, OP_SET_DATA, OPEN_ACL, Request
from zabd.harness.wire import get_data_body, jute_buffer, set_data_body, ustring

NextRequest = Callable[[], Request | None]


@dataclass(frozen=True)
class WorkerSpec:
    """What one load worker process is to do: where, which workload, how hard and for how long."""

    host: str
    port: int
    workload: str  # create | set | get | mix
    index: int
    connections: int
    pipeline: int
    warmup: float
    duration: float
    value_size: int
    nodes: tuple[str, ...]  # pre-created paths for set/get/mix
    create_parent: str  # parent of the nodes the create workload makes
    seed: int
    timeout_ms: int = 40000
    #: An ensemble's client ports: connection c goes to addresses[(first_connection + c) % n],
    #: so that the connections of all workers together go round-robin over the peers.
    addresses: tuple[tuple[str, int], ...] = ()
    first_connection: int = 0
    #: Connect over TLS with these files (None: plaintext).
    tls: TlsFiles | None = None


def connection_address(spec: WorkerSpec, conn: int) -> tuple[str, int]:
    if not spec.addresses:
        return spec.host, spec.port
    return spec.addresses[(spec.first_connection + conn) % len(spec.addresses)]


def created_path(parent: str, worker: int, conn: int, n: int) -> str:
    return f"{parent}/{worker}-{conn}-{n}"


def request_source(spec: WorkerSpec, conn: int, created: list[int]) -> NextRequest:
    data = b"x" * spec.value_size
    if spec.workload == "create":
        prefix = created_path(spec.create_parent, spec.index, conn, 0)[:-1]  # ends "-"; n follows
        tail = jute_buffer(data) + OPEN_ACL + INT.pack(0)  # data, acl, flags=persistent

        def next_create() -> Request:
            n = created[conn]
            created[conn] = n + 1
            return OP_CREATE, ustring(prefix + str(n)) + tail

        return next_create
    gets = [(OP_GET_DATA, get_data_body(p)) for p in spec.nodes]
    sets = [(OP_SET_DATA, set_data_body(p, data)) for p in spec.nodes]
    if spec.workload == "get":
        requests = gets
    elif spec.workload == "set":
        requests = sets
    elif spec.workload == "mix":  # exactly one write in ten over each cycle
        requests = [sets[i] if i % 10 == 0 else gets[i] for i in range(len(spec.nodes))]
    else:
        raise ValueError(f"unknown workload {spec.workload!r}")
    random.Random(spec.seed * 7919 + conn).shuffle(requests)
    return itertools.cycle(requests).__next__
