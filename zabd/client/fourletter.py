# -*- test-case-name: tests.unit.test_client_api -*-
"""Four-letter words (``ruok``, ``srvr``, ``mntr``, ...) over a fresh connection of their own."""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure

from zabd.client.errors import ConnectionLoss


class _Answer(Protocol):
    def __init__(self, word: bytes, done: Deferred[bytes]) -> None:
        self.word = word
        self.done = done
        self.received = bytearray()

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        assert self.transport is not None
        self.transport.write(self.word)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        if not self.done.called:  # the server answers, then closes: the answer is complete
            self.done.callback(bytes(self.received))


class _AskOnce(ClientFactory):
    def __init__(self, word: bytes, done: Deferred[bytes]) -> None:
        self.word = word
        self.done = done

    def buildProtocol(self, addr: object) -> Protocol:  # noqa: N802
        return _Answer(self.word, self.done)

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:  # noqa: N802
        if not self.done.called:
            self.done.errback(ConnectionLoss())


def four_letter_word(reactor: Any, host: str, port: int, word: bytes, timeout: float = 10.0) -> Deferred[str]:
    """Send ``word`` and return the server's whole answer as text (it closes the connection after it)."""
    if len(word) != 4:
        raise ValueError(f"a four-letter word has four letters, not {word!r}")
    done: Deferred[bytes] = Deferred()
    connector = reactor.connectTCP(host, port, _AskOnce(word, done), timeout=timeout)

    def give_up() -> None:
        if not done.called:
            connector.disconnect()
            if not done.called:
                done.errback(ConnectionLoss())

    timer = reactor.callLater(timeout, give_up)

    def finished(answer: bytes) -> str:
        if timer.active():
            timer.cancel()
        return answer.decode("utf-8", "replace")

    def failed(failure: Failure) -> Failure:
        if timer.active():
            timer.cancel()
        return failure

    return done.addCallbacks(finished, failed)
