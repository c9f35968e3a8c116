"""
ZooKeeper 3.8's AdminServer commands: names, aliases and what each answers.

:func:`run_command` is 3.8's ``Commands.runCommand``: an unknown name, or a
command that needs a serving server while the peer is between roles, is
answered with an ``error`` and the name as asked; otherwise the command's
fields come first, then ``command`` (its primary name) and ``error`` (null),
unless the command set an error of its own, as 3.8's ``CommandResponse.toMap``
orders them.  Everything here is pure; ``resource.py`` serves it over HTTP.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from zabd.java.limits import parse_long
from zabd.views.admin import shapes
from zabd.views.admin.shapes import JsonObject
from zabd.views.fourletter import NOT_SERVING, monitor_pairs
from zabd.views.fourletter_view import AdminView

#: A command's body: the view and the query parameters (first value of each).
Handler = Callable[[AdminView, Mapping[str, str]], JsonObject]



@dataclass(frozen=True, slots=True)
class AdminCommand:
    """
    One command.

    :param names: the primary name first, then its aliases.
    :param handler: renders the command's own fields.
    :param server_required: answer "not currently serving" between roles (3.8's flag).
    """

    names: tuple[str, ...]
    handler: Handler
    server_required: bool = True

    @property
    def primary_name(self) -> str:
        return self.names[0]


def _nothing(view: AdminView, kwargs: Mapping[str, str]) -> JsonObject:
    return {}


def _reset_connections(view: AdminView, kwargs: Mapping[str, str]) -> JsonObject:
    view.reset_connection_stats()
    return {}


def _reset_server(view: AdminView, kwargs: Mapping[str, str]) -> JsonObject:
    view.reset_server_stats()
    return {}


def _set_trace_mask(view: AdminView, kwargs: Mapping[str, str]) -> JsonObject:
    if "traceMask" not in kwargs:
        return {"error": "setTraceMask requires long traceMask argument"}
    mask = parse_long(kwargs["traceMask"])
    if mask is None:
        return {"error": f"setTraceMask requires long traceMask argument, got {kwargs['traceMask']}"}
    view.set_trace_mask(mask)
    return {"tracemask": mask}


def _stats(view: AdminView, kwargs: Mapping[str, str]) -> JsonObject:
    return {**shapes.server_stats(view), **shapes.connections(view, brief=True)}


def _plain(render: Callable[[AdminView], JsonObject]) -> Handler:
    """A handler that takes no parameters."""
    return lambda view, kwargs: render(view)


#: Every 3.8.0 command, in the order 3.8 registers them.
COMMANDS: tuple[AdminCommand, ...] = (
    AdminCommand(("connection_stat_reset", "crst"), _reset_connections),
    AdminCommand(("configuration", "conf", "config"), _plain(shapes.configuration)),
    AdminCommand(("connections", "cons"), lambda view, kwargs: shapes.connections(view, brief=False)),
    AdminCommand(("hash",), _plain(shapes.digests)),
    AdminCommand(("dirs",), _plain(lambda v: {"datadir_size": v.data_dir_size, "logdir_size": v.log_dir_size})),
    AdminCommand(("dump",), _plain(shapes.dump)),
    AdminCommand(("environment", "env", "envi"), _plain(shapes.environment), server_required=False),
    AdminCommand(("get_trace_mask", "gtmk"), _plain(lambda v: {"tracemask": v.trace_mask}), server_required=False),
    AdminCommand(("initial_configuration", "icfg"),
                 _plain(lambda v: {"initial_configuration": v.initial_configuration()})),
    AdminCommand(("is_read_only", "isro"), _plain(lambda v: {"read_only": v.read_only})),
    AdminCommand(("last_snapshot", "lsnp"), _plain(shapes.last_snapshot)),
    AdminCommand(("leader", "lead"), _plain(shapes.leader)),
    # The same figures as mntr, in the same order (one list: monitor_pairs).
    AdminCommand(("monitor", "mntr"), _plain(lambda v: dict(monitor_pairs(v))), server_required=False),
    # zabd keeps no per-observer connection statistics: nothing to reset.
    AdminCommand(("observer_connection_stat_reset", "orst"), _nothing),
    AdminCommand(("ruok",), _nothing),
    AdminCommand(("set_trace_mask", "stmk"), _set_trace_mask, server_required=False),
    AdminCommand(("server_stats", "srvr"), _plain(shapes.server_stats)),
    AdminCommand(("stats", "stat"), _stats),
    AdminCommand(("stat_reset", "srst"), _reset_server),
    AdminCommand(("observers", "obsr"), _plain(shapes.observers)),
    AdminCommand(("system_properties", "sysp"), _plain(lambda v: dict(v.system_properties())),
                 server_required=False),
    AdminCommand(("voting_view",), _plain(shapes.voting_view)),
    AdminCommand(("watches", "wchc"), _plain(shapes.watches)),
    AdminCommand(("watches_by_path", "wchp"), _plain(shapes.watches_by_path)),
    AdminCommand(("watch_summary", "wchs"), _plain(shapes.watch_summary)),
    AdminCommand(("zabstate",), _plain(shapes.zabstate), server_required=False),
)

#: Every name and alias -> its command.
BY_NAME: dict[str, AdminCommand] = {name: command for command in COMMANDS for name in command.names}

#: The primary names, sorted as 3.8's ``/commands`` page lists them.
PRIMARY_NAMES: tuple[str, ...] = tuple(sorted(command.primary_name for command in COMMANDS))


def _response(command: str, data: JsonObject, error: str | None = None) -> JsonObject:
    out = dict(data)
    out["command"] = command
    out.setdefault("error", error)
    return out


def run_command(name: str, view: AdminView, kwargs: Mapping[str, str] | None = None) -> JsonObject:
    """
    What ``GET <commandURL>/<name>`` answers, as a JSON-able dict.

    :param name: a primary name or alias (anything else is "Unknown command").
    :param view: the server.
    :param kwargs: the query parameters, first value of each.
    """
    command = BY_NAME.get(name)
    if command is None:
        return _response(name, {}, f"Unknown command: {name}")
    if command.server_required and not view.serving:
        return _response(name, {}, NOT_SERVING)
    return _response(command.primary_name, command.handler(view, kwargs or {}))


def command_list_html(command_url: str) -> str:
    """The ``<commandURL>`` page: a link per primary name, as 3.8's servlet writes it."""
    base = command_url.rstrip("/")
    return "".join(f'<a href="{base}/{name}">{name}</a>\n<br/>\n' for name in PRIMARY_NAMES)
