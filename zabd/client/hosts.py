# -*- test-case-name: tests.unit.test_client_session -*-
"""The connect string (``h1:2181,h2:2181/app``): hosts, chroot, and the order they are tried in."""
from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_PORT = 2181


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ConnectString:
    hosts: tuple[HostPort, ...]
    chroot: Chroot


@dataclass(frozen=True, slots=True)
class Chroot:
    """Maps the caller's paths to the server's and back; ``prefix`` is "" for no chroot."""

    prefix: str = ""

    def to_server(self, path: str) -> str:
        if not self.prefix:
            return path
        return self.prefix if path == "/" else self.prefix + path

    def to_client(self, path: str) -> str:
        """The caller's view of a server path (paths outside the chroot come back unchanged)."""
        if not self.prefix or not path or not path.startswith(self.prefix):  # a null path stays null
            return path
        rest = path[len(self.prefix):]
        if rest == "":
            return "/"
        return rest if rest.startswith("/") else path


def parse_connect_string(text: str) -> ConnectString:
    """Parse ``host[:port][,host[:port]...][/chroot]``; IPv6 hosts go in brackets."""
    hosts_part, slash, chroot = text.strip().partition("/")
    prefix = ("/" + chroot).rstrip("/") if slash else ""
    if prefix and ("//" in prefix or prefix.endswith("/.")):
        raise ValueError(f"invalid chroot in {text!r}")
    hosts: list[HostPort] = []
    for item in hosts_part.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else DEFAULT_PORT
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
            port = int(port_text)
        else:
            host, port = item, DEFAULT_PORT
        hosts.append(HostPort(host, port))
    if not hosts:
        raise ValueError(f"no hosts in {text!r}")
    return ConnectString(tuple(hosts), Chroot(prefix))


class HostRing:
    """The hosts in the order they are tried: shuffled once (unless told not to), then round robin."""

    def __init__(self, hosts: tuple[HostPort, ...], rng: random.Random | None = None,
                 randomize: bool = True) -> None:
        order = list(hosts)
        if randomize:
            (rng or random.Random()).shuffle(order)
        self.order: tuple[HostPort, ...] = tuple(order)
        self._next = 0

    def __len__(self) -> int:
        return len(self.order)

    def next(self) -> tuple[HostPort, bool]:
        """The next host, and whether it starts a new round over the list."""
        host = self.order[self._next]
        wrapped = self._next == 0
        self._next = (self._next + 1) % len(self.order)
        return host, wrapped

    def rewind(self) -> None:
        """Hand out the host just taken again next time (it waits for a backoff first)."""
        self._next = (self._next - 1) % len(self.order)
