# -*- test-case-name: tests.unit.test_jute -*-
"""Declare jute records as frozen dataclasses with a field-type schema.

``@jute_record("int", "long", vector(ACL), Stat)`` on a dataclass generates
``write(writer)`` and ``read(reader)`` from the schema, in field order.  The
methods are generated source (as dataclasses itself does) because records sit
on the hot path of every request and reply.
"""
from __future__ import annotations

import dataclasses
import struct
from typing import Any, Callable, ClassVar, Self, TypeVar, dataclass_transform

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


_FIXED = {"int": "i", "long": "q", "byte": "b", "bool": "?"}


def _runs(schema: tuple[object, ...]) -> list[tuple[int, int]]:
    """Split field indexes into [start, end) runs; fixed-size primitives run together."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(schema):
        j = i + 1
        if schema[i] in _FIXED:
            while j < len(schema) and schema[j] in _FIXED:
                j += 1
        runs.append((i, j))
        i = j
    return runs


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


def _generate(schema: tuple[object, ...], fields: list[str], names: dict[str, object]) -> str:
    """Source of write() and read(); runs of fixed-size fields use one struct each."""
    writes: list[str] = []
    reads: list[str] = []
    for start, end in _runs(schema):
        if end - start > 1 or schema[start] in _FIXED:
            key = f"_s{len(names)}"
            fmt = struct.Struct(">" + "".join(_FIXED[str(t)] for t in schema[start:end]))
            names[key] = fmt
            args = ", ".join(f"self.{name}" for name in fields[start:end])
            writes.append(f"w.buf += {key}.pack({args})")
            targets = ", ".join(f"v{i}" for i in range(start, end))
            reads.append(f"{targets}, = {key}.unpack_from(r.buf, r._need({fmt.size}))")
        else:
            writes.append(_writer_expr(schema[start], f"self.{fields[start]}", names))
            reads.append(f"v{start} = {_reader_expr(schema[start], names)}")
    values = ", ".join(f"v{i}" for i in range(len(schema)))
    return (
        "def write(self, w):\n"
        + "".join(f"    {line}\n" for line in writes or ["pass"])
        + "def read(cls, r):\n"
        + "".join(f"    {line}\n" for line in reads)
        + f"    return cls({values})\n"
    )


def _fast_init(cls: Any, fields: list[str]) -> Any:
    """An ``__init__`` that fills the slots through their descriptors.

    A frozen dataclass's own ``__init__`` goes through ``object.__setattr__``
    per field, which costs twice as much; records are built on every request.
    The instances stay frozen: ``__setattr__`` still refuses later writes.
    """
    names: dict[str, object] = {f"_set_{name}": getattr(cls, name).__set__ for name in fields}
    params = ", ".join(fields)
    body = "".join(f"    _set_{name}(self, {name})\n" for name in fields) or "    pass\n"
    exec(f"def __init__(self, {params}):\n{body}" if fields else f"def __init__(self):\n{body}", names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    return init


def _record_writer(w: Writer, value: Any) -> None:
    value.write(w)


@dataclass_transform(frozen_default=True)
def jute_record(*schema: object) -> Callable[[type[R]], type[R]]:
    """Make a frozen, slotted dataclass whose fields follow ``schema``."""

    def wrap(cls: type[R]) -> type[R]:
        dc: Any = dataclasses.dataclass(frozen=True, slots=True)(cls)
        fields = [f.name for f in dataclasses.fields(dc)]
        if len(fields) != len(schema):
            raise TypeError(f"{cls.__name__}: {len(fields)} fields but {len(schema)} schema entries")
        names: dict[str, object] = {}
        exec(_generate(tuple(schema), fields, names), names)
        dc.__init__ = _fast_init(dc, fields)
        dc.SCHEMA = tuple(schema)
        dc.write = names["write"]
        dc.read = classmethod(names["read"])  # type: ignore[arg-type]
        return dc

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
