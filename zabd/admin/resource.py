"""
The twisted.web side of the admin endpoint: the commands resource and the site's root.

``GET <commandURL>`` lists the commands as 3.8's servlet does (HTML links),
``GET <commandURL>/<name>?k=v`` answers JSON with status 200, errors
included (3.8.0 answers unknown commands and bad parameters with 200 too).
Other methods get 405, as Jetty's servlet gives them; HEAD is GET without
a body.  The root also mounts ``/metrics`` and the status page at ``/``.
"""
from __future__ import annotations

import json
from html import escape
from typing import Any

from twisted.logger import Logger
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from zabd.views.admin.commands import command_list_html, run_command
from zabd.admin.metrics_resource import MetricsResource
from zabd.admin.status import StatusPage
from zabd.config.zoocfg import ZabdConfig
from zabd.views.fourletter_view import AdminView

log = Logger()


class CommandsResource(Resource):
    """Every command under one URL prefix; the rest of the path names the command."""

    isLeaf = True

    def __init__(self, view: AdminView, command_url: str) -> None:
        super().__init__()
        self.view = view
        self.command_url = command_url

    def render(self, request: Request) -> bytes:
        # Jetty's servlet answers any other method 405 (twisted.web would say
        # 501 for those it does not know, such as PUT).
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"content-type", b"text/html;charset=utf-8")
            method = escape(request.method.decode("ascii", "replace"))
            return f"<html><body><h2>HTTP ERROR 405 HTTP method {method} is not supported by this URL</h2>" \
                   "</body></html>\n".encode("utf-8")
        return super().render(request)

    def render_GET(self, request: Request) -> bytes:  # noqa: N802 (twisted.web's name)
        name = "/".join(segment.decode("utf-8", "replace") for segment in request.postpath or [])
        if name == "":
            request.setHeader(b"content-type", b"text/html;charset=utf-8")
            return command_list_html(self.command_url).encode("utf-8")
        # 3.8 passes the first value of each parameter.
        kwargs = {key.decode("utf-8", "replace"): values[0].decode("utf-8", "replace")
                  for key, values in (request.args or {}).items() if values}
        answer = run_command(name, self.view, kwargs)
        request.setHeader(b"content-type", b"application/json")
        return (json.dumps(answer, indent=2) + "\n").encode("utf-8")


def _mount(root: Resource, url: str, child: IResource) -> None:
    """Put ``child`` at ``url`` below ``root``, with plain resources for the levels between."""
    segments = [s.encode("utf-8") for s in url.split("/") if s]
    if not segments:
        raise ValueError(f"cannot mount at {url!r}")
    parent = root
    for segment in segments[:-1]:
        level = parent.children.get(segment)
        if not isinstance(level, Resource):
            level = Resource()
            parent.putChild(segment, level)
        parent = level
    parent.putChild(segments[-1], child)


def metrics_root(view: AdminView) -> Resource:
    """A root serving only ``/metrics`` (the Prometheus provider's port)."""
    root = Resource()
    root.putChild(b"metrics", MetricsResource(view))
    return root


def admin_root(view: AdminView, config: ZabdConfig, reactor: Any) -> Resource:
    """The admin port's root: the commands, ``/metrics`` and the status page at ``/``."""
    root = Resource()
    root.putChild(b"metrics", MetricsResource(view))
    root.putChild(b"", StatusPage(view, config, reactor))
    _mount(root, config.admin_command_url, CommandsResource(view, config.admin_command_url))
    return root
