"""The admin listeners: which ones the config asks for, the site's mounts, and a port that cannot be bound."""
from __future__ import annotations

from pathlib import Path
from typing import cast

from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.web.server import Site

from tests.unit.admin_stub import request
from tests.unit.fakes import make_server
from zabd.admin.listeners import OptionalListener, admin_services
from zabd.admin.resource import admin_root
from zabd.config.zoocfg import parse_config
from zabd.views.stats_view import StandaloneView


def make_view(tmp_path: Path, extra: str = "") -> StandaloneView:
    config = parse_config(f"tickTime=2000\ndataDir={tmp_path}\nclientPort=21811\n{extra}")
    return StandaloneView(make_server()[0], config)


def test_the_default_listens_on_loopback_and_the_metrics_port_is_a_second_listener(tmp_path: Path) -> None:
    view = make_view(tmp_path, "admin.serverPort=18080\nmetricsProvider.httpPort=17000\n")
    reactor = MemoryReactor()
    services = admin_services(view, view.config, reactor)
    assert [type(s) for s in services] == [OptionalListener, OptionalListener]
    for service in services:
        service.startService()
    assert [(port, interface) for port, _factory, _backlog, interface in reactor.tcpServers] == [
        (18080, "127.0.0.1"), (17000, "127.0.0.1")]
    metrics_site = reactor.tcpServers[1][1]
    assert isinstance(metrics_site, Site)
    assert request(metrics_site.resource, "/metrics").status == 200
    assert request(metrics_site.resource, "/commands/ruok").status == 404


def test_a_disabled_admin_server_listens_nowhere(tmp_path: Path) -> None:
    view = make_view(tmp_path, "admin.enableServer=false\n")
    assert admin_services(view, view.config, MemoryReactor()) == []


def test_the_admin_root_mounts_commands_metrics_and_the_status_page(tmp_path: Path) -> None:
    view = make_view(tmp_path)
    root = admin_root(view, view.config, MemoryReactorClock())
    assert request(root, "/commands/ruok").json() == {"command": "ruok", "error": None}
    assert request(root, "/metrics").status == 200
    assert request(root, "/").status == 200


class RefusingReactor(MemoryReactor):
    def listenTCP(self, port: int, factory: object, backlog: int = 50, interface: str = "") -> object:  # noqa: N802
        raise CannotListenError(interface, port, OSError(98, "Address already in use"))


def test_a_port_that_cannot_be_bound_logs_one_error_and_the_server_goes_on(tmp_path: Path) -> None:
    view = make_view(tmp_path, "admin.serverPort=18081\n")
    events: list[LogEvent] = []
    observer = cast(ILogObserver, events.append)
    globalLogPublisher.addObserver(observer)
    try:
        [listener] = admin_services(view, view.config, RefusingReactor())
        listener.startService()  # no exception: the server keeps serving
    finally:
        globalLogPublisher.removeObserver(observer)
    errors = [e for e in events if e.get("log_level") is LogLevel.error]
    assert len(errors) == 1 and errors[0]["port"] == 18081
    assert "Address already in use" in errors[0]["error"]
    assert isinstance(listener, OptionalListener) and listener.port is None
    assert listener.stopService() is None
