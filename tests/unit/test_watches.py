"""Tests for zabd.core.watches.

GOLDEN holds random operation scripts replayed on ZooKeeper 3.8.0's own
DataTree/WatchManager (Debian jar): the results of remove/contains/summary and
every watcher's event sequence must come out the same here.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zabd.core.watches import Watches
from zabd.core.watchmanager import WatchesSummary, WatchManager, WatchMode
from zabd.jute.opcodes import EVENT_NAMES, AddWatchMode, EventType, WatcherType

Created, Deleted, Changed, Children = (
    EventType.NodeCreated,
    EventType.NodeDeleted,
    EventType.NodeDataChanged,
    EventType.NodeChildrenChanged,
)


@dataclass(frozen=True)
class Conn:
    session_id: int


A, B, C = Conn(1), Conn(2), Conn(-1)


def test_standard_watch_fires_once() -> None:
    w: Watches[Conn] = Watches()
    w.add_data_watch("/a", A)
    assert w.data_changed("/a") == [(A, Changed, "/a")]
    assert w.data_changed("/a") == []
    assert w.count() == 0
    assert not w.has_watches(A)


def test_persistent_watch_stays_and_covers_exact_path_only() -> None:
    w: Watches[Conn] = Watches()
    w.add_persistent("/a", A, recursive=False)
    assert w.data_changed("/a") == [(A, Changed, "/a")]
    assert w.data_changed("/a") == [(A, Changed, "/a")]
    assert w.node_created("/a/b") == [(A, Children, "/a")]
    assert w.data_changed("/a/b") == []
    assert w.count() == 2  # one in each table


def test_recursive_watch_covers_descendants_but_not_children_events() -> None:
    w: Watches[Conn] = Watches()
    w.add_persistent("/a", A, recursive=True)
    assert w.node_created("/a") == [(A, Created, "/a")]
    assert w.node_created("/a/b") == [(A, Created, "/a/b")]  # no NodeChildrenChanged
    assert w.data_changed("/a/b/c") == [(A, Changed, "/a/b/c")]
    assert w.node_deleted("/a/b") == [(A, Deleted, "/a/b")]
    assert w.data_changed("/ab") == []
    assert w.data_changed("/") == []
    assert w.data.recursive_count() == 1
    assert w.child.recursive_count() == 1


def test_recursive_watch_on_root() -> None:
    w: Watches[Conn] = Watches()
    w.add_persistent("/", A, recursive=True)
    assert w.node_created("/x") == [(A, Created, "/x")]
    assert w.data_changed("/") == [(A, Changed, "/")]


def test_one_event_per_watcher_per_trigger() -> None:
    w: Watches[Conn] = Watches()
    w.add_persistent("/", A, recursive=True)
    w.add_persistent("/a", A, recursive=True)
    w.add_data_watch("/a/b", A)
    assert w.data_changed("/a/b") == [(A, Changed, "/a/b")]


def test_delete_suppresses_duplicate_node_deleted() -> None:
    w: Watches[Conn] = Watches()
    w.add_data_watch("/a/b", A)
    w.add_child_watch("/a/b", A)
    w.add_child_watch("/a/b", B)
    w.add_child_watch("/a", A)
    events = w.node_deleted("/a/b")
    assert events == [(A, Deleted, "/a/b"), (B, Deleted, "/a/b"), (A, Children, "/a")]
    # the suppressed child watch was still consumed
    assert not w.child.contains("/a/b", A)
    assert w.count() == 0


def test_suppress_in_trigger_still_consumes_one_shot() -> None:
    m: WatchManager[Conn] = WatchManager()
    m.add("/a", A)
    m.add("/a", B, WatchMode.PERSISTENT)
    assert m.trigger("/a", Deleted, suppress={A}) == {B}
    assert not m.contains("/a", A)
    assert m.contains("/a", B)
    assert m.trigger("/a", Deleted) == {B}


def test_create_reports_root_as_parent_of_top_level_nodes() -> None:
    w: Watches[Conn] = Watches()
    w.add_child_watch("/", A)
    w.add_data_watch("/a", B)
    assert w.node_created("/a") == [(B, Created, "/a"), (A, Children, "/")]
    assert w.node_created("/") == []
    assert w.node_deleted("/") == []


def test_later_registration_replaces_mode_as_in_3_8() -> None:
    w: Watches[Conn] = Watches()
    w.add_persistent("/a", A, recursive=True)
    w.add_data_watch("/a", A)  # getData with watch=true downgrades it
    assert w.data.mode_of("/a", A) is WatchMode.STANDARD
    assert w.data.recursive_count() == 0
    assert w.data_changed("/a/b") == []
    assert w.data_changed("/a") == [(A, Changed, "/a")]
    assert w.data_changed("/a") == []
    w.data.add("/a", A, AddWatchMode.PERSISTENT)  # type: ignore[arg-type]
    assert w.data.mode_of("/a", A) is WatchMode.PERSISTENT


def test_remove_watcher_drops_everything() -> None:
    w: Watches[Conn] = Watches()
    w.add_persistent("/a", A, recursive=True)
    w.add_data_watch("/b", A)
    w.add_child_watch("/b", A)
    w.add_data_watch("/b", B)
    w.remove_watcher(A)
    assert w.data.recursive_count() == 0
    assert w.data.by_path() == {"/b": {B}}
    assert w.child.by_path() == {}
    assert w.data.by_watcher() == {B: {"/b"}}
    assert w.node_created("/a/x") == []
    w.remove_watcher(A)  # idempotent


def test_remove_watches_by_type() -> None:
    w: Watches[Conn] = Watches()
    w.add_data_watch("/a", A)
    w.add_child_watch("/a", A)
    assert w.remove_watches("/a", WatcherType.Data, A)
    assert not w.remove_watches("/a", WatcherType.Data, A)
    assert w.remove_watches("/a", WatcherType.Any, A)
    assert not w.remove_watches("/a", WatcherType.Any, A)
    w.add_persistent("/a", A, recursive=True)
    assert w.remove_watches("/a", WatcherType.Children, A)
    assert w.child.recursive_count() == 0
    assert w.data.recursive_count() == 1
    assert not w.remove_watches("/a", WatcherType.Children, B)


def test_check_watches_3_8_looks_at_the_path_only() -> None:
    w: Watches[Conn] = Watches()
    w.add_data_watch("/a", B)
    assert w.check_watches("/a", WatcherType.Data, A)  # 3.8.x: any watcher will do
    assert not w.check_watches("/a", WatcherType.Data, A, strict=True)
    assert w.check_watches("/a", WatcherType.Data, B, strict=True)
    assert not w.check_watches("/a", WatcherType.Children, B)
    assert w.check_watches("/a", WatcherType.Any, B)
    assert not w.check_watches("/b", WatcherType.Any, B)


def test_counts_and_summary_keep_watchers_whose_watches_fired() -> None:
    w: Watches[Conn] = Watches()
    w.add_data_watch("/a", A)
    w.add_data_watch("/b", A)
    w.add_data_watch("/b", B)
    w.add_child_watch("/b", C)
    assert w.count() == 4
    assert w.summary() == WatchesSummary(2, 2, 3)  # data table only
    w.data_changed("/a")
    w.data_changed("/b")
    assert w.summary() == WatchesSummary(2, 0, 0)  # ZooKeeper keeps empty entries
    assert w.data.by_watcher() == {A: set(), B: set()}
    assert not w.has_watches(A)
    assert w.has_watches(C)
    assert w.data.paths() == 0 and w.child.paths() == 1
    w.remove_watcher(A)
    assert w.summary() == WatchesSummary(1, 0, 0)


def test_four_letter_texts() -> None:
    w: Watches[Conn] = Watches()
    w.add_data_watch("/a", A)
    w.add_data_watch("/b", A)
    w.add_data_watch("/a", C)
    w.add_child_watch("/c", B)  # child watches do not show
    assert w.wchs_text() == "2 connections watching 2 paths\nTotal watches:3\n"
    assert w.wchc_text() == "0x1\n\t/a\n\t/b\n0xffffffffffffffff\n\t/a\n\n"
    assert w.wchp_text() == "/a\n\t0x1\n\t0xffffffffffffffff\n/b\n\t0x1\n\n"
    assert w.wchp_text(lambda c: 255) == "/a\n\t0xff\n\t0xff\n/b\n\t0xff\n\n"
    assert w.data.watchers_by_path() == {"/a": [A, C], "/b": [A]}
    assert w.data.paths_by_watcher() == {A: ["/a", "/b"], C: ["/a"]}


def test_events_come_out_in_registration_order() -> None:
    w: Watches[Conn] = Watches()
    conns = [Conn(i) for i in range(50)]
    for conn in reversed(conns):
        w.add_data_watch("/a", conn)
    assert [e[0] for e in w.data_changed("/a")] == list(reversed(conns))


GOLDEN: list[tuple[list[str], list[str], dict[int, str]]] = [
    (
        [
            'remove /a/e 1 3', 'exists /d/f 3', 'create /a /', 'contains /d/f 4 3', 'set /a', 'set /a',
            'addwatch /a 5 0', 'summary', 'create /a/b /a', 'contains /a/b 2 3', 'create /a/b/c /a/b',
            'close 2', 'delete /a/b/c', 'close 1', 'set /a', 'set /a/b', 'create /a/b/c /a/b', 'delete /a/b/c',
            'remove /a/b/c 1 3', 'remove /a/b 0 3', 'set /a/b', 'delete /a/b', 'create /d /', 'delete /a',
            'delete /d', 'addwatch / 3 0', 'exists /a 2', 'children / 4', 'addwatch /a/b 3 1',
            'addwatch / 3 1', 'contains / 2 3', 'create /d /', 'remove / 3 1', 'children / 5', 'children /d 5',
            'set /d', 'remove /a/b/c 3 1', 'close 2', 'create /d/f /d', 'summary', 'summary',
        ],
        [
            'false', '-', '-', 'true', '-', '-', '-', '2 2 2 3 2 connections watching 2 paths|Total watches:2',
            '-', 'false', '-', '-', '-', '-', '-', '-', '-', '-', 'false', 'false', '-', '-', '-', '-', '-',
            '-', '-', '-', '-', '-', 'true', '-', 'true', '-', '-', '-', 'false', '-', '-',
            '2 3 3 6 2 connections watching 3 paths|Total watches:3',
            '2 3 3 6 2 connections watching 3 paths|Total watches:3',
        ],
        {
            0: '',
            1: '',
            2: '',
            3: '1 /d,3 /d,1 /d/f',
            4: '4 /',
            5: '4 /a,3 /a,4 /a,2 /a,4 /d',
        },
    ),
    (
        [
            'exists /a/e 2', 'contains /d/f 4 1', 'children / 5', 'addwatch /d/f 2 0', 'exists /d/f 3',
            'getdata / 2', 'create /a /', 'create /d /', 'set /a', 'exists /d/f 5', 'contains /a/e 4 3',
            'children / 5', 'delete /a', 'create /d/f /d', 'addwatch /d 5 1', 'set /d/f', 'remove / 1 2',
            'close 1', 'delete /d/f', 'contains /d 5 1', 'addwatch /a/b/c 1 1', 'close 5', 'remove /a/b 3 3',
            'summary', 'create /d/f /d', 'create /a /', 'create /a/b /a', 'exists /d/f 0', 'addwatch /a/e 2 0',
            'delete /d/f', 'create /d/f /d', 'getdata /a 2', 'close 5', 'contains /a/b 1 1', 'summary',
            'exists /d/f 2', 'create /a/b/c /a/b', 'addwatch /d/f 4 0', 'delete /a/b/c', 'delete /a/b',
            'remove /a/b 2 3', 'getdata /a 4', 'summary',
        ],
        [
            '-', 'false', '-', '-', '-', '-', '-', '-', '-', '-', 'true', '-', '-', '-', '-', '-', 'false',
            '-', '-', 'true', '-', '-', 'false', '3 4 4 6 3 connections watching 4 paths|Total watches:4', '-',
            '-', '-', '-', '-', '-', '-', '-', '-', 'false',
            '4 5 5 8 4 connections watching 5 paths|Total watches:5', '-', '-', '-', '-', '-', 'false', '-',
            '5 5 7 11 5 connections watching 5 paths|Total watches:7',
        ],
        {
            0: '2 /d/f',
            1: '1 /a/b/c,2 /a/b/c',
            2: '1 /d/f,3 /d/f,2 /d/f,1 /d/f,2 /d/f,1 /d/f',
            3: '1 /d/f',
            4: '',
            5: '4 /,4 /,1 /d/f,3 /d/f,2 /d/f',
        },
    ),
    (
        [
            'addwatch / 0 1', 'contains /a/b 2 1', 'create /a /', 'getdata / 3', 'set /a',
            'addwatch /a/b/c 2 0', 'remove /a 2 1', 'delete /a', 'children / 3', 'create /a /',
            'addwatch / 2 1', 'create /d /', 'getdata /d 1', 'create /d/f /d', 'remove /a/e 4 3',
            'getdata /d/f 4', 'create /a/e /a', 'set /a', 'contains /a 4 1', 'set /d', 'create /a/b /a',
            'delete /a/b', 'remove /a/e 0 1', 'getdata /a 3', 'summary', 'addwatch /d 1 0', 'summary',
            'delete /a/e', 'set /d/f', 'getdata /d 5', 'set /d/f', 'create /a/b /a', 'contains /a/e 4 3',
            'create /a/e /a', 'addwatch /a/e 1 0', 'create /a/b/c /a/b', 'addwatch /a/b 0 1', 'set /a/b/c',
            'children /a/b 5', 'delete /a/e', 'delete /d/f', 'set /a', 'addwatch /a/b 1 0', 'summary',
        ],
        [
            '-', 'false', '-', '-', '-', '-', 'false', '-', '-', '-', '-', '-', '-', '-', 'false', '-', '-',
            '-', 'false', '-', '-', '-', 'false', '-',
            '5 4 6 9 5 connections watching 4 paths|Total watches:6', '-',
            '5 5 7 11 5 connections watching 5 paths|Total watches:7', '-', '-', '-', '-', '-', 'false', '-',
            '-', '-', '-', '-', '-', '-', '-', '-', '-',
            '6 5 9 17 6 connections watching 5 paths|Total watches:9',
        ],
        {
            0: (
                '1 /a,3 /a,2 /a,1 /a,1 /d,1 /d/f,1 /a/e,3 /a,3 /d,1 /a/b,2 /a/b,2 /a/e,3 /d/f,'
                '3 /d/f,1 /a/b,1 /a/e,1 /a/b/c,3 /a/b/c,2 /a/e,2 /d/f,3 /a'
            ),
            1: '3 /d,2 /a/e,4 /d',
            2: (
                '1 /d,1 /d/f,1 /a/e,3 /a,3 /d,1 /a/b,2 /a/b,2 /a/e,3 /d/f,3 /d/f,1 /a/b,1 /a/e,'
                '1 /a/b/c,3 /a/b/c,2 /a/e,2 /d/f,3 /a'
            ),
            3: '4 /,3 /a',
            4: '3 /d/f',
            5: '',
        },
    ),
]


def _replay(ops: list[str]) -> tuple[list[str], dict[int, str]]:
    watches: Watches[int] = Watches()
    logs: dict[int, list[str]] = {i: [] for i in range(6)}
    results: list[str] = []

    def record(events: list[tuple[int, EventType, str]]) -> None:
        for watcher, event, path in events:
            logs[watcher].append(f"{int(event)} {path}")

    for op in ops:
        kind, *args = op.split()
        if kind == "create":
            record(watches.node_created(args[0]))
        elif kind == "delete":
            record(watches.node_deleted(args[0]))
        elif kind == "set":
            record(watches.data_changed(args[0]))
        elif kind in ("getdata", "exists"):
            watches.add_data_watch(args[0], int(args[1]))
        elif kind == "children":
            watches.add_child_watch(args[0], int(args[1]))
        elif kind == "addwatch":
            watches.add_persistent(args[0], int(args[1]), args[2] == "1")
        elif kind == "close":
            watches.remove_watcher(int(args[0]))
        elif kind == "remove":
            results.append(str(watches.remove_watches(args[0], WatcherType(int(args[2])), int(args[1]))).lower())
        elif kind == "contains":
            results.append(str(watches.check_watches(args[0], WatcherType(int(args[2])), int(args[1]))).lower())
        elif kind == "summary":
            s = watches.summary()
            text = watches.wchs_text().rstrip("\n").replace("\n", "|")
            results.append(f"{s.connections} {s.paths} {s.total} {watches.count()} {text}")
        if kind not in ("remove", "contains", "summary"):
            results.append("-")
    return results, {i: ",".join(log) for i, log in logs.items()}


@pytest.mark.parametrize("ops, results, logs", GOLDEN)
def test_matches_zookeeper_3_8(ops: list[str], results: list[str], logs: dict[int, str]) -> None:
    assert _replay(ops) == (results, logs)


paths = st.sampled_from(["/", "/a", "/a/b", "/a/b/c", "/d"])
watchers = st.integers(0, 3)
events = st.sampled_from([Created, Deleted, Changed, Children])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), paths, watchers, st.sampled_from(list(WatchMode))),
        st.tuples(st.just("fire"), paths, watchers, events),
        st.tuples(st.just("remove"), paths, watchers, st.none()),
        st.tuples(st.just("close"), paths, watchers, st.none()),
    ),
    max_size=40,
)
_RECURSIVE = WatchMode.PERSISTENT_RECURSIVE


@given(operations)
def test_manager_indexes_stay_consistent(ops: list[tuple[str, str, int, object]]) -> None:
    m: WatchManager[int] = WatchManager()
    for kind, path, watcher, extra in ops:
        if kind == "add":
            assert isinstance(extra, WatchMode)
            m.add(path, watcher, extra)
            assert m.mode_of(path, watcher) is extra
        elif kind == "fire":
            assert extra in EVENT_NAMES
            modes = {w: m.mode_of(path, w) for w in m.by_path().get(path, set())}
            fired = m.trigger(path, extra)
            for w, mode in modes.items():
                assert (w in fired) == (mode is not _RECURSIVE or extra != Children)
                assert m.contains(path, w) == (mode is not WatchMode.STANDARD)
        elif kind == "remove":
            had = m.contains(path, watcher)
            assert m.remove(path, watcher) == had
            assert not m.contains(path, watcher)
        else:
            m.remove_watcher(watcher)
            assert not m.has_watches(watcher)
        by_path = m.by_path()
        by_watcher = m.by_watcher()
        assert all(by_path.values())
        assert {(p, w) for p, ws in by_path.items() for w in ws} == {
            (p, w) for w, ps in by_watcher.items() for p in ps
        }
        assert m.count() == sum(len(ws) for ws in by_path.values()) == m.summary().total
        assert m.paths() == len(by_path)
        assert m.recursive_count() == sum(m.mode_of(p, w) is _RECURSIVE for p, ws in by_path.items() for w in ws)
