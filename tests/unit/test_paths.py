"""Tests for zabd.core.paths.

The accept/reject tables were checked against PathUtils.validatePath from the
Debian zookeeper 3.8.0 jar (and a 4000-string random corpus agreed fully).
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zabd.core import paths
from zabd.core.paths import (
    ancestors,
    basename,
    is_reserved,
    is_special,
    is_valid_path,
    join,
    parent_of,
    sequential_name,
    split,
    validate_path,
)
from zabd.jute.errors import Code, KeeperError

VALID = [
    "/",
    "/a",
    "/a/b/c",
    "/zookeeper",
    "/...",
    "/a/...",
    "/.a",
    "/a.",
    "/..a",
    "/a..",
    "/a.b/c..d",
    "/ space",
    "/~",
    "/\x20",  # first printable after the C0 controls
    "/\x7e",  # last printable before DEL
    "/\xa0",  # first after the C1 controls
    "/\ud7ff",  # just below the surrogates
    "/\uf900",  # just after the private use area
    "/\uffef",  # just below U+FFF0
    "/s-0000000001",
    "/-000000001",
]

INVALID = [
    None,
    "",
    "a",
    "a/b",
    " /a",
    "/a/",
    "/a/b/",
    "//",
    "//a",
    "/a//b",
    "/.",
    "/..",
    "/./a",
    "/../a",
    "/a/.",
    "/a/..",
    "/a/./b",
    "/a/../b",
    "/a\x00",
    "/\x00b",
    "/\x01",
    "/\x1f",
    "/a\tb",
    "/a\nb",
    "/\x7f",
    "/\x80",
    "/\x9f",
    "/\ud800",
    "/\udfff",
    "/\ue000",
    "/\uf8ff",
    "/\ufff0",
    "/\ufffd",
    "/\uffff",
    "/\U0001f600",  # a surrogate pair in Java
    "/\U0010ffff",
]


@pytest.mark.parametrize("path", VALID)
def test_valid_paths_are_returned(path: str) -> None:
    assert validate_path(path) is path
    assert is_valid_path(path)


@pytest.mark.parametrize("path", INVALID)
def test_invalid_paths_raise_bad_arguments(path: str | None) -> None:
    with pytest.raises(KeeperError) as info:
        validate_path(path)
    assert info.value.code == Code.BADARGUMENTS
    assert info.value.path == path
    assert not is_valid_path(path)


def _reference(path: str | None) -> bool:
    """An independent, plain statement of section 2.13."""
    if path is None or path == "" or path[0] != "/":
        return False
    if path == "/":
        return True
    if path.endswith("/"):
        return False
    for segment in path[1:].split("/"):
        if segment in ("", ".", ".."):
            return False
    for ch in path:
        c = ord(ch)
        if c <= 0x1F or 0x7F <= c <= 0x9F or 0xD800 <= c <= 0xF8FF or c >= 0xFFF0:
            return False
    return True


path_alphabet = st.sampled_from(
    ["/", "/", ".", ".", "a", "b", "\x00", "\x1f", "\x7f", "\xa0", "\ud800", "\uf900", "\ufff0", "\U0001f600"]
)


@given(st.lists(path_alphabet, max_size=10).map("".join))
def test_validate_matches_reference(path: str) -> None:
    assert is_valid_path(path) == _reference(path)


@given(st.one_of(st.none(), st.text()))
def test_validate_only_ever_raises_keeper_error(path: str | None) -> None:
    try:
        assert validate_path(path) == path
    except KeeperError as e:
        assert e.code == Code.BADARGUMENTS


def test_parent_basename_join() -> None:
    assert parent_of("/a") == "/"
    assert parent_of("/a/b") == "/a"
    assert parent_of("/a/b/c") == "/a/b"
    assert basename("/a/b") == "b"
    assert basename("/a") == "a"
    assert basename("/") == ""
    assert join("/", "a") == "/a"
    assert join("/a", "b") == "/a/b"
    assert split("/a/b") == ("/a", "b")
    assert split("/a") == ("/", "a")
    with pytest.raises(ValueError):
        parent_of("/")
    with pytest.raises(ValueError):
        split("/")
    with pytest.raises(ValueError):
        parent_of("relative")


def test_ancestors() -> None:
    assert ancestors("/") == []
    assert ancestors("/a") == ["/"]
    assert ancestors("/a/b/c") == ["/a/b", "/a", "/"]


@given(st.lists(st.text(alphabet="abc.", min_size=1, max_size=4), min_size=1, max_size=5))
def test_join_and_split_round_trip(segments: list[str]) -> None:
    path = "/"
    for segment in segments:
        path = join(path, segment)
    assert split(path) == (parent_of(path), basename(path))
    assert join(*split(path)) == path
    assert len(ancestors(path)) == len(segments)


# String.format("%010d", n) from Java.
@pytest.mark.parametrize(
    "counter, suffix",
    [
        (0, "0000000000"),
        (1, "0000000001"),
        (123, "0000000123"),
        (-1, "-000000001"),
        (-123456789, "-123456789"),
        (2147483647, "2147483647"),
        (-2147483648, "-2147483648"),
        (2**31, "-2147483648"),  # the int counter wraps
        (2**32 + 5, "0000000005"),
    ],
)
def test_sequential_name(counter: int, suffix: str) -> None:
    assert sequential_name("/q/s-", counter) == "/q/s-" + suffix


def test_reserved_and_special() -> None:
    assert is_reserved("/zookeeper")
    assert is_reserved("/zookeeper/quota")
    assert is_reserved("/zookeeper/anything/below")
    assert not is_reserved("/zookeeperx")
    assert not is_reserved("/")
    assert not is_reserved("/a/zookeeper")
    for path in ("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
        assert is_special(path)
    assert not is_special("/zookeeper/foo")
    assert paths.SPECIAL_PATHS == {paths.ROOT, paths.ZOOKEEPER, paths.QUOTA, paths.CONFIG}
