# -*- test-case-name: tests.unit.test_operator_logs -*-
"""Operator logs: the structured events zabd emits, and a JSON-lines observer for them.

Every log call in zabd goes through ``twisted.logger`` with named fields, so
the text twistd prints by default and a machine-readable form come from the
same events. Five events matter to operators and carry an ``event`` field
naming them, with the fields listed in :data:`EVENTS`; each is logged
exactly once where it happens.

JSON lines instead of text::

    twistd -n --logger zabd.logs.json_observer zabd --config zoo.cfg

writes one JSON object per line on standard output: ``time`` (seconds since
the epoch), ``level``, ``namespace``, ``text`` (the readable message) and
every field of the event that is not twisted's own (``log_*``).
"""
from __future__ import annotations

import enum
import json
import sys
from typing import IO, Any

from constantly import NamedConstant
from twisted.logger import ILogObserver, LogEvent, formatEvent
from zope.interface import implementer

#: The ``event`` field of each operator event, and the fields it carries.
EVENTS: dict[str, tuple[str, ...]] = {
    "election": ("myid", "winner", "epoch", "duration_ms", "state"),
    "learner_sync": ("side", "sid", "sync_type", "from_zxid", "to_zxid", "duration_ms"),
    "session_expired": ("session_id", "timeout_ms"),
    "slow_fsync": ("duration_ms", "threshold_ms", "txns", "zxid"),
    "snapshot": ("zxid", "nodes", "bytes", "duration_ms", "path"),
}
ELECTION, LEARNER_SYNC, SESSION_EXPIRED, SLOW_FSYNC, SNAPSHOT = EVENTS


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (enum.Enum, NamedConstant)):  # PeerState, LogLevel: their name
        return value.name
    return str(value)


def event_as_json(event: LogEvent) -> str:
    """One event as a single-line JSON object."""
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": event.get("log_time"),
        "level": getattr(level, "name", None),
        "namespace": event.get("log_namespace"),
        "text": formatEvent(event),
    }
    failure = event.get("log_failure")
    if failure is not None:
        record["failure"] = failure.getTraceback()
    for key, value in event.items():
        if not key.startswith("log_") and key not in record:
            record[key] = _jsonable(value)
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


@implementer(ILogObserver)
class JsonLinesObserver:
    """Writes each event to ``stream`` as one JSON object and a newline."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, event: LogEvent) -> None:
        self.stream.write(event_as_json(event) + "\n")
        self.stream.flush()


def json_observer() -> JsonLinesObserver:
    """The observer factory for ``twistd --logger zabd.logs.json_observer``: JSON lines on stdout."""
    return JsonLinesObserver(sys.stdout)
