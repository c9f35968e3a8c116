"""Tests for zabd.core.acl.

Vectors marked "Java" were produced with the Debian zookeeper 3.8.0 jar
(IPAuthenticationProvider, DigestAuthenticationProvider, fixupACL, checkACL,
ConcurrentHashMap iteration) or observed on a real 3.8.0 server.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zabd.core.acl import (
    ANYONE,
    AUTH_IDS,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    SUPER,
    AuthIds,
    AuthProviders,
    acl_for_get,
    check_acl,
    digest,
    has_perm,
    java_decode,
    mask_for_get_acl,
    normalize_acls,
    who_am_i,
)
from zabd.jute.errors import Code, KeeperError
from zabd.jute.opcodes import Perms
from zabd.jute.records import ACL, Id

# Real 3.8.0 server digests.
USER = "user:2Om+GBbT2q/tS6pdvACZbbm7/1A="  # user:pw
BOB = "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="  # bob:secret
SUPER_DIGEST = "super:lK75jTNcA+U9vtVEw5vB51mj/w4="  # super:secret
IP = Id("ip", "127.0.0.1")

providers = AuthProviders(super_digest=SUPER_DIGEST)


def test_constants() -> None:
    assert ANYONE == Id("world", "anyone")
    assert SUPER == Id("super", "")
    assert AUTH_IDS == Id("auth", "")
    assert OPEN_ACL_UNSAFE == [ACL(31, ANYONE)]
    assert CREATOR_ALL_ACL == [ACL(31, Id("auth", ""))]
    assert READ_ACL_UNSAFE == [ACL(1, ANYONE)]


def test_digest() -> None:
    assert digest("user:pw") == USER
    assert digest("bob:secret") == BOB
    assert digest("super:secret") == SUPER_DIGEST
    # Only the part before the first ':' is the user; the hash covers everything.
    assert digest("a:b:c").startswith("a:")
    assert digest("a:b:c") != digest("a:b")
    assert digest("nocolon").startswith("nocolon:")


def test_authenticate_digest_and_super() -> None:
    assert providers.authenticate("digest", b"user:pw", "10.0.0.1") == [Id("digest", USER)]
    # ZooKeeper adds super before the digest id.
    assert providers.authenticate("digest", b"super:secret", "10.0.0.1") == [SUPER, Id("digest", SUPER_DIGEST)]
    assert AuthProviders().authenticate("digest", b"super:secret", "x") == [Id("digest", SUPER_DIGEST)]


def test_authenticate_ip_ignores_payload() -> None:
    assert providers.authenticate("ip", b"1.2.3.4", "127.0.0.1") == [IP]


@pytest.mark.parametrize("scheme", ["super", "world", "auth", "sasl", "x509", "", "DIGEST"])
def test_authenticate_unknown_scheme_fails(scheme: str) -> None:
    with pytest.raises(KeeperError) as info:
        providers.authenticate(scheme, b"user:pw", "127.0.0.1")
    assert info.value.code == Code.AUTHFAILED


def test_digest_can_be_disabled() -> None:
    off = AuthProviders(digest_enabled=False)
    with pytest.raises(KeeperError):
        off.authenticate("digest", b"user:pw", "127.0.0.1")
    assert not off.is_valid(Id("digest", USER))
    assert not off.has_provider("digest")
    assert off.has_provider("ip")
    assert who_am_i([Id("digest", USER)], off) == [("digest", "")]


# Java's new String(bytes, UTF_8).
@pytest.mark.parametrize(
    "raw, text",
    [
        ("eda080", "\ufffd"),
        ("eda03a", "\ufffd:"),
        ("eda0", "\ufffd"),
        ("edbfbf", "\ufffd"),
        ("ed9fbf", "\ud7ff"),
        ("eda080eda080", "\ufffd\ufffd"),
        ("f4908080", "\ufffd" * 4),
        ("e09fbf", "\ufffd" * 3),
        ("c23a", "\ufffd:"),
        ("e28228", "\ufffd("),
        ("f09f98", "\ufffd"),
        ("c0af", "\ufffd\ufffd"),
        ("f09f9880", "\U0001f600"),
    ],
)
def test_java_decode(raw: str, text: str) -> None:
    assert java_decode(bytes.fromhex(raw)) == text


def test_java_replace_handler_is_for_decoding_only() -> None:
    with pytest.raises(UnicodeEncodeError):
        "\udcff".encode("ascii", "zabd.java-replace")


def test_digest_of_malformed_utf8_matches_java() -> None:
    # generateDigest(new String(bytes, UTF_8)) from Java.
    ids = providers.authenticate("digest", bytes.fromhex("eda0803a7a"), "x")
    assert ids == [Id("digest", "\ufffd:pI2svVdo4PtzhTMycXuB/+dWxFc=")]


# Java: DigestAuthenticationProvider.isValid (split(":") must give 2 parts).
@pytest.mark.parametrize(
    "ident, valid",
    [
        ("user:hash", True),
        (":hash", True),
        ("a:b:", True),
        ("a:b\nc", True),
        ("user:", False),
        ("a::", False),
        (":", False),
        ("", False),
        ("a::b", False),
        ("a:b:c", False),
        ("abc", False),
    ],
)
def test_digest_is_valid(ident: str, valid: bool) -> None:
    assert providers.is_valid(Id("digest", ident)) is valid


# Java: IPAuthenticationProvider.isValid (IPv4 only in 3.8).
@pytest.mark.parametrize(
    "ident, valid",
    [
        ("127.0.0.1", True),
        ("10.0.0.0/8", True),
        ("1.2.3.4/0", True),
        ("1.2.3.4/32", True),
        ("+1.2.3.4", True),
        ("-0.0.0.0", True),
        ("1.2.3.4/+8", True),
        ("001.002.003.004", True),
        ("\u0663.1.1.1", True),  # Arabic-Indic digit three: Java's parseInt takes it
        ("10.1.2.3/33", False),
        ("10.1.2.3/-1", False),
        ("10.1.2.3/", False),
        ("1.2.3", False),
        ("1.2.3.4.5", False),
        ("256.1.1.1", False),
        ("::1", False),
        ("0:0:0:0:0:0:0:1", False),
        ("1.2.3.4/24/1", False),
        (" 1.2.3.4", False),
        ("1.2.3.4 ", False),
        ("1..2.3", False),
        ("", False),
        ("/", False),
    ],
)
def test_ip_is_valid(ident: str, valid: bool) -> None:
    assert providers.is_valid(Id("ip", ident)) is valid


def test_other_schemes_validity() -> None:
    assert providers.is_valid(ANYONE)
    assert not providers.is_valid(Id("world", "nobody"))
    assert not providers.is_valid(SUPER)
    assert not providers.is_valid(Id("sasl", "bob"))
    assert not providers.is_valid(Id("digest", None))  # type: ignore[arg-type]


# Java: IPAuthenticationProvider.matches(client, aclExpr).
@pytest.mark.parametrize(
    "client, expr, match",
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.1/32", True),
        ("127.0.0.2", "127.0.0.1", False),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("10.200.2.3", "10.0.0.0/8", True),
        ("11.0.0.1", "10.0.0.0/8", False),
        ("1.2.3.5", "1.2.3.4/31", True),
        ("1.2.3.6", "1.2.3.4/31", False),
        ("1.2.3.7", "1.2.3.4/30", True),
        ("1.2.3.5", "1.2.3.4/29", True),
        ("255.255.255.255", "0.0.0.0/0", True),
        ("192.168.1.1", "192.168.0.0/16", True),
        ("192.169.1.1", "192.168.0.0/16", False),
        ("::1", "0.0.0.0/0", False),
        ("x", "0.0.0.0/0", False),
        ("1.2.3.4", "1.2.3.4/33", False),
        ("1.2.3.4", "garbage", False),
    ],
)
def test_ip_matches(client: str, expr: str, match: bool) -> None:
    assert providers.matches(Id("ip", expr), Id("ip", client)) is match


def test_matches_other_schemes() -> None:
    assert providers.matches(ANYONE, IP)
    assert providers.matches(Id("digest", USER), Id("digest", USER))
    assert not providers.matches(Id("digest", USER), Id("digest", BOB))
    assert not providers.matches(Id("digest", USER), Id("ip", USER))
    assert not providers.matches(Id("sasl", "a"), Id("sasl", "a"))


# Java: iteration order of ServerCnxn.authInfo (a ConcurrentHashMap key set).
@pytest.mark.parametrize(
    "added, listed",
    [
        ([IP, Id("digest", USER)], [Id("digest", USER), IP]),
        ([IP, Id("digest", BOB)], [Id("digest", BOB), IP]),
        ([IP, SUPER, Id("digest", SUPER_DIGEST)], [SUPER, Id("digest", SUPER_DIGEST), IP]),
        ([IP, Id("digest", USER), Id("digest", BOB)], [Id("digest", BOB), Id("digest", USER), IP]),
        ([IP, SUPER, Id("digest", "super:D/InIHSb7yEEbrWz8b9l71RjZJU=")],
         [SUPER, IP, Id("digest", "super:D/InIHSb7yEEbrWz8b9l71RjZJU=")]),
    ],
)
def test_auth_ids_order(added: list[Id], listed: list[Id]) -> None:
    ids = AuthIds(added)
    assert list(ids) == listed
    assert len(ids) == len(listed)
    assert ids[0] == listed[0]
    assert ids[-1:] == listed[-1:]
    assert all(i in ids for i in added)


_MANY_IN = (
    "digest u807:d75d1a3;digest u744:75d6a35d;ip u747:a1a21a80;digest u295:2de4dd0e;ip u229:7b384f91;"
    "ip u328:6bc4cd5d;digest u532:c1f467db;ip u911:50b95daa;ip u275:57ec5114;ip u104:df2f3ddb;"
    "digest u31:406f233d;ip u795:5fd603dd;digest u246:25906e78;ip u323:3236b1f8;digest u322:48e91907;"
    "digest u402:76a155a0;digest u238:ffb95478;digest u168:a296a2bb;ip u627:17bab863;digest u27:6fe0fa2;"
    "ip u904:77fade46;ip u93:a7b1943e;digest u630:78c7bd66;digest u755:6275db12;digest u600:fa42cebe;"
    "ip u441:e4dffd18;digest u740:48af8064"
)
_MANY_OUT = (
    "ip u275:57ec5114;ip u104:df2f3ddb;digest u755:6275db12;ip u229:7b384f91;ip u441:e4dffd18;"
    "digest u532:c1f467db;digest u402:76a155a0;ip u328:6bc4cd5d;digest u238:ffb95478;ip u795:5fd603dd;"
    "digest u168:a296a2bb;digest u600:fa42cebe;digest u295:2de4dd0e;digest u807:d75d1a3;ip u904:77fade46;"
    "digest u322:48e91907;ip u93:a7b1943e;digest u744:75d6a35d;digest u630:78c7bd66;digest u27:6fe0fa2;"
    "ip u747:a1a21a80;ip u911:50b95daa;digest u246:25906e78;digest u31:406f233d;ip u627:17bab863;"
    "digest u740:48af8064;ip u323:3236b1f8"
)


def _ids(text: str) -> list[Id]:
    return [Id(*item.split(" ")) for item in text.split(";")]


def test_auth_ids_order_through_two_resizes() -> None:
    ids = AuthIds()
    ids.add_all(_ids(_MANY_IN))
    assert list(ids) == _ids(_MANY_OUT)


def test_auth_ids_add_is_a_set_add() -> None:
    ids = AuthIds([IP])
    assert not ids.add(Id("ip", "127.0.0.1"))
    assert ids.add(Id("digest", USER))
    assert len(ids) == 2
    assert ids.has_scheme("digest")
    assert not ids.has_scheme("super")
    assert "AuthIds" in repr(ids)
    ids.add(Id("x\U0001f600y", "z"))  # non-BMP text hashes as UTF-16, like Java
    assert len(ids) == 3


def test_normalize_dedupes_keeping_first() -> None:
    acls = [ACL(1, ANYONE), ACL(31, Id("digest", USER)), ACL(1, ANYONE), ACL(31, Id("digest", USER))]
    assert normalize_acls(acls, [IP], providers) == [ACL(1, ANYONE), ACL(31, Id("digest", USER))]


@pytest.mark.parametrize("acls", [None, []])
def test_normalize_empty_is_invalid(acls: list[ACL] | None) -> None:
    with pytest.raises(KeeperError) as info:
        normalize_acls(acls, [IP], providers, path="/p")
    assert info.value.code == Code.INVALIDACL
    assert info.value.path == "/p"


def test_normalize_expands_auth_in_auth_ids_order() -> None:
    ids = AuthIds([IP, Id("digest", USER), Id("digest", BOB)])
    out = normalize_acls([ACL(5, Id("auth", "")), ACL(1, ANYONE)], ids, providers)
    assert out == [ACL(5, Id("digest", BOB)), ACL(5, Id("digest", USER)), ACL(1, ANYONE)]


def test_normalize_auth_skips_ip_and_super() -> None:
    ids = AuthIds([IP, SUPER, Id("digest", SUPER_DIGEST)])
    assert normalize_acls(CREATOR_ALL_ACL, ids, providers) == [ACL(31, Id("digest", SUPER_DIGEST))]
    for only in ([IP], [IP, SUPER], []):
        with pytest.raises(KeeperError) as info:
            normalize_acls(CREATOR_ALL_ACL, only, providers)
        assert info.value.code == Code.INVALIDACL


def test_normalize_keeps_duplicates_made_by_expansion() -> None:
    # Observed on a real 3.8.0 server.
    acls = [ACL(31, Id("auth", "x")), ACL(31, Id("digest", USER)), ACL(31, Id("auth", "x"))]
    out = normalize_acls(acls, AuthIds([IP, Id("digest", USER)]), providers)
    assert out == [ACL(31, Id("digest", USER)), ACL(31, Id("digest", USER))]


@pytest.mark.parametrize(
    "ident",
    [Id("world", "nobody"), SUPER, Id("sasl", "bob"), Id("digest", "nocolon"), Id("ip", "::1"), Id(None, "x")],  # type: ignore[arg-type]
)
def test_normalize_rejects_invalid_ids(ident: Id) -> None:
    with pytest.raises(KeeperError) as info:
        normalize_acls([ACL(31, ident)], [IP], providers)
    assert info.value.code == Code.INVALIDACL


@pytest.mark.parametrize(
    "acls",
    [
        [ACL(1, Id("world", None))],  # type: ignore[arg-type]
        [ACL(1, Id("digest", None))],  # type: ignore[arg-type]
        [ACL(1, Id("ip", None))],  # type: ignore[arg-type]
        # kazoo sends "" as null: a repeated auth entry NPEs in removeDuplicates
        [ACL(31, Id("auth", None)), ACL(31, Id("auth", None))],  # type: ignore[arg-type]
        [ACL(1, ANYONE), ACL(1, Id(None, "x"))],  # type: ignore[arg-type]
    ],
)
def test_normalize_null_fields_fail_like_java_npe(acls: list[ACL]) -> None:
    with pytest.raises(KeeperError) as info:
        normalize_acls(acls, [IP, Id("digest", USER)], providers)
    assert info.value.code == Code.MARSHALLINGERROR


def test_normalize_null_auth_id_alone_is_fine() -> None:
    out = normalize_acls([ACL(31, Id("auth", None))], [Id("digest", USER)], providers)  # type: ignore[arg-type]
    assert out == [ACL(31, Id("digest", USER))]
    # Different perms never reach the null comparison in Java either.
    out = normalize_acls(
        [ACL(31, Id("auth", None)), ACL(1, Id("auth", None))], [Id("digest", USER)], providers  # type: ignore[arg-type]
    )
    assert out == [ACL(31, Id("digest", USER)), ACL(1, Id("digest", USER))]


def _raises_noauth(acls: list[ACL], perm: int, ids: list[Id], skip: bool = False) -> bool:
    try:
        check_acl(acls, perm, ids, providers, skip)
    except KeeperError as e:
        assert e.code == Code.NOAUTH
        return True
    return False


def test_check_acl() -> None:
    digest_only = [ACL(Perms.READ | Perms.WRITE, Id("digest", USER))]
    assert not _raises_noauth(digest_only, Perms.READ, [IP, Id("digest", USER)])
    assert _raises_noauth(digest_only, Perms.READ, [IP, Id("digest", BOB)])
    assert _raises_noauth(digest_only, Perms.DELETE, [Id("digest", USER)])
    # any bit of the requested mask is enough
    assert not _raises_noauth(digest_only, Perms.DELETE | Perms.WRITE, [Id("digest", USER)])
    assert not _raises_noauth(READ_ACL_UNSAFE, Perms.READ, [])
    assert _raises_noauth(READ_ACL_UNSAFE, Perms.WRITE, [IP])
    ip_acl = [ACL(31, Id("ip", "127.0.0.0/8"))]
    assert not _raises_noauth(ip_acl, Perms.ADMIN, [Id("ip", "127.9.9.9")])
    assert _raises_noauth(ip_acl, Perms.ADMIN, [Id("ip", "10.0.0.1")])
    # scheme must match: a digest id whose text looks like an ip does not count
    assert _raises_noauth(ip_acl, Perms.ADMIN, [Id("digest", "127.0.0.1")])
    # ACLs without a provider never match
    assert _raises_noauth([ACL(31, Id("sasl", "bob"))], Perms.READ, [Id("sasl", "bob")])


def test_check_acl_bypasses() -> None:
    nobody = [ACL(Perms.READ, Id("digest", USER))]
    assert not _raises_noauth([], Perms.ALL, [])
    assert not _raises_noauth(nobody, Perms.ADMIN, [SUPER])
    assert not _raises_noauth(nobody, Perms.ADMIN, [IP], skip=True)
    assert has_perm(nobody, Perms.READ, [Id("digest", USER)], providers)
    assert not has_perm(nobody, Perms.WRITE, [Id("digest", USER)], providers)


def test_mask_for_get_acl() -> None:
    acls = [
        ACL(1, ANYONE),
        ACL(31, Id("digest", USER)),
        ACL(31, Id("digest", "a:b:c")),
        ACL(31, Id("digest", "a:b\nc")),  # Java's '.' stops at a newline (real server: "a:x\nc")
        ACL(31, Id("digest", "a:b\r\n:c")),
        ACL(31, Id("digest", "nocolon")),
        ACL(31, Id("ip", "1.2.3.4")),
    ]
    assert mask_for_get_acl(acls) == [
        ACL(1, ANYONE),
        ACL(31, Id("digest", "user:x")),
        ACL(31, Id("digest", "a:x")),
        ACL(31, Id("digest", "a:x\nc")),
        ACL(31, Id("digest", "a:x\r\n:x")),
        ACL(31, Id("digest", "nocolon")),
        ACL(31, Id("ip", "1.2.3.4")),
    ]


def test_acl_for_get() -> None:
    acls = [ACL(Perms.READ, ANYONE), ACL(Perms.ALL, Id("digest", USER))]
    assert acl_for_get(acls, [IP], providers) == mask_for_get_acl(acls)
    assert acl_for_get(acls, [Id("digest", USER)], providers) == acls
    admin_only = [ACL(Perms.ADMIN, Id("digest", USER))]
    assert acl_for_get(admin_only, [Id("digest", USER)], providers) == admin_only
    with pytest.raises(KeeperError) as info:
        acl_for_get([ACL(Perms.WRITE, ANYONE)], [IP], providers)
    assert info.value.code == Code.NOAUTH


def test_who_am_i() -> None:
    ids = AuthIds([IP, SUPER, Id("digest", SUPER_DIGEST)])
    assert who_am_i(ids) == [("super", ""), ("digest", "super"), ("ip", "127.0.0.1")]
    assert who_am_i([Id("digest", ":hash"), Id("sasl", "bob")], providers) == [("digest", ""), ("sasl", "")]


acl_ids = st.sampled_from(
    [ANYONE, Id("world", "x"), Id("auth", ""), Id("auth", None), Id("digest", USER), Id("digest", "bad"),  # type: ignore[arg-type]
     Id("ip", "10.0.0.0/8"), Id("ip", "1.2.3.4/40"), SUPER, Id("sasl", "b"), Id("digest", None)]  # type: ignore[arg-type]
)
client_ids = st.sampled_from([IP, Id("digest", USER), Id("digest", BOB), SUPER])
acl_lists = st.lists(st.builds(ACL, st.sampled_from([0, 1, 16, 31]), acl_ids), max_size=5)


@given(acl_lists, st.lists(client_ids, max_size=4))
def test_normalize_properties(acls: list[ACL], ids: list[Id]) -> None:
    try:
        out = normalize_acls(acls, AuthIds(ids), providers)
    except KeeperError as e:
        assert e.code in (Code.INVALIDACL, Code.MARSHALLINGERROR)
        return
    assert out
    for acl in out:
        assert acl.id.scheme in ("world", "digest", "ip")
        assert acl.id == ANYONE or providers.is_valid(acl.id)
    # idempotent once no auth placeholder is left
    assert normalize_acls(out, [], providers) == list(dict.fromkeys(out))


@given(acl_lists, st.lists(client_ids, max_size=4), st.sampled_from([1, 2, 4, 8, 16, 31]))
def test_check_acl_agrees_with_has_perm(acls: list[ACL], ids: list[Id], perm: int) -> None:
    granted = has_perm(acls, perm, ids, providers)
    if SUPER in ids or not acls or any(a.perms & perm and a.id == ANYONE for a in acls):
        assert granted
