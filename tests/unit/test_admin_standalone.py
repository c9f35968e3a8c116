"""The admin endpoint of a standalone server, driven in memory: every command and alias, errors, methods."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.admin_stub import request
from tests.unit.fakes import OPEN_ACL, connected_client, make_server
from zabd.java.limits import parse_long
from zabd.views.admin.commands import BY_NAME, COMMANDS, PRIMARY_NAMES, run_command
from zabd.views.admin.compat import KEY_DIFFERENCES, NESTED_KEYS, expected_keys
from zabd.admin.resource import admin_root
from zabd.jute.opcodes import OpCode
from zabd.jute.records import CreateRequest, PathWatchRequest
from zabd.config.zoocfg import parse_config
from zabd.views.fourletter import NOT_SERVING, monitor_pairs
from zabd.views.stats_view import StandaloneView
from zabd.storage.layout import DataDirs, snapshot_name


def make_view(tmp_path: Path, extra: str = "") -> StandaloneView:
    config = parse_config(f"tickTime=2000\ndataDir={tmp_path}\nclientPort=21810\n{extra}")
    server, _clock = make_server()
    view = StandaloneView(server, config)
    client = connected_client(server)
    assert client.call(OpCode.create, CreateRequest("/eph", b"x", OPEN_ACL, 1)).err == 0
    assert client.call(OpCode.create, CreateRequest("/data", b"y", OPEN_ACL, 0)).err == 0
    assert client.call(OpCode.getData, PathWatchRequest("/data", True)).err == 0
    return view


@pytest.fixture
def view(tmp_path: Path) -> StandaloneView:
    return make_view(tmp_path)


def get(view: StandaloneView, path: str, method: str = "GET") -> object:
    return request(admin_root(view, view.config, None), path, method)


def test_there_are_3_8s_26_commands_and_every_name_answers(view: StandaloneView) -> None:
    assert len(COMMANDS) == 26 and len(PRIMARY_NAMES) == 26
    assert {"conf", "config", "cons", "crst", "env", "envi", "gtmk", "icfg", "isro", "lsnp", "lead", "mntr",
            "orst", "obsr", "srvr", "stmk", "srst", "stat", "sysp", "wchc", "wchp", "wchs"} <= set(BY_NAME)
    root = admin_root(view, view.config, None)
    for name, command in BY_NAME.items():
        answer = request(root, f"/commands/{name}")
        assert answer.status == 200 and answer.content_type == "application/json", name
        body = answer.json()
        assert body["command"] == command.primary_name, name
        if command.primary_name not in ("leader", "set_trace_mask"):
            assert body["error"] is None, (name, body)


@pytest.mark.parametrize("name", PRIMARY_NAMES)
def test_each_command_answers_3_8_0s_keys(view: StandaloneView, name: str) -> None:
    body = run_command(name, view)
    if name in KEY_DIFFERENCES:
        assert {"command", "error"} <= set(body)
    else:
        assert set(body) == expected_keys(name, "standalone"), name


def test_nested_objects_have_3_8_0s_keys(view: StandaloneView) -> None:
    srvr = run_command("srvr", view)
    assert set(srvr["server_stats"]) == NESTED_KEYS["server_stats.server_stats"]
    assert set(srvr["client_response"]) == NESTED_KEYS["buffer_sizes"]
    cons = run_command("cons", view)["connections"]
    assert len(cons) == 1 and set(cons[0]) == NESTED_KEYS["connections.connection"]
    assert set(run_command("stat", view)["connections"][0]) == NESTED_KEYS["stats.connection"]


def test_figures_are_the_views(view: StandaloneView) -> None:
    assert run_command("monitor", view) == {**dict(monitor_pairs(view)), "command": "monitor", "error": None}
    session = view.connections()[0].session_id
    assert run_command("dump", view)["session_id_to_ephemeral_paths"] == {str(session): ["/eph"]}
    assert run_command("wchc", view)["session_id_to_watched_paths"] == {str(session): ["/data"]}
    assert run_command("wchp", view)["path_to_session_ids"] == {"/data": [session]}
    assert run_command("wchs", view)["num_total_watches"] == 1
    srvr = run_command("srvr", view)
    assert srvr["node_count"] == view.node_count and srvr["server_stats"]["server_state"] == "standalone"
    assert srvr["server_stats"]["last_processed_zxid"] == view.last_zxid
    assert run_command("conf", view)["client_port"] == 21810
    assert run_command("leader", view) == {"error": "server is not initialized", "command": "leader"}
    assert run_command("zabstate", view) == {"voting": False, "zabstate": "", "command": "zabstate", "error": None}
    assert run_command("voting_view", view)["current_config"] == {}
    assert "clientPort=21810\n" in run_command("icfg", view)["initial_configuration"]
    assert run_command("sysp", view)["zookeeper.clientPort"] == "21810"


def test_last_snapshot_reads_the_newest_snapshot_file(tmp_path: Path) -> None:
    view = make_view(tmp_path)
    assert run_command("lsnp", view) == {"zxid": "ffffffffffffffff", "timestamp": -1,
                                         "command": "last_snapshot", "error": None}
    dirs = DataDirs.of(str(tmp_path))
    dirs.create()
    for zxid in (0x5, 0x1A):
        Path(dirs.snap_dir, snapshot_name(zxid)).write_bytes(b"")
    answer = run_command("lsnp", view)
    assert answer["zxid"] == "1a" and answer["timestamp"] > 0


def test_set_trace_mask_takes_a_java_long_as_3_8_does(view: StandaloneView) -> None:
    root = admin_root(view, view.config, None)
    assert request(root, "/commands/stmk?traceMask=5").json() == {
        "tracemask": 5, "command": "set_trace_mask", "error": None}
    assert run_command("gtmk", view)["tracemask"] == 5
    assert request(root, "/commands/set_trace_mask?traceMask=-1&traceMask=7").json()["tracemask"] == -1
    for bad in ("abc", "0x10", "", "9223372036854775808"):
        assert request(root, f"/commands/stmk?traceMask={bad}").json() == {
            "error": f"setTraceMask requires long traceMask argument, got {bad}", "command": "set_trace_mask"}
    assert request(root, "/commands/stmk").json() == {
        "error": "setTraceMask requires long traceMask argument", "command": "set_trace_mask"}
    assert view.trace_mask == -1
    assert parse_long("+12") == 12 and parse_long("1_0") is None


def test_unknown_commands_and_paths(view: StandaloneView) -> None:
    root = admin_root(view, view.config, None)
    answer = request(root, "/commands/nonexist")
    assert answer.status == 200
    assert answer.json() == {"command": "nonexist", "error": "Unknown command: nonexist"}
    assert request(root, "/commands/ruok/extra").json()["error"] == "Unknown command: ruok/extra"
    assert request(root, "/commands/ruok?x=1").json() == {"command": "ruok", "error": None}
    assert request(root, "/elsewhere").status == 404


def test_the_command_list_links_every_primary_name(view: StandaloneView) -> None:
    root = admin_root(view, view.config, None)
    for path in ("/commands", "/commands/"):
        answer = request(root, path)
        assert answer.status == 200
        text = answer.body.decode()
        assert text.count("<a href=") == 26
        assert '<a href="/commands/watches_by_path">watches_by_path</a>\n<br/>\n' in text


def test_only_get_and_head_are_allowed(view: StandaloneView) -> None:
    root = admin_root(view, view.config, None)
    for method in ("POST", "PUT", "DELETE"):
        assert request(root, "/commands/ruok", method).status == 405
    head = request(root, "/commands/ruok", "HEAD")
    assert head.status == 200 and head.body == b""


def test_commands_that_need_a_server_say_it_is_not_serving(view: StandaloneView) -> None:
    class Idle(StandaloneView):
        serving = False

    idle = Idle(view.server, view.config)
    assert run_command("srvr", idle) == {"command": "srvr", "error": NOT_SERVING}
    assert run_command("mntr", idle)["error"] is None  # not server-required in 3.8
    assert run_command("env", idle)["command"] == "environment"


def test_a_custom_command_url(tmp_path: Path) -> None:
    view = make_view(tmp_path, "admin.commandURL=/zk/admin\n")
    root = admin_root(view, view.config, None)
    assert request(root, "/zk/admin/ruok").json() == {"command": "ruok", "error": None}
    assert '<a href="/zk/admin/dirs">' in request(root, "/zk/admin").body.decode()
    assert request(root, "/commands/ruok").status == 404
