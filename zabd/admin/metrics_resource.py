# -*- test-case-name: tests.unit.test_metrics_prometheus -*-
"""``GET /metrics``: the Prometheus text format, from the same figures as mntr.

The registry's counters and summaries, then every numeric figure of
``fourletter.monitor_pairs`` as a gauge, with the names ZooKeeper 3.8's
Prometheus provider uses. Mounted on the admin port and on
``metricsProvider.httpPort``.
"""
from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from zabd.metrics.prometheus import CONTENT_TYPE, render
from zabd.views.fourletter import monitor_pairs
from zabd.views.fourletter_view import ServerView


def metrics_text(view: ServerView) -> str:
    """The exposition text for ``view`` (its registry plus mntr's numeric figures)."""
    # Between roles a peer serves no mntr figures, but its counters still count.
    pairs = monitor_pairs(view) if view.serving else []
    return render(view.metrics.registry, pairs)


class MetricsResource(Resource):
    """Answers GET (and HEAD) with the metrics of ``view``."""

    isLeaf = True

    def __init__(self, view: ServerView) -> None:
        super().__init__()
        self.view = view

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE.encode("ascii"))
        return metrics_text(self.view).encode("utf-8")

    def render_HEAD(self, request: Request) -> bytes:
        return self.render_GET(request)
