# -*- test-case-name: tests.unit.test_client_api -*-
"""Four-letter words (``ruok``, ``srvr``, ``mntr``, ...) over a fresh connection of their own."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.python.failure import Failure

from zabd.client.errors import ConnectionLoss, TlsError

if TYPE_CHECKING:
    from zabd.client.tls import ClientTls


class _Answer(Protocol):
    def __init__(self, word: bytes, done: Deferred[bytes], tls: ClientTls | None) -> None:
        self.word = word
        self.done = done
        self.tls = tls
        self.received = bytearray()

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        assert self.transport is not None
        self.transport.write(self.word)

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:  # noqa: N802
        if self.done.called:
            return
        why = self.tls.failure(self.transport, reason) if self.tls is not None else None
        if why is not None and not self.received:
            self.done.errback(TlsError(why))
        else:  # the server answers, then closes: the answer is complete
            self.done.callback(bytes(self.received))


class _AskOnce(ClientFactory):
    def __init__(self, word: bytes, done: Deferred[bytes], tls: ClientTls | None) -> None:
        self.word = word
        self.done = done
        self.tls = tls

    def buildProtocol(self, addr: object) -> Protocol:  # noqa: N802
        return _Answer(self.word, self.done, self.tls)

    def clientConnectionFailed(self, connector: object, reason: Failure) -> None:  # noqa: N802
        if not self.done.called:
            self.done.errback(ConnectionLoss())


def four_letter_word(reactor: Any, host: str, port: int, word: bytes, timeout: float = 10.0,
                     tls: ClientTls | None = None) -> Deferred[str]:
    """Send ``word`` (over TLS with ``tls``) and return the server's whole answer as text.

    The server closes the connection after its answer. A failed TLS handshake fails with
    :class:`~zabd.client.errors.TlsError`; a refused connection or timeout with ConnectionLoss.
    """
    if len(word) != 4:
        raise ValueError(f"a four-letter word has four letters, not {word!r}")
    done: Deferred[bytes] = Deferred()
    asking = _AskOnce(word, done, tls)
    if tls is not None:
        connector = tls.connect(reactor, host, port, asking, timeout)
    else:
        connector = reactor.connectTCP(host, port, asking, timeout=timeout)

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
