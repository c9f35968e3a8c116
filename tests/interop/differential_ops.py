"""Seeded random single-session operation sequences for the differential test.

`OpGenerator` draws `Op`s (a kind plus keyword arguments) over a small namespace so that
NONODE, NODEEXISTS, BADVERSION, NOTEMPTY, NOAUTH, ... are frequent. It learns from the
results it is shown (sequential names, versions); that stays deterministic because a
run stops at the first divergence. `RawRequest` carries the requests kazoo 2.11 cannot
build itself (containers, TTL, multiRead, watch management, whoAmI, ...) through its queue.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kazoo.protocol.serialization import read_buffer, read_string, stat_struct
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL, Id, make_digest_acl_credential

WORLD = Id("world", "anyone")
ALL, READ, WRITE, CREATE, DELETE, ADMIN = 31, 1, 2, 4, 8, 16
PASSWORDS = {"alice": "alice-secret", "carol": "carol-secret", "bob": "bob-secret"}
AUTH_USERS = ("alice", "carol")  # bob never authenticates, so his ACLs always deny


def digest_id(user: str) -> Id:
    return Id("digest", make_digest_acl_credential(user, PASSWORDS[user]))


ACLS: Mapping[str, list[ACL]] = {
    "open": [ACL(ALL, WORLD)],
    "read_only": [ACL(READ, WORLD)],
    "creator_all": [ACL(ALL, Id("auth", ""))],  # INVALIDACL until some digest auth
    "alice_all": [ACL(ALL, digest_id("alice"))],
    "bob_all": [ACL(ALL, digest_id("bob"))],
    "world_read_alice_admin": [ACL(READ, WORLD), ACL(ADMIN | WRITE, digest_id("alice"))],
    "carol_create_delete": [ACL(CREATE | DELETE | READ, digest_id("carol"))],
    "ip_local": [ACL(ALL, Id("ip", "127.0.0.1"))],
    "ip_elsewhere": [ACL(ALL, Id("ip", "10.0.0.0/8")), ACL(READ, WORLD)],
    "no_delete": [ACL(ALL & ~DELETE, WORLD)],
    "no_create": [ACL(ALL & ~CREATE, WORLD)],
    "duplicated": [ACL(ALL, WORLD), ACL(ALL, WORLD)],
    "bad_digest": [ACL(ALL, Id("digest", "no-colon-here"))],
    "bad_scheme": [ACL(ALL, Id("nosuchscheme", "x"))],
    "bad_ip": [ACL(ALL, Id("ip", "not-an-address"))],
    "empty": [],
}
ACL_WEIGHTS = {"open": 30, "read_only": 3, "creator_all": 3, "alice_all": 4, "bob_all": 2}
# Relative to the run root ("" is the root itself); "zz" never exists unless made.
NODES = ("", "a", "b", "c", "a/x", "a/y", "b/x", "c/x", "a/x/p", "a/x/q", "b/x/p", "a/y/p",
         "zz/top")
FOREIGN_PATHS = ("/", "/zookeeper", "/zookeeper/config", "/nowhere")
# Paths kazoo would normalise or reject client-side; sent raw they reach the server.
BAD_PATHS = ("", "rel", "/trailing/", "/double//slash", "//x", "/dot/./x", "/dot/../x", "/.",
             "/ctl\x01char", "/nul\x00char")
VALUES: tuple[bytes | None, ...] = (None, b"", b"v1", b"v2", b"\x00\xff", b"x" * 100)
TTLS = (1, 3_600_000, 0xFFFFFFFFFF, 0, -5, 0x10000000000)
# (opcode, flags): containers, TTL nodes (plain and sequential), and misuses of both.
SPECIAL_CREATES = ((19, 4), (21, 5), (21, 6), (21, 5), (1, 5), (15, 6), (19, 0), (21, 0),
                   (21, 1), (1, 4), (1, 7), (15, 4), (19, 2), (19, 7))
WEIGHTS = {
    "create": 18, "create_raw": 7, "delete": 10, "exists": 5, "get": 5, "set": 8,
    "get_children": 6, "get_acls": 3, "set_acls": 4, "sync": 1, "transaction": 6, "multi": 3,
    "multi_read": 2, "get_ephemerals": 2, "get_all_children_number": 2, "whoami": 1,
    "add_watch": 3, "remove_watches": 3, "check_watches": 2, "set_watches": 2,
    "reconfig": 0.3, "raw_read": 1.5, "add_auth": 1, "delete_container": 0.3,
}
UNAUTHENTICATED_OPS = 150  # digest ACLs deny this long before add_auth may appear


@dataclass(frozen=True)
class Op:
    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def kw(self) -> dict[str, Any]:
        return dict(self.args)

    def describe(self) -> str:
        return f"{self.kind}({', '.join(f'{k}={v!r}' for k, v in self.args)})"


def op(kind: str, **kwargs: Any) -> Op:
    return Op(kind, tuple(kwargs.items()))


class OpGenerator:
    """Draws the ops of one run; `observe` feeds back the normalised results."""

    def __init__(self, seed: int, root: str) -> None:
        self.rng = random.Random(seed)
        self.root = root
        self.known: list[str] = [self.abs(n) for n in NODES]
        self.versions: dict[str, dict[str, Any]] = {}
        self.count = 0

    def abs(self, rel: str) -> str:
        return self.root if rel == "" else f"{self.root}/{rel}"

    def path(self) -> str:
        r = self.rng.random()
        if r < 0.03:
            return self.rng.choice(FOREIGN_PATHS)
        return self.abs(self.rng.choice(NODES)) if r < 0.75 else self.rng.choice(self.known)

    def paths(self, most: int) -> list[str]:
        return sorted({self.path() for _ in range(self.rng.randint(0, most))})

    def acl(self) -> str:
        return self.rng.choices(list(ACLS), [ACL_WEIGHTS.get(n, 1) for n in ACLS])[0]

    def value(self) -> bytes | None:
        return self.rng.choice(VALUES)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def version(self, path: str, field: str = "version") -> int:
        seen = self.versions.get(path, {}).get(field)
        r = self.rng.random()
        if r < 0.3:
            return -1
        if r < 0.75 and isinstance(seen, int):
            return seen
        return (seen if isinstance(seen, int) else 0) + self.rng.choice((1, 2, -2))

    def next_op(self) -> Op:
        self.count += 1
        if self.count == 1:
            return op("create", path=self.root, value=b"root", acl="open", ephemeral=False,
                      sequence=False, makepath=True, include_data=False)
        kind = self.rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
        if kind == "add_auth" and self.count < UNAUTHENTICATED_OPS:
            kind = "get"
        draw: Callable[[], Op] = getattr(self, f"_{kind}")
        return draw()

    def _create(self) -> Op:
        sequence, path = self.chance(0.25), self.path()
        return op("create", path=path + self.rng.choice(("/s-", "/")) if sequence else path,
                  value=self.value(), acl=self.acl(), ephemeral=self.chance(0.25),
                  sequence=sequence, makepath=self.chance(0.1), include_data=self.chance(0.4))

    def _create_raw(self) -> Op:
        opcode, flags = self.rng.choice(SPECIAL_CREATES)
        ttl = self.rng.choice(TTLS)
        if opcode == 21 and flags not in (5, 6):
            ttl = abs(ttl)  # ZooKeeper 3.8.0 accepts a negative one here, then crashes applying it
        path = self.path() + ("/t-" if flags in (2, 6) else "")
        if self.chance(0.15):
            opcode, flags, path = self.rng.choice((1, 15)), 0, self.rng.choice(BAD_PATHS)
        return op("create_raw", opcode=opcode, path=path, value=self.value(), acl=self.acl(),
                  flags=flags, ttl=ttl)

    def _delete(self) -> Op:
        path = self.path()
        return op("delete", path=path, version=self.version(path))

    def _exists(self) -> Op:
        return op("exists", path=self.path(), watch=self.chance(0.5))

    def _get(self) -> Op:
        return op("get", path=self.path(), watch=self.chance(0.5))

    def _set(self) -> Op:
        path = self.path()
        return op("set", path=path, value=self.value(), version=self.version(path))

    def _get_children(self) -> Op:
        return op("get_children", path=self.path(), watch=self.chance(0.5),
                  include_data=self.chance(0.5))

    def _get_acls(self) -> Op:
        return op("get_acls", path=self.path())

    def _set_acls(self) -> Op:
        path = self.path()
        return op("set_acls", path=path, acl=self.acl(), version=self.version(path, "aversion"))

    def _sync(self) -> Op:
        return op("sync", path=self.path())

    def _sub_ops(self, special: bool) -> tuple[tuple[Any, ...], ...]:
        """Write sub-ops for a multi: (create, opcode, path, value, acl, flags, ttl),
        (delete, path, version), (set, path, value, version), (check, path, version).
        Sequential creates under existing parents keep whole multis succeeding often."""
        subs: list[tuple[Any, ...]] = []
        for _ in range(self.rng.randint(1 if special else 0, 3)):
            path, kind = self.path(), self.rng.choice(("create", "create", "delete", "set", "check"))
            if kind == "create":
                flags = self.rng.choice((0, 1, 2, 3, 2, 3) + ((4, 5, 6, 6) if special else ()))
                opcode = {4: 19, 5: 21, 6: 21}.get(flags, self.rng.choice((1, 15)) if special else 1)
                if flags in (2, 3, 6):
                    path = self.abs(self.rng.choice(("", "", "a", "b"))) + "/m-"
                acl = "open" if self.chance(0.7) else self.acl()
                subs.append(("create", opcode, path, self.value() or b"", acl, flags,
                             self.rng.choice(TTLS[:4])))
            elif kind == "set":
                subs.append(("set", path, self.value() or b"", self.version(path)))
            else:
                subs.append((kind, path, self.version(path)))
        return tuple(subs)

    def _transaction(self) -> Op:
        return op("transaction", ops=self._sub_ops(special=False))

    def _multi(self) -> Op:
        subs = self._sub_ops(special=True)
        if self.chance(0.05):  # a read inside a write multi is a whole-request error
            subs += (("get", self.path(), False),)
        return op("multi", ops=subs)

    def _multi_read(self) -> Op:
        return op("multi_read", reads=tuple(
            (self.rng.choice(("get", "children")), self.path(), self.chance(0.3))
            for _ in range(self.rng.randint(1, 4))))

    def _get_ephemerals(self) -> Op:
        choices = ("", "/", self.root, self.abs("a"), self.abs("a/x/"), "/nope")
        return op("get_ephemerals", prefix=self.rng.choice(choices))

    def _get_all_children_number(self) -> Op:
        return op("get_all_children_number", path=self.path())

    def _whoami(self) -> Op:
        return op("whoami")

    def _add_watch(self) -> Op:
        return op("add_watch", path=self.path(), mode=self.rng.choice((0, 1)))

    def _remove_watches(self) -> Op:
        return op("remove_watches", path=self.path(), watcher_type=self.rng.choice((1, 2, 3)))

    def _check_watches(self) -> Op:
        return op("check_watches", path=self.path(), watcher_type=self.rng.choice((1, 2, 3)))

    def _set_watches(self) -> Op:
        v2 = self.chance(0.5)  # SetWatches2 (105) carries persistent watches too
        return op("set_watches", since_op=self.rng.randint(0, self.count - 2),
                  data=self.paths(3), exist=self.paths(3), child=self.paths(3),
                  persistent=self.paths(2) if v2 else None, recursive=self.paths(2) if v2 else None)

    def _reconfig(self) -> Op:
        return op("reconfig", joining="server.9=127.0.0.1:2888:3888;2181")

    def _raw_read(self) -> Op:
        return op("raw_read", opcode=self.rng.choice((3, 4, 8, 12, 6)),
                  path=self.rng.choice(BAD_PATHS))

    def _delete_container(self) -> Op:
        return op("delete_container", path=self.path())

    def _add_auth(self) -> Op:
        return op("add_auth", user=self.rng.choice(AUTH_USERS))

    def observe(self, made: Op, outcome: Any) -> None:
        """Learn created paths, listed children and node versions from a result."""
        target = made.kw.get("path")
        names = list(_created_paths(outcome))
        if isinstance(outcome, dict):
            target = outcome.get("created", target)
            if isinstance(target, str):
                if isinstance(outcome.get("stat"), dict):
                    self.versions[target] = outcome["stat"]
                names += [f"{target.rstrip('/')}/{c}" for c in outcome.get("children", ())]
        self.known += [n for n in dict.fromkeys(names) if n.startswith(self.root) and n not in self.known]


def _created_paths(outcome: Any) -> Iterable[str]:
    if isinstance(outcome, dict):
        if isinstance(outcome.get("created"), str):
            yield outcome["created"]
        for value in outcome.values():
            yield from _created_paths(value)
    elif isinstance(outcome, list):
        for item in outcome:
            yield from _created_paths(item)


# -- raw requests: kazoo queues any object with .type, .serialize() and .deserialize() --
def ustring(text: str | None) -> bytes:
    # Unlike kazoo's writer, "" stays an empty string rather than becoming null.
    return struct.pack("!i", -1) if text is None else struct.pack("!i", len(text.encode())) + text.encode()


def buffer(data: bytes | None) -> bytes:
    return struct.pack("!i", -1) if data is None else struct.pack("!i", len(data)) + data


def strings(items: Iterable[str]) -> bytes:
    listed = list(items)
    return struct.pack("!i", len(listed)) + b"".join(ustring(s) for s in listed)


def create_body(path: str, value: bytes | None, acl: list[ACL], flags: int, ttl: int | None) -> bytes:
    acls = b"".join(struct.pack("!i", a.perms) + ustring(a.id.scheme) + ustring(a.id.id) for a in acl)
    body = ustring(path) + buffer(value) + struct.pack("!i", len(acl)) + acls + struct.pack("!i", flags)
    return body + (struct.pack("!q", ttl) if ttl is not None else b"")


def read_stat(buf: bytes, offset: int) -> tuple[ZnodeStat, int]:
    return ZnodeStat._make(stat_struct.unpack_from(buf, offset)), offset + stat_struct.size


def read_strings(buf: bytes, offset: int) -> tuple[list[str], int]:
    (count,), offset, out = struct.unpack_from("!i", buf, offset), offset + 4, []
    for _ in range(max(count, 0)):
        item, offset = read_string(buf, offset)
        out.append(item)
    return out, offset


def read_multi(buf: bytes, offset: int) -> list[tuple[int, int, Any]]:
    """MultiResponse as (type, err, payload) triples, payload parsed by result type."""
    results: list[tuple[int, int, Any]] = []
    while True:
        kind, done, err = struct.unpack_from("!iBi", buf, offset)
        offset += 9
        if done:
            return results
        payload: Any = None
        if kind == 1:
            payload, offset = read_string(buf, offset)
        elif kind == 15:
            path, offset = read_string(buf, offset)
            stat, offset = read_stat(buf, offset)
            payload = (path, stat)
        elif kind == 5:
            payload, offset = read_stat(buf, offset)
        elif kind == 4:
            data, offset = read_buffer(buf, offset)
            stat, offset = read_stat(buf, offset)
            payload = (data, stat)
        elif kind == 8:
            payload, offset = read_strings(buf, offset)
        elif kind == -1:
            (payload,), offset = struct.unpack_from("!i", buf, offset), offset + 4
        results.append((kind, err, payload))


@dataclass(frozen=True)
class RawRequest:
    type: int
    body: bytes
    reply: Callable[[bytes, int], Any] = lambda buf, offset: None

    def serialize(self) -> bytes:
        return self.body

    def deserialize(self, buf: bytes, offset: int) -> Any:
        return self.reply(buf, offset)
