"""Tests for zabd.jute: the codec, every record's round trip, golden bytes, hostile input."""
from __future__ import annotations

import inspect
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from zabd.jute import multi, records, txns
from zabd.jute.codec import DEFAULT_MAX_BUFFER, JuteError, Reader, Writer
from zabd.jute.errors import Code
from zabd.jute.opcodes import OpCode, Perms
from zabd.jute.records import (
    ACL,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    Id,
    MultiHeader,
    SetDataRequest,
)
from zabd.jute.schema import Record, Vector, decode, encode
from zabd.jute.txns import (
    BODY_TYPES,
    CloseSessionTxn,
    CreateTxn,
    ErrorTxn,
    MultiTxn,
    Txn,
    TxnDigest,
    TxnHeader,
)

RECORDS: list[type[Record]] = sorted(
    {
        cls
        for module in (records, txns)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Record) and cls is not Record and cls.SCHEMA
    },
    key=lambda cls: cls.__name__,
)

INT = st.integers(-(2**31), 2**31 - 1)
LONG = st.integers(-(2**63), 2**63 - 1)
_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "int": INT,
    "long": LONG,
    "byte": st.integers(-128, 127),
    "bool": st.booleans(),
    "buffer": st.none() | st.binary(max_size=40),
    "ustring": st.none() | st.text(max_size=12),
}


def strategy_for(spec: object) -> st.SearchStrategy[Any]:
    if isinstance(spec, str):
        return _PRIMITIVES[spec]
    if isinstance(spec, Vector):
        return st.none() | st.lists(strategy_for(spec.item), max_size=4)
    assert isinstance(spec, type) and issubclass(spec, Record)
    return records_of(spec)


def records_of(cls: type[Record]) -> st.SearchStrategy[Any]:
    return st.builds(cls, *(strategy_for(spec) for spec in cls.SCHEMA))


def test_every_record_is_covered() -> None:
    names = {cls.__name__ for cls in RECORDS}
    assert {"ConnectRequest", "Stat", "CreateTxn", "SetWatches2", "TxnHeader", "SubTxn"} <= names
    assert len(RECORDS) >= 45


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_record_round_trip(cls: type[Record], data: st.DataObject) -> None:
    value = data.draw(records_of(cls))
    raw = encode(value)
    assert decode(cls, raw) == value
    # Re-encoding is byte-identical, and every strict prefix is refused.
    assert encode(decode(cls, raw)) == raw
    if raw:
        cut = data.draw(st.integers(0, len(raw) - 1))
        with pytest.raises(JuteError):
            decode(cls, raw[:cut])


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
@settings(max_examples=25, deadline=None)
@given(raw=st.binary(max_size=80))
def test_arbitrary_bytes_into_read_raise_only_jute_error(cls: type[Record], raw: bytes) -> None:
    try:
        cls.read(Reader(raw))
    except JuteError:
        pass


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=120))
def test_arbitrary_bytes_into_multi_read_ops_raise_only_jute_error(raw: bytes) -> None:
    for allowed in (multi.WRITE_OPS, multi.READ_OPS):
        try:
            multi.read_ops(raw, allowed)
        except JuteError:
            pass


# ---- primitives ------------------------------------------------------------------


def test_primitives_are_big_endian_twos_complement() -> None:
    w = Writer()
    w.write_int(-2)
    w.write_long(1)
    w.write_byte(-1)
    w.write_bool(True)
    w.write_bool(False)
    assert w.getvalue() == bytes.fromhex("fffffffe 0000000000000001 ff 01 00")
    r = Reader(w.getvalue())
    assert (r.read_int(), r.read_long(), r.read_byte(), r.read_bool(), r.read_bool()) == (-2, 1, -1, True, False)
    assert r.at_end()


def test_any_nonzero_byte_reads_as_true() -> None:
    assert Reader(b"\x07").read_bool() is True


def test_null_string_buffer_and_vector_are_minus_one() -> None:
    w = Writer()
    w.write_ustring(None)
    w.write_buffer(None)
    w.write_vector(None, Writer.write_int)
    assert w.getvalue() == b"\xff\xff\xff\xff" * 3
    r = Reader(w.getvalue())
    assert r.read_ustring() is None
    assert r.read_buffer() is None
    assert r.read_vector(Reader.read_int) is None


def test_empty_buffer_is_distinct_from_null() -> None:
    w = Writer()
    w.write_buffer(b"")
    assert w.getvalue() == b"\x00\x00\x00\x00"
    assert Reader(w.getvalue()).read_buffer() == b""


def test_null_fields_round_trip_in_records() -> None:
    value = CreateRequest(None, None, None, 0)
    assert encode(value) == b"\xff\xff\xff\xff" * 3 + b"\x00\x00\x00\x00"
    assert decode(CreateRequest, encode(value)) == value


def test_cesu8_surrogate_pairs_are_read_leniently() -> None:
    # U+1F600 as Java writes it: two 3-byte surrogate sequences.
    cesu = "\ud83d\ude00".encode("utf-8", "surrogatepass")
    assert Reader(struct.pack(">i", len(cesu)) + cesu).read_ustring() == "\U0001f600"
    # Garbage decodes with replacement characters rather than failing.
    assert Reader(b"\x00\x00\x00\x02\xff\xfe").read_ustring() == "\ufffd\ufffd"


@pytest.mark.parametrize("length", [-2, -(2**31), DEFAULT_MAX_BUFFER * 2 + 1, 2**31 - 1])
@pytest.mark.parametrize("method", ["read_buffer", "read_ustring"])
def test_insane_lengths_are_refused(length: int, method: str) -> None:
    with pytest.raises(JuteError):
        getattr(Reader(struct.pack(">i", length) + b"x" * 16), method)()


def test_length_limit_is_configurable() -> None:
    raw = struct.pack(">i", 5) + b"hello"
    assert Reader(raw, max_length=5).read_buffer() == b"hello"
    with pytest.raises(JuteError):
        Reader(raw, max_length=4).read_buffer()


@pytest.mark.parametrize("count", [-2, 1, 2**31 - 1])
def test_vector_count_beyond_the_input_is_refused(count: int) -> None:
    with pytest.raises(JuteError):
        Reader(struct.pack(">i", count)).read_vector(Reader.read_int)


@pytest.mark.parametrize("method", ["read_int", "read_long", "read_byte", "read_bool", "read_buffer"])
def test_truncated_primitives_are_refused(method: str) -> None:
    with pytest.raises(JuteError):
        getattr(Reader(b""), method)()
    with pytest.raises(JuteError):
        Reader(b"\x00\x00\x00\x05abc").read_buffer()


def test_decode_refuses_trailing_bytes_unless_told() -> None:
    raw = encode(Id("world", "anyone")) + b"\x00"
    with pytest.raises(JuteError):
        decode(Id, raw)
    assert decode(Id, raw, exact=False) == Id("world", "anyone")


def test_reader_respects_end() -> None:
    r = Reader(b"\x00\x00\x00\x01\x00\x00\x00\x02", end=4)
    assert r.read_int() == 1
    with pytest.raises(JuteError):
        r.read_int()


# ---- golden bytes from the protocol doc --------------------------------------------

CONNECT_REQUEST_FRAME = bytes.fromhex(
    "0000002d 00000000 0000000000000000 000186a0 0000000000000000 00000010" + "00" * 16 + "00"
)
CONNECT_RESPONSE_BODY = bytes.fromhex(
    "00000000 00009c40 0100000ffe0f0000 00000010 4372f460140a1623590ee1077d5a658b 00"
)
CREATE_TXN_ENTRY = bytes.fromhex(
    "0000005b"
    "0100000ffe0f0000 00000001 0000000000000002 000001a20110eadd 00000001"
    "00000002 2f61  00000005 68656c6c6f  00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65  00  00000001"
    "00000002 0000000094673047"
    "42"
)
FAILED_MULTI_BODY = bytes.fromhex(
    "ffffffff 00 00000000 00000000  ffffffff 00 ffffff99 ffffff99"
    "ffffffff 00 fffffffe fffffffe  ffffffff 01 ffffffff"
)


def test_connect_request_golden() -> None:
    body = CONNECT_REQUEST_FRAME[4:]
    assert struct.unpack(">i", CONNECT_REQUEST_FRAME[:4])[0] == len(body) == 45
    r = Reader(body)
    request = ConnectRequest.read(r)
    assert request == ConnectRequest(0, 0, 100000, 0, bytes(16))
    assert r.read_bool() is False and r.at_end()
    assert encode(request) + b"\x00" == body


def test_connect_response_golden() -> None:
    response = ConnectResponse(0, 40000, 0x0100000FFE0F0000, bytes.fromhex("4372f460140a1623590ee1077d5a658b"))
    assert encode(response) + b"\x00" == CONNECT_RESPONSE_BODY
    assert len(encode(response)) == 36
    assert decode(ConnectResponse, CONNECT_RESPONSE_BODY, exact=False) == response


def test_create_txn_entry_golden() -> None:
    length = struct.unpack(">i", CREATE_TXN_ENTRY[:4])[0]
    entry = CREATE_TXN_ENTRY[4 : 4 + length]
    assert CREATE_TXN_ENTRY[4 + length :] == b"B"
    txn = Txn.from_bytes(entry)
    assert txn.header == TxnHeader(0x0100000FFE0F0000, 1, 2, 0x000001A20110EADD, OpCode.create)
    assert txn.body == CreateTxn("/a", b"hello", [ACL(Perms.ALL, Id("world", "anyone"))], False, 1)
    assert txn.digest == TxnDigest(2, 0x94673047)
    assert txn.to_bytes() == entry


def test_failed_multi_response_golden() -> None:
    response = multi.MultiResponse((
        multi.OpResult(OpCode.error, 0, None),
        multi.OpResult(OpCode.error, Code.BADVERSION, None),
        multi.OpResult(OpCode.error, Code.RUNTIMEINCONSISTENCY, None),
    ))
    assert encode(response) == FAILED_MULTI_BODY


def test_multi_request_encoding_and_decoding() -> None:
    ops: list[tuple[int, Record]] = [
        (OpCode.create, CreateRequest("/a", b"x", [ACL(31, Id("world", "anyone"))], 0)),
        (OpCode.setData, SetDataRequest("/a", b"y", -1)),
    ]
    raw = multi.write_ops(ops)
    assert raw.endswith(encode(MultiHeader(-1, True, -1)))
    assert raw.startswith(encode(MultiHeader(OpCode.create, False, -1)))
    assert multi.read_ops(raw, multi.WRITE_OPS) == ops
    with pytest.raises(JuteError):
        multi.read_ops(raw, multi.READ_OPS)
    with pytest.raises(JuteError):
        multi.read_ops(raw[:-1], multi.WRITE_OPS)


# ---- txns ------------------------------------------------------------------------

_SINGLE_KINDS = [k for k in BODY_TYPES if k not in (OpCode.closeSession,)]
_SUB_KINDS = [OpCode.create, OpCode.createTTL, OpCode.createContainer, OpCode.delete,
              OpCode.setData, OpCode.setACL, OpCode.check, OpCode.error]


@st.composite
def txn_strategy(draw: st.DrawFn) -> Txn:
    kind = draw(st.sampled_from(_SINGLE_KINDS + [OpCode.closeSession, OpCode.multi]))
    body: Any
    if kind == OpCode.multi:
        subs = draw(st.lists(st.sampled_from(_SUB_KINDS), max_size=4))
        body = MultiTxn(tuple((k, draw(records_of(BODY_TYPES[k]))) for k in subs))
    elif kind == OpCode.closeSession:
        body = draw(st.none() | st.builds(CloseSessionTxn, st.lists(st.text(max_size=8), max_size=3)))
    else:
        body = draw(records_of(BODY_TYPES[kind]))
    header = TxnHeader(draw(LONG), draw(INT), draw(LONG), draw(LONG), kind)
    digest = draw(st.none() | st.builds(TxnDigest, INT, LONG))
    if body is None:
        digest = None  # a bare closeSession: nothing may follow the header
    return Txn(header, body, digest)


@settings(max_examples=60, deadline=None)
@given(txn=txn_strategy())
def test_txn_round_trip(txn: Txn) -> None:
    assert Txn.from_bytes(txn.to_bytes()) == txn


def test_txn_without_digest_and_bare_close_session() -> None:
    header = TxnHeader(5, 0, 9, 0, OpCode.closeSession)
    assert Txn.from_bytes(encode(header)) == Txn(header, None, None)
    error = Txn(TxnHeader(5, 1, 10, 0, OpCode.error), ErrorTxn(Code.NODEEXISTS))
    assert Txn.from_bytes(error.to_bytes()) == error


def _multi_entry(*subs: tuple[int, bytes | None]) -> bytes:
    w = Writer()
    TxnHeader(1, 1, 1, 0, OpCode.multi).write(w)
    w.write_int(len(subs))
    for kind, data in subs:
        w.write_int(kind)
        w.write_buffer(data)
    return w.getvalue()


#: A MultiTxn whose sub-txn buffer is null (length -1).
NULL_SUB_DATA = _multi_entry((OpCode.delete, None))
#: A MultiTxn with a sub-txn of a type that has no body record.
UNKNOWN_SUB_TYPE = _multi_entry((OpCode.getData, b""))


def test_txn_reader_refuses_null_sub_txn_data_with_jute_error() -> None:
    with pytest.raises(JuteError):
        Txn.from_bytes(NULL_SUB_DATA)


def test_txn_reader_refuses_unknown_sub_txn_type_with_jute_error() -> None:
    with pytest.raises(JuteError):
        Txn.from_bytes(UNKNOWN_SUB_TYPE)


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=120) | st.builds(lambda a, b: a + b, st.just(NULL_SUB_DATA[:32]), st.binary()))
@example(raw=NULL_SUB_DATA)
def test_arbitrary_bytes_into_txn_reader_raise_only_jute_error(raw: bytes) -> None:
    try:
        Txn.from_bytes(raw)
    except JuteError:
        pass


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=120))
def test_arbitrary_bytes_into_single_txn_reader_raise_only_jute_error(raw: bytes) -> None:
    """Every non-multi header type: the body readers are plain records."""
    for kind in list(BODY_TYPES) + [OpCode.closeSession]:
        try:
            Txn.from_bytes(encode(TxnHeader(1, 1, 1, 0, kind)) + raw)
        except JuteError:
            pass
