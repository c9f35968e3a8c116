"""Ask a live admin server (zabd or ZooKeeper) for many paths with treq; print the answers as JSON.

    python -m zabd.harness.adminquery http://127.0.0.1:PORT /commands/ruok /commands/srvr ...

Prints one JSON object: path -> {"status", "content_type", "body"}.  It is
a process of its own so that tests without a running reactor can use real
treq over real sockets (a reactor runs once per process).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import treq
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import react

#: Give up on one request after this long (the test's deadline is longer).
REQUEST_TIMEOUT_S = 10.0


async def _ask(base: str, path: str) -> tuple[str, dict[str, Any]]:
    method, _, url_path = path.rpartition(" ")
    response = await treq.request(method or "GET", base + url_path, timeout=REQUEST_TIMEOUT_S)
    body = await treq.content(response)
    types = response.headers.getRawHeaders(b"content-type") or [b""]
    return path, {"status": response.code, "content_type": types[0].decode(),
                  "body": body.decode("utf-8", "replace")}


async def _main(reactor: Any, base: str, paths: list[str]) -> None:
    answers = await gatherResults([Deferred.fromCoroutine(_ask(base, path)) for path in paths])
    print(json.dumps(dict(answers)))


def main(argv: list[str]) -> None:
    """``argv``: the base URL, then paths (``"POST /commands/ruok"`` names another method)."""
    base, paths = argv[0], argv[1:]
    react(lambda reactor: Deferred.fromCoroutine(_main(reactor, base, paths)))


if __name__ == "__main__":
    main(sys.argv[1:])
