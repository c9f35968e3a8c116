# -*- test-case-name: tests.unit.test_jute -*-
"""Declare jute records as frozen dataclasses with a field-type schema.

``@jute_record("int", "long", vector(ACL), Stat)`` on a dataclass generates
``write(writer)`` and ``read(reader)`` from the schema, in field order.  The
methods are generated source (as dataclasses itself does) because records sit
on the hot path of every request and reply.

A vector of records (an ACL list, nearly always) remembers the last list it
read and the last it wrote, with their bytes: the next create with the same
ACL gets the same list object back, and writing that list again copies its
bytes.  Lists read from records are therefore shared and must never be
changed in place (nothing in zabd does; ZooKeeper shares them as well,
through its ACL cache).
"""
from __future__ import annotations

import dataclasses
import struct
from typing import Any, Callable, ClassVar, Self, TypeVar, dataclass_transform

from zabd.jute.codec import INT, JuteError, Reader, Writer, decode_lenient

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


_NULL = b"\xff\xff\xff\xff"
_UNSET = object()


def _write_lines(spec: object, value: str, names: dict[str, object]) -> list[str]:
    """Lines appending one field to ``buf`` (strings and buffers inline: they
    are in nearly every request, and a call per field is a measurable share)."""
    if spec == "ustring":
        return [f"v = {value}",
                "if v is None: buf += _NULL",
                "else:",
                "    v = v.encode('utf-8', 'surrogatepass')",
                "    buf += _INT.pack(len(v)); buf += v"]
    if spec == "buffer":
        return [f"v = {value}",
                "if v is None: buf += _NULL",
                "else: buf += _INT.pack(len(v)); buf += v"]
    if isinstance(spec, str):
        if spec not in PRIMITIVES:
            raise TypeError(f"unknown jute type {spec!r}")
        return [f"w.write_{spec}({value})"]
    if isinstance(spec, Vector):
        if isinstance(spec.item, str):
            key = f"_item{len(names)}"
            names[key] = getattr(Writer, f"write_{spec.item}")
            return [f"w.write_vector({value}, {key})"]
        memo = f"_wmemo{len(names)}"
        names[memo] = [b"", _UNSET]  # the last list written (kept alive) and its bytes
        return [f"v = {value}",
                f"if v is {memo}[1]: buf += {memo}[0]",
                "elif v is None: buf += _NULL",
                "else:",
                "    start = len(buf)",
                "    buf += _INT.pack(len(v))",
                "    for item in v: item.write(w)",
                f"    {memo}[0] = bytes(buf[start:]); {memo}[1] = v"]
    return [f"{value}.write(w)"]


def _read_lines(spec: object, target: str, names: dict[str, object]) -> list[str]:
    """Lines reading one field.  ``buf``, ``pos`` and ``end`` are locals kept in
    step with the reader; ``r.pos`` is only brought up to date around calls."""
    if spec in ("ustring", "buffer"):
        # Reader.read_buffer, inline; errors go through Reader._need.
        lines = ["if pos + 4 > end: r.pos = pos; r._need(4)",
                 "n, = _INT.unpack_from(buf, pos)",
                 "pos += 4",
                 f"if n == -1: {target} = None",
                 "else:",
                 "    if n < -1 or n > r.max_length: _bad_length(n, pos - 4)",
                 "    if pos + n > end: r.pos = pos; r._need(n)"]
        if spec == "buffer":
            return lines + [f"    {target} = bytes(buf[pos:pos + n]); pos += n"]
        return lines + ["    raw = bytes(buf[pos:pos + n]); pos += n",
                        f"    try: {target} = raw.decode('utf-8')",
                        f"    except UnicodeDecodeError: {target} = _lenient(raw)"]
    if isinstance(spec, str):
        call = f"{target} = r.read_{spec}()"
    elif isinstance(spec, Vector) and not isinstance(spec.item, str):
        # Remembered (ACL lists come with every create); Reader.read_vector on a miss.
        key = f"_t{len(names)}"
        names[key] = spec.item
        memo = f"_rmemo{len(names)}"
        names[memo] = [None, None]  # the bytes of the last list read, and the list
        return [f"raw = {memo}[0]",
                "if raw is not None and pos + len(raw) <= end and buf[pos:pos + len(raw)] == raw:",
                f"    {target} = {memo}[1]; pos += len(raw)",
                "else:",
                "    start = r.pos = pos",
                f"    {target} = r.read_vector({key}.read)",
                "    pos = r.pos",
                f"    {memo}[0] = bytes(buf[start:pos]); {memo}[1] = {target}"]
    else:
        key = f"_t{len(names)}"
        if isinstance(spec, Vector):
            names[key] = getattr(Reader, f"read_{spec.item}")
            call = f"{target} = r.read_vector({key})"
        else:
            names[key] = spec
            call = f"{target} = {key}.read(r)"
    return ["r.pos = pos", call, "pos = r.pos"]


def _generate(schema: tuple[object, ...], fields: list[str], names: dict[str, object]) -> str:
    """Source of write() and read(); runs of fixed-size fields use one struct each."""
    names.update(_NULL=_NULL, _INT=INT, _bad_length=_bad_length, _lenient=decode_lenient)
    writes: list[str] = ["buf = w.buf"]
    reads: list[str] = ["buf = r.buf; pos = r.pos; end = r.end"]
    for start, end in _runs(schema):
        if end - start > 1 or schema[start] in _FIXED:
            key = f"_s{len(names)}"
            fmt = struct.Struct(">" + "".join(_FIXED[str(t)] for t in schema[start:end]))
            names[key] = fmt
            args = ", ".join(f"self.{name}" for name in fields[start:end])
            writes.append(f"buf += {key}.pack({args})")
            targets = ", ".join(f"v{i}" for i in range(start, end))
            reads += [f"if pos + {fmt.size} > end: r.pos = pos; r._need({fmt.size})",
                      f"{targets}, = {key}.unpack_from(buf, pos)",
                      f"pos += {fmt.size}"]
        else:
            writes += _write_lines(schema[start], f"self.{fields[start]}", names)
            reads += _read_lines(schema[start], f"v{start}", names)
    values = ", ".join(f"v{i}" for i in range(len(schema)))
    return (
        "def write(self, w):\n"
        + "".join(f"    {line}\n" for line in writes)
        + "def read(cls, r):\n"
        + "".join(f"    {line}\n" for line in reads)
        + "    r.pos = pos\n"
        + f"    return cls({values})\n"
    )


def _bad_length(n: int, offset: int) -> None:
    raise JuteError(f"invalid length {n} at offset {offset}")


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
