# -*- test-case-name: tests.unit.test_metrics -*-
"""A sans-IO metrics registry: counters, gauges, summaries and summary sets.

Recording is on the request path of a server that is CPU-bound on one
thread, so ``add`` costs a few attribute operations and allocates nothing
of its own: a summary keeps count, sum, min and max, and its quantiles come
from a fixed ring of the most recent samples, sorted only when someone
reads them (mntr, /metrics). There are no locks: everything runs on the
reactor thread (the syncer thread hands its timings back to it).

Names and output follow ZooKeeper 3.8: ``mntr`` prints a summary as
``avg_/min_/max_/cnt_/sum_<name>`` (plus ``p50_/p95_/p99_/p999_<name>``
for an ADVANCED one), and a summary set's members as ``<key>_<name>``.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterator
from typing import Union

#: What a gauge reads, or a figure mntr prints.
Number = Union[int, float]

#: Samples a summary keeps for its quantiles (a power of two: the ring wraps with a mask).
RESERVOIR_SIZE = 1024
_RING_MASK = RESERVOIR_SIZE - 1


class DetailLevel(enum.Enum):
    """ZooKeeper's MetricsContext.DetailLevel: ADVANCED summaries also print percentiles."""

    BASIC = "basic"
    ADVANCED = "advanced"


#: The quantiles each level exports to Prometheus, as ZooKeeper's provider registers them.
PROMETHEUS_QUANTILES: dict[DetailLevel, tuple[float, ...]] = {
    DetailLevel.BASIC: (0.5,),
    DetailLevel.ADVANCED: (0.5, 0.9, 0.99),
}
#: The percentiles an ADVANCED summary prints in mntr.
_MNTR_PERCENTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999))


class Counter:
    """A count that only rises (until a reset)."""

    __slots__ = ("name", "value")

    def __init__(self, name: str) -> None:
        self.name = name
        self.value = 0

    def add(self, delta: int = 1) -> None:
        self.value += delta

    def reset(self) -> None:
        self.value = 0


class Gauge:
    """A figure read when asked for, from a function of the live server."""

    __slots__ = ("name", "read")

    def __init__(self, name: str, read: Callable[[], Number]) -> None:
        self.name = name
        self.read = read


class Summary:
    """Count, sum, min and max of the values added, and quantiles over the latest ones."""

    __slots__ = ("name", "level", "count", "total", "low", "high", "_ring", "_next")

    def __init__(self, name: str, level: DetailLevel = DetailLevel.BASIC) -> None:
        self.name = name
        self.level = level
        self._ring = [0] * RESERVOIR_SIZE
        self.count = 0
        self.total = 0
        #: Floats only until the first value: infinities compare with any int.
        self.low: float = math.inf
        self.high: float = -math.inf
        self._next = 0

    def add(self, value: int) -> None:
        self.count += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        index = self._next
        self._ring[index] = value
        self._next = (index + 1) & _RING_MASK

    def reset(self) -> None:
        self.count = 0
        self.total = 0
        self.low = math.inf
        self.high = -math.inf
        self._next = 0

    @property
    def minimum(self) -> int:
        return int(self.low) if self.count else 0

    @property
    def maximum(self) -> int:
        return int(self.high) if self.count else 0

    @property
    def average(self) -> float:
        """The mean, rounded half-up to 4 decimals as ZooKeeper's AvgMinMaxCounter does."""
        if not self.count:
            return 0.0
        return math.floor(self.total / self.count * 10000 + 0.5) / 10000

    def samples(self) -> list[int]:
        """The latest values kept (at most RESERVOIR_SIZE), sorted."""
        kept = min(self.count, RESERVOIR_SIZE)
        return sorted(self._ring[:kept])

    def quantiles(self, qs: tuple[float, ...]) -> list[float]:
        """Each quantile of the latest values (NaN when there are none, as Prometheus prints)."""
        ordered = self.samples()
        return [quantile_of(ordered, q) for q in qs]

    def mntr_keys(self) -> list[str]:
        """The keys :meth:`mntr_pairs` prints, without computing anything."""
        prefixes = ["avg", "min", "max", "cnt", "sum"]
        if self.level is DetailLevel.ADVANCED:
            prefixes += [prefix for prefix, _ in _MNTR_PERCENTILES]
        return [f"{prefix}_{self.name}" for prefix in prefixes]

    def mntr_pairs(self) -> list[tuple[str, Number]]:
        name = self.name
        pairs: list[tuple[str, Number]] = [
            (f"avg_{name}", self.average), (f"min_{name}", self.minimum), (f"max_{name}", self.maximum),
            (f"cnt_{name}", self.count), (f"sum_{name}", self.total),
        ]
        if self.level is DetailLevel.ADVANCED:
            ordered = self.samples()
            for prefix, q in _MNTR_PERCENTILES:
                value = quantile_of(ordered, q)
                pairs.append((f"{prefix}_{name}", 0 if math.isnan(value) else math.floor(value + 0.5)))
        return pairs


def quantile_of(ordered: list[int], q: float) -> float:
    """The ``q`` quantile of sorted values, interpolated between neighbours (as a uniform
    reservoir snapshot does: position q*(n+1), 1-based)."""
    n = len(ordered)
    if n == 0:
        return math.nan
    position = q * (n + 1)
    index = int(position)
    if index < 1:
        return float(ordered[0])
    if index >= n:
        return float(ordered[-1])
    lower, upper = ordered[index - 1], ordered[index]
    return lower + (position - index) * (upper - lower)


class SummarySet:
    """One summary per key (a learner's sid, a namespace), created on first use."""

    __slots__ = ("name", "level", "by_key")

    def __init__(self, name: str, level: DetailLevel = DetailLevel.BASIC) -> None:
        self.name = name
        self.level = level
        self.by_key: dict[str, Summary] = {}

    def add(self, key: str, value: int) -> None:
        summary = self.by_key.get(key)
        if summary is None:
            summary = self.by_key[key] = Summary(f"{key}_{self.name}", self.level)
        summary.add(value)

    def reset(self) -> None:
        for summary in self.by_key.values():
            summary.reset()


Metric = Union[Counter, Gauge, Summary, SummarySet]


class MetricsRegistry:
    """Every metric of one process, by name, in registration order."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def _register(self, metric: Metric) -> None:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name!r} is registered already")
        self._metrics[metric.name] = metric

    def counter(self, name: str) -> Counter:
        counter = Counter(name)
        self._register(counter)
        return counter

    def gauge(self, name: str, read: Callable[[], Number]) -> Gauge:
        gauge = Gauge(name, read)
        self._register(gauge)
        return gauge

    def summary(self, name: str, level: DetailLevel = DetailLevel.BASIC) -> Summary:
        summary = Summary(name, level)
        self._register(summary)
        return summary

    def summary_set(self, name: str, level: DetailLevel = DetailLevel.BASIC) -> SummarySet:
        summary_set = SummarySet(name, level)
        self._register(summary_set)
        return summary_set

    def __iter__(self) -> Iterator[Metric]:
        return iter(list(self._metrics.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._metrics

    def get(self, name: str) -> Metric | None:
        return self._metrics.get(name)

    def mntr_pairs(self) -> list[tuple[str, Number]]:
        """Every figure as mntr prints it (keys without the ``zk_`` prefix)."""
        pairs: list[tuple[str, Number]] = []
        for metric in self:
            if isinstance(metric, Counter):
                pairs.append((metric.name, metric.value))
            elif isinstance(metric, Gauge):
                pairs.append((metric.name, metric.read()))
            elif isinstance(metric, Summary):
                pairs += metric.mntr_pairs()
            else:
                for summary in list(metric.by_key.values()):
                    pairs += summary.mntr_pairs()
        return pairs

    def reset(self) -> None:
        """Zero every counter and summary (``srst``); gauges read live figures."""
        for metric in self:
            if not isinstance(metric, Gauge):
                metric.reset()
