# -*- test-case-name: tests.unit.test_metrics_prometheus -*-
"""The Prometheus text exposition format (0.0.4), as ZooKeeper 3.8's provider writes it.

Names are ZooKeeper's, unprefixed: a counter ``commit_count``, a summary
``readlatency`` with ``quantile`` labels plus ``readlatency_count`` and
``readlatency_sum``, a summary set with a ``key`` label, and every numeric
mntr figure (``znode_count``, ``learners``...) as a gauge, so dashboards and
alert rules written for ZooKeeper's /metrics read zabd's unchanged.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from zabd.metrics.registry import PROMETHEUS_QUANTILES, Counter, Gauge, MetricsRegistry, Number, Summary

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def sample_value(value: Number) -> str:
    """A sample value as the Java client prints doubles (NaN, +Inf, 1.0)."""
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number)


def _labels(key: str | None, quantile: float | None = None) -> str:
    parts = []
    if key is not None:
        escaped = key.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'key="{escaped}"')
    if quantile is not None:
        parts.append(f'quantile="{quantile}"')
    return "{" + ",".join(parts) + "}" if parts else ""


def _header(name: str, kind: str) -> list[str]:
    # ZooKeeper's provider uses the name as the help text too.
    return [f"# HELP {name} {name}", f"# TYPE {name} {kind}"]


def _summary_lines(name: str, summary: Summary, key: str | None) -> list[str]:
    qs = PROMETHEUS_QUANTILES[summary.level]
    lines = [f"{name}{_labels(key, q)} {sample_value(v)}" for q, v in zip(qs, summary.quantiles(qs))]
    lines.append(f"{name}_count{_labels(key)} {sample_value(summary.count)}")
    lines.append(f"{name}_sum{_labels(key)} {sample_value(summary.total)}")
    return lines


def render(registry: MetricsRegistry, gauges: Iterable[tuple[str, object]] = ()) -> str:
    """The registry, then ``gauges`` (mntr's pairs) not already in it; text values are left out.

    :param gauges: (name, value) pairs, e.g. ``fourletter.monitor_pairs(view)``;
        only ints and floats become gauges, and a pair naming a summary's mntr
        figure (``avg_readlatency``) is skipped, since the summary carries it.
    """
    lines: list[str] = []
    covered: set[str] = set()
    for metric in registry:
        name = metric.name
        if isinstance(metric, Counter):
            lines += _header(name, "counter")
            lines.append(f"{name} {sample_value(metric.value)}")
        elif isinstance(metric, Gauge):
            lines += _header(name, "gauge")
            lines.append(f"{name} {sample_value(metric.read())}")
        elif isinstance(metric, Summary):
            lines += _header(name, "summary")
            lines += _summary_lines(name, metric, None)
        else:
            lines += _header(name, "summary")
            for key, summary in sorted(metric.by_key.items()):
                lines += _summary_lines(name, summary, key)
                covered.update(summary.mntr_keys())
        covered.add(name)
        if isinstance(metric, Summary):
            covered.update(metric.mntr_keys())
    for name, value in gauges:
        if name in covered or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        covered.add(name)
        lines += _header(name, "gauge")
        lines.append(f"{name} {sample_value(value)}")
    return "\n".join(lines) + "\n"
