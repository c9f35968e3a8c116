"""
What a refused zoo.cfg raises, and the reading of its ``.properties`` text.

Apart from ``config.py`` so that the modules that check parts of a config
(``config_ensemble.py``) raise the same error without importing the whole.
"""

from __future__ import annotations

from zabd.java.properties import PropertiesSyntaxError, parse_properties


class ConfigError(Exception):
    """
    A configuration that zabd refuses to start with.

    :param message: full text, ``<source> line <n>: <key>: <problem>``.
    :param key: the key at fault, if any.
    :param source: the file name shown to the operator.
    :param line: 1-based line number, if the problem has one.
    """

    def __init__(self, message: str, key: str | None = None,
                 source: str = "zoo.cfg", line: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.source = source
        self.line = line


def read_properties(text: str, source: str = "zoo.cfg") -> list[tuple[str, str, int]]:
    """
    Split zoo.cfg text into (key, value, line) in file order.

    The syntax is Java's ``.properties``; see :mod:`zabd.java.properties`.

    :param text: the file contents.
    :param source: file name for error messages.
    :raises ConfigError: on a malformed ``\\u`` escape.
    """
    try:
        return parse_properties(text)
    except PropertiesSyntaxError as e:
        raise ConfigError(f"{source} line {e.line}: {e.problem}", None, source, e.line) from None


def config_error(source: str, key: str, line: int | None, problem: str) -> ConfigError:
    """The error for ``key`` on ``line`` of ``source``."""
    where = f"{source} line {line}" if line is not None else source
    return ConfigError(f"{where}: {key}: {problem}", key, source, line)
