# -*- test-case-name: tests.unit.test_client_session -*-
"""One exception class per ZooKeeper error code, with kazoo's names.

Every class derives from :class:`zabd.jute.errors.KeeperError`, the server's
own exception, and carries the :class:`~zabd.jute.errors.Code` it stands for,
so ``except NoNodeError`` and ``error.code == Code.NONODE`` agree.
:func:`error_for` maps a code from the wire to an instance.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from zabd.jute.errors import Code, KeeperError

__all__ = [
    "ZookeeperError", "error_for", "RolledBackError", "ConnectionClosedError",
    "SystemZookeeperError", "RuntimeInconsistency", "DataInconsistency", "ConnectionLoss",
    "MarshallingError", "UnimplementedError", "OperationTimeoutError", "BadArgumentsError",
    "UnknownSessionError", "NewConfigNoQuorumError", "ReconfigInProcessError", "APIError",
    "NoNodeError", "NoAuthError", "BadVersionError", "NoChildrenForEphemeralsError",
    "NodeExistsError", "NotEmptyError", "SessionExpiredError", "InvalidCallbackError",
    "InvalidACLError", "AuthFailedError", "SessionMovedError", "NotReadOnlyCallError",
    "EphemeralOnLocalSessionError", "NoWatcherError", "RequestTimeoutError",
    "ReconfigDisabledError", "SessionClosedRequireSaslAuthError", "QuotaExceededError",
    "ThrottledOpError", "TlsError", "TlsConfigError",
]


class ZookeeperError(KeeperError):
    """Base of the client's errors; ``code`` is the ZooKeeper error code."""

    CODE: Code = Code.SYSTEMERROR

    def __init__(self, path: str | None = None, code: Code | None = None) -> None:
        super().__init__(self.CODE if code is None else code, path)


_BY_CODE: dict[int, type[ZookeeperError]] = {}
E = TypeVar("E", bound=type[ZookeeperError])


def _code(code: Code) -> Callable[[E], E]:
    def register(cls: E) -> E:
        cls.CODE = code
        _BY_CODE[int(code)] = cls
        return cls
    return register


def error_for(code: int, path: str | None = None) -> ZookeeperError:
    """The exception for a wire error code (an unknown code gives a plain ZookeeperError)."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls(path)
    try:
        known = Code(code)
    except ValueError:
        known = Code.SYSTEMERROR
    return ZookeeperError(path, known)


class RolledBackError(ZookeeperError):
    """A multi op that did not fail itself but was rolled back with the transaction (err 0 in a result)."""

    CODE = Code.OK


@_code(Code.SYSTEMERROR)
class SystemZookeeperError(ZookeeperError): ...


@_code(Code.RUNTIMEINCONSISTENCY)
class RuntimeInconsistency(ZookeeperError): ...


@_code(Code.DATAINCONSISTENCY)
class DataInconsistency(ZookeeperError): ...


@_code(Code.CONNECTIONLOSS)
class ConnectionLoss(ZookeeperError):
    """The connection dropped before the reply came: the request may or may not have been applied."""


class TlsConfigError(ValueError):
    """A TLS parameter of the client (``ca``, ``certfile``, ...) cannot be used; the text names it and its file."""


class TlsError(ConnectionLoss):
    """A connection's TLS failed (say, the server's certificate was refused); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(None)
        self.reason = reason

    def __str__(self) -> str:
        return f"TLS failed: {self.reason}"


@_code(Code.MARSHALLINGERROR)
class MarshallingError(ZookeeperError): ...


@_code(Code.UNIMPLEMENTED)
class UnimplementedError(ZookeeperError): ...


@_code(Code.OPERATIONTIMEOUT)
class OperationTimeoutError(ZookeeperError):
    """Timed out; ``detail`` (if set) says what was waited for and why it did not come."""

    def __init__(self, path: str | None = None, code: Code | None = None, detail: str | None = None) -> None:
        super().__init__(path, code)
        self.detail = detail

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}: {self.detail}" if self.detail else text


@_code(Code.BADARGUMENTS)
class BadArgumentsError(ZookeeperError): ...


@_code(Code.UNKNOWNSESSION)
class UnknownSessionError(ZookeeperError): ...


@_code(Code.NEWCONFIGNOQUORUM)
class NewConfigNoQuorumError(ZookeeperError): ...


@_code(Code.RECONFIGINPROGRESS)
class ReconfigInProcessError(ZookeeperError): ...


@_code(Code.APIERROR)
class APIError(ZookeeperError): ...


@_code(Code.NONODE)
class NoNodeError(ZookeeperError): ...


@_code(Code.NOAUTH)
class NoAuthError(ZookeeperError): ...


@_code(Code.BADVERSION)
class BadVersionError(ZookeeperError): ...


@_code(Code.NOCHILDRENFOREPHEMERALS)
class NoChildrenForEphemeralsError(ZookeeperError): ...


@_code(Code.NODEEXISTS)
class NodeExistsError(ZookeeperError): ...


@_code(Code.NOTEMPTY)
class NotEmptyError(ZookeeperError): ...


@_code(Code.SESSIONEXPIRED)
class SessionExpiredError(ZookeeperError):
    """The session is gone (expired, or closed): its ephemerals and watches with it."""


class ConnectionClosedError(SessionExpiredError):
    """The client was stopped or closed; as in kazoo, a kind of SessionExpiredError."""


@_code(Code.INVALIDCALLBACK)
class InvalidCallbackError(ZookeeperError): ...


@_code(Code.INVALIDACL)
class InvalidACLError(ZookeeperError): ...


@_code(Code.AUTHFAILED)
class AuthFailedError(ZookeeperError): ...


@_code(Code.SESSIONMOVED)
class SessionMovedError(ZookeeperError): ...


@_code(Code.NOTREADONLY)
class NotReadOnlyCallError(ZookeeperError):
    """A write sent to a read-only server."""


@_code(Code.EPHEMERALONLOCALSESSION)
class EphemeralOnLocalSessionError(ZookeeperError): ...


@_code(Code.NOWATCHER)
class NoWatcherError(ZookeeperError): ...


@_code(Code.REQUESTTIMEOUT)
class RequestTimeoutError(ZookeeperError): ...


@_code(Code.RECONFIGDISABLED)
class ReconfigDisabledError(ZookeeperError): ...


@_code(Code.SESSIONCLOSEDREQUIRESASLAUTH)
class SessionClosedRequireSaslAuthError(ZookeeperError): ...


@_code(Code.QUOTAEXCEEDED)
class QuotaExceededError(ZookeeperError): ...


@_code(Code.THROTTLEDOP)
class ThrottledOpError(ZookeeperError): ...
