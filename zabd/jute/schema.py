# -*- test-case-name: tests.unit.test_jute -*-
"""Declare jute records as frozen dataclasses with a field-type schema.

``@jute_record("int", "long", vector(ACL), Stat)`` on a dataclass generates
``write(writer)`` and ``read(reader)`` from the schema, in field order.  The
methods are generated source (as dataclasses itself does) because records sit
on the hot path of every request and reply.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Self, TypeVar

from zabd.jute.codec import JuteError, Reader, Writer

PRIMITIVES = ("int", "long", "byte", "bool", "buffer", "ustring")


class Record:
    """Base of every jute record; ``jute_record`` fills in the two methods."""

    __slots__ = ()
    SCHEMA: ClassVar[tuple[object, ...]] = ()

    def write(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def read(cls, r: Reader) -> Self:
        raise NotImplementedError


R = TypeVar("R", bound=Record)


@dataclasses.dataclass(frozen=True)
class Vector:
    """Schema marker: a jute vector of a primitive or a record type."""

    item: object


def vector(item: object) -> Vector:
    return Vector(item)


def _writer_expr(spec: object, value: str, names: dict[str, object]) -> str:
    if isinstance(spec, str):
        if spec not in PRIMITIVES:
            raise TypeError(f"unknown jute type {spec!r}")
        return f"w.write_{spec}({value})"
    if isinstance(spec, Vector):
        key = f"_item{len(names)}"
        if isinstance(spec.item, str):
            names[key] = getattr(Writer, f"write_{spec.item}")
        else:
            names[key] = _record_writer
        return f"w.write_vector({value}, {key})"
    return f"{value}.write(w)"


def _reader_expr(spec: object, names: dict[str, object]) -> str:
    if isinstance(spec, str):
        return f"r.read_{spec}()"
    key = f"_t{len(names)}"
    if isinstance(spec, Vector):
        names[key] = (
            getattr(Reader, f"read_{spec.item}") if isinstance(spec.item, str) else getattr(spec.item, "read")
        )
        return f"r.read_vector({key})"
    names[key] = spec
    return f"{key}.read(r)"


def _record_writer(w: Writer, value: Any) -> None:
    value.write(w)


def jute_record(*schema: object) -> Callable[[type[R]], type[R]]:
    """Make a frozen, slotted dataclass whose fields follow ``schema``."""

    def wrap(cls: type[R]) -> type[R]:
        dc: Any = dataclasses.dataclass(frozen=True, slots=True)(cls)
        fields = [f.name for f in dataclasses.fields(dc)]
        if len(fields) != len(schema):
            raise TypeError(f"{cls.__name__}: {len(fields)} fields but {len(schema)} schema entries")
        names: dict[str, object] = {}
        writes = [_writer_expr(spec, f"self.{name}", names) for name, spec in zip(fields, schema)]
        reads = [_reader_expr(spec, names) for spec in schema]
        source = (
            "def write(self, w):\n"
            + "".join(f"    {line}\n" for line in writes or ["pass"])
            + "def read(cls, r):\n"
            + f"    return cls({', '.join(reads)})\n"
        )
        exec(source, names)
        dc.SCHEMA = tuple(schema)
        dc.write = names["write"]
        dc.read = classmethod(names["read"])  # type: ignore[arg-type]
        return dc  # type: ignore[no-any-return]

    return wrap


def encode(record: Record) -> bytes:
    """Serialize one record to bytes."""
    w = Writer()
    record.write(w)
    return bytes(w.buf)


def decode(cls: type[R], data: bytes, *, exact: bool = True) -> R:
    """Deserialize ``cls`` from ``data``; with ``exact``, trailing bytes are an error."""
    r = Reader(data)
    value = cls.read(r)
    if exact and not r.at_end():
        raise JuteError(f"{r.remaining()} trailing bytes after {cls.__name__}")
    return value
