"""Metrics: one sans-IO registry per process, ZooKeeper 3.8's names, Prometheus text.

- ``registry``: counters, gauges, summaries and summary sets, and mntr's pairs.
- ``server``: ``ServerMetrics``, the metrics zabd records, by ZooKeeper name.
- ``prometheus``: the text exposition format (version 0.0.4).
"""
from zabd.metrics.registry import DetailLevel, MetricsRegistry
from zabd.metrics.server import ServerMetrics

__all__ = ["DetailLevel", "MetricsRegistry", "ServerMetrics"]
