"""Drive an admin site in memory with treq's StubTreq: status, headers and parsed bodies."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.resource import IResource

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _result(stub: Any, d: Deferred[T]) -> T:
    stub.flush()
    results: list[T | Failure] = []
    d.addBoth(results.append)
    assert results, "the request did not complete"
    outcome = results[0]
    if isinstance(outcome, Failure):
        outcome.raiseException()
    return outcome


def request(resource: IResource, path: str, method: str = "GET") -> Answer:
    """``method`` ``http://admin<path>`` against ``resource``, answered at once."""
    stub: Any = StubTreq(resource)
    response = _result(stub, stub.request(method, f"http://admin.test{path}"))
    body = _result(stub, stub.content(response))
    types = response.headers.getRawHeaders(b"content-type") or [b""]
    return Answer(response.code, types[0].decode(), body)
