"""
A reader for Java ``.properties`` text, the syntax zoo.cfg is written in.

It lives apart from ``config.py`` because the syntax (separators, comments,
backslash continuations and escapes, Java's trimming) has nothing to do with
what zabd's keys mean: this module only splits text into (key, value, line)
entries, and ``config.py`` decides what they are worth.  It knows nothing of
zabd, so a syntax error carries just the line; the caller names the file.
"""

from __future__ import annotations

import re

from zabd.java.limits import java_trim

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_WHITESPACE = " \t\f"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class PropertiesSyntaxError(Exception):
    """
    Text that Java's ``Properties.load`` would refuse.

    :param problem: what is wrong, without file or line.
    :param line: 1-based line number where the entry starts.
    """

    def __init__(self, problem: str, line: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


class _MalformedEscape(Exception):
    """A bad ``\\u`` escape; the caller adds the line."""


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch != "\\" or i == len(text):
            out.append(ch)
            continue
        ch = text[i]
        i += 1
        if ch == "u":
            code = text[i:i + 4]
            if len(code) != 4 or not all(c in "0123456789abcdefABCDEF" for c in code):
                raise _MalformedEscape("malformed \\uxxxx escape")
            out.append(chr(int(code, 16)))
            i += 4
        else:
            out.append(_ESCAPES.get(ch, ch))
    return "".join(out)


def _odd_trailing_backslashes(line: str) -> bool:
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def parse_properties(text: str) -> list[tuple[str, str, int]]:
    """
    Split Java ``.properties`` text into (key, value, line) in file order.

    Handles ``=``, ``:`` and whitespace separators, ``#``/``!`` comments,
    backslash continuations and escapes; keys and values are trimmed as
    ZooKeeper trims them.

    :param text: the file contents.
    :raises PropertiesSyntaxError: on a malformed ``\\u`` escape.
    """
    lines = _LINE_BREAK.split(text)
    entries: list[tuple[str, str, int]] = []
    index = 0
    while index < len(lines):
        number = index + 1
        logical = lines[index].lstrip(_WHITESPACE)
        index += 1
        if not logical or logical[0] in "#!":
            continue
        while _odd_trailing_backslashes(logical) and index < len(lines):
            logical = logical[:-1] + lines[index].lstrip(_WHITESPACE)
            index += 1
        if _odd_trailing_backslashes(logical):
            logical = logical[:-1]
        end = 0
        while end < len(logical) and logical[end] not in "=:" + _WHITESPACE:
            end += 2 if logical[end] == "\\" else 1
        end = min(end, len(logical))
        rest = logical[end:].lstrip(_WHITESPACE)
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(_WHITESPACE)
        try:
            key, value = _unescape(logical[:end]), _unescape(rest)
        except _MalformedEscape as e:
            raise PropertiesSyntaxError(str(e), number) from None
        entries.append((java_trim(key), java_trim(value), number))
    return entries
