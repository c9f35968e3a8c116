# -*- test-case-name: tests.unit.test_cli -*-
"""The ``zabd`` command: ``twistd -n zabd`` for people who do not know twistd.

``zabd --config zoo.cfg`` runs exactly what ``twistd -n zabd --config zoo.cfg``
runs. zabd's own options (those of zabd.peer.tap.Options) go after the
plugin's name; any other option is twistd's (``--pidfile``, ``--logfile``,
``--reactor``, ...) and goes before it, wherever it was written. The server
always runs in the foreground: daemonizing is twistd's business.

twistd runs in this process with zabd as its only subcommand, so the command
does not depend on Twisted's plugin path: an older zabd_plugin.py installed
elsewhere cannot stand in for this one.
"""
from __future__ import annotations

import sys
from typing import Any

from twisted.application import app
from twisted.application.service import ServiceMaker
from twisted.python import usage
from twisted.scripts import twistd

from zabd.peer.tap import DESCRIPTION, TAPNAME, Options

#: What twisted/plugins/zabd_plugin.py offers twistd.
SERVICE_MAKER = ServiceMaker(TAPNAME, "zabd.peer.tap", DESCRIPTION, TAPNAME)


def _zabd_only(interface: Any, package: Any = None) -> list[Any]:
    return [SERVICE_MAKER]


class ZabdServerOptions(twistd.ServerOptions):
    """twistd's options with zabd as the one subcommand, found without a plugin search."""

    _getPlugins = staticmethod(_zabd_only)


def _arities(options: usage.Options) -> dict[str, bool]:
    """Every option's spellings (``--config``, ``-c``) -> whether it takes a value."""
    spellings = {}
    for name in options.longOpt:
        takes_value = name.endswith("=")
        long_name = name.rstrip("=")
        spellings["--" + long_name] = takes_value
        spellings["--" + long_name.replace("_", "-")] = takes_value
    short = options.shortOpt
    for index, letter in enumerate(short):
        if letter != ":":
            spellings["-" + letter] = short[index + 1:index + 2] == ":"
    return spellings


def split_arguments(args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` as (twistd's options, zabd's options); the zabd plugin's own spellings win."""
    ours = _arities(Options())
    theirs = _arities(twistd.ServerOptions())
    twistd_args: list[str] = []
    plugin_args: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            plugin_args.extend(rest)
            break
        spelling, has_value = _spelling(arg)
        if spelling in ours:
            target, takes_value = plugin_args, ours[spelling]
        else:
            target, takes_value = twistd_args, theirs.get(spelling, False)
        target.append(arg)
        if takes_value and not has_value:
            value = next(rest, None)
            if value is not None:
                target.append(value)
    return twistd_args, plugin_args


def _spelling(arg: str) -> tuple[str, bool]:
    """The option an argument names, and whether it carries its value (``--config=x``, ``-cx``)."""
    if arg.startswith("--"):
        name, equals, _ = arg.partition("=")
        return name, bool(equals)
    if arg.startswith("-") and len(arg) > 1:
        return arg[:2], len(arg) > 2
    return arg, False


def twistd_argv(args: list[str]) -> list[str]:
    """The twistd command line that ``zabd *args`` stands for (without the program name)."""
    twistd_args, plugin_args = split_arguments(args)
    return [*twistd_args, "--nodaemon", TAPNAME, *plugin_args]


def run_twistd() -> None:
    """twistd on ``sys.argv``, as the ``twistd`` script runs it, with zabd as its one subcommand."""
    app.run(twistd.runApp, ZabdServerOptions)


def main(argv: list[str] | None = None) -> None:
    """Run twistd with the zabd plugin in this process; twistd exits when the server stops."""
    args = sys.argv[1:] if argv is None else argv
    sys.argv = ["zabd", *twistd_argv(args)]
    run_twistd()


if __name__ == "__main__":
    main()
