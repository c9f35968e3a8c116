# -*- test-case-name: tests.interop.test_flood -*-
"""What a flood (:mod:`zabd.harness.flood`) measured, and the server's memory.

:class:`FloodReport` is one round against one server, written as JSON by the
flooding process and read back by whoever started it. :func:`summary_table`
puts several rounds against several servers side by side (median, and the
range in brackets), in Markdown for ``doc/operations.md``.
"""
from __future__ import annotations

import json
import resource
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields

KIB = 1024


def process_memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid`` in KiB, from /proc; empty once it is gone."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return found


def process_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of sorted samples (NaN when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class ProbeFigures:
    """The probe client's pings during the flood, in milliseconds.

    A ping still unanswered when the flood ended counts as never answered
    (an infinite latency) in the percentiles; ``max_ms`` is of the answered.
    """

    pings: int = 0
    #: Pings sent but not answered when the flood ended (or lost with the connection).
    unanswered: int = 0
    reconnects: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan

    @classmethod
    def of(cls, latencies_ms: Sequence[float], unanswered: int, reconnects: int) -> ProbeFigures:
        answered = sorted(latencies_ms)
        every = answered + [math.inf] * unanswered
        return cls(len(answered), unanswered, reconnects, percentile(every, 50), percentile(every, 99),
                   answered[-1] if answered else math.nan)


@dataclass
class FloodReport:
    """One flood against one server."""

    target: str = ""
    connections: int = 0
    requests_per_connection: int = 0
    value_size: int = 0
    kinds: list[str] = field(default_factory=list)
    #: Connections whose session was opened before the flood began, and how long that took.
    sessions: int = 0
    connect_seconds: float = 0.0
    #: How each flooding connection ended: answered (every request it sent got a
    #: reply), closed (by the server, some unanswered), refused (no session), hung.
    outcomes: dict[str, int] = field(default_factory=dict)
    #: Replies by ZooKeeper error code name (OK included).
    replies: dict[str, int] = field(default_factory=dict)
    requests_sent: int = 0
    megabytes_sent: float = 0.0
    flood_seconds: float = 0.0
    replies_per_second: float = 0.0
    megabytes_per_second: float = 0.0
    probe: ProbeFigures = field(default_factory=ProbeFigures)
    rss_before_mib: float = 0.0
    #: The highest VmRSS sampled during the flood, and VmHWM (peak since the process started).
    rss_peak_mib: float = 0.0
    hwm_mib: float = 0.0
    rss_after_mib: float = 0.0
    #: The highest zk_outstanding_requests mntr reported during the flood (-1: never answered).
    outstanding_peak: int = -1
    alive: bool = False
    fresh_client: bool = False
    fresh_client_error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FloodReport:
        raw = json.loads(text)
        raw["probe"] = ProbeFigures(**raw.get("probe", {}))
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in raw.items() if key in known})

    def answered(self) -> int:
        return sum(self.replies.values())

    def unfinished(self) -> int:
        """Connections that neither got every answer nor were closed or refused by the server."""
        return sum(count for outcome, count in self.outcomes.items()
                   if outcome not in ("answered", "closed", "refused"))

    def text(self) -> str:
        probe = self.probe
        lines = [
            f"{self.target}: {self.sessions}/{self.connections} sessions in {self.connect_seconds:.1f} s; "
            f"{self.requests_sent} requests of {self.value_size} bytes ({self.megabytes_sent:.0f} MB) "
            f"in {self.flood_seconds:.1f} s: {self.replies_per_second:.1f} replies/s, "
            f"{self.megabytes_per_second:.1f} MB/s",
            f"  connections: {_counts(self.outcomes)}",
            f"  replies: {_counts(self.replies)}",
            f"  probe: {probe.pings} pings, p50 {probe.p50_ms:.1f} ms, p99 {probe.p99_ms:.1f} ms, "
            f"max {probe.max_ms:.1f} ms, {probe.unanswered} unanswered, {probe.reconnects} reconnects",
            f"  RSS: {self.rss_before_mib:.0f} MiB before, peak {self.rss_peak_mib:.0f} MiB "
            f"(VmHWM {self.hwm_mib:.0f}), {self.rss_after_mib:.0f} MiB after",
            f"  outstanding requests (mntr): peak {self.outstanding_peak}",
            f"  alive: {self.alive}; a fresh client: {'ok' if self.fresh_client else self.fresh_client_error}",
        ]
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items())) or "none"


#: (heading, how to read the figure from a report, format) for the summary table.
_ROWS: list[tuple[str, str, str]] = [
    ("peak RSS (MiB, sampled VmRSS)", "rss_peak_mib", "{:.0f}"),
    ("RSS before the flood (MiB)", "rss_before_mib", "{:.0f}"),
    ("RSS after the flood (MiB)", "rss_after_mib", "{:.0f}"),
    ("peak outstanding requests (mntr)", "outstanding_peak", "{:.0f}"),
    ("probe ping p50 (ms)", "probe.p50_ms", "{:.1f}"),
    ("probe ping p99 (ms)", "probe.p99_ms", "{:.0f}"),
    ("probe ping max (ms)", "probe.max_ms", "{:.0f}"),
    ("probe pings answered", "probe.pings", "{:.0f}"),
    ("probe pings unanswered", "probe.unanswered", "{:.0f}"),
    ("connections answered in full", "outcomes.answered", "{:.0f}"),
    ("connections closed by the server", "outcomes.closed", "{:.0f}"),
    ("connections refused", "outcomes.refused", "{:.0f}"),
    ("connections hung at the deadline", "outcomes.hung", "{:.0f}"),
    ("replies OK", "replies.OK", "{:.0f}"),
    ("replies NODEEXISTS", "replies.NODEEXISTS", "{:.0f}"),
    ("other error replies", "other_errors", "{:.0f}"),
    ("flood time (s)", "flood_seconds", "{:.1f}"),
    ("replies per second", "replies_per_second", "{:.0f}"),
    ("request MB/s sent", "megabytes_per_second", "{:.0f}"),
    ("rounds alive with a fresh client served", "healthy", "{:.0f}"),
]


def figure(report: FloodReport, path: str) -> float:
    if path == "other_errors":
        return float(sum(v for k, v in report.replies.items() if k not in ("OK", "NODEEXISTS")))
    if path == "healthy":
        return 1.0 if report.alive and report.fresh_client else 0.0
    if path == "outstanding_peak" and report.outstanding_peak < 0:
        return math.nan  # mntr never answered
    head, _, rest = path.partition(".")
    value = getattr(report, head)
    if rest:
        value = value.get(rest, 0) if isinstance(value, dict) else getattr(value, rest)
    return float(value)


def _cell(values: list[float], fmt: str) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"

    def text(value: float) -> str:
        return "∞" if math.isinf(value) else fmt.format(value)

    middle = text(statistics.median(values))
    low, high = text(min(values)), text(max(values))
    return middle if low == high else f"{middle} [{low}–{high}]"


def summary_table(reports: Sequence[FloodReport]) -> str:
    """A Markdown table: one column per target, median [min–max] over its rounds."""
    targets = list(dict.fromkeys(report.target for report in reports))
    by_target = {t: [r for r in reports if r.target == t] for t in targets}
    head = "| | " + " | ".join(f"{t} ({len(by_target[t])} rounds)" for t in targets) + " |"
    lines = [head, "|---" * (len(targets) + 1) + "|"]
    for heading, path, fmt in _ROWS:
        if path == "healthy":  # a count of rounds, not a median
            cells = [f"{sum(figure(r, path) for r in by_target[t]):.0f} of {len(by_target[t])}" for t in targets]
        else:
            cells = [_cell([figure(r, path) for r in by_target[t]], fmt) for t in targets]
        lines.append(f"| {heading} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mib(kib: int) -> float:
    return kib / KIB


def fd_limit_raise(wanted: int) -> int:
    """Raise this process's open-file soft limit toward ``wanted`` (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft if soft != resource.RLIM_INFINITY else wanted


__all__ = ["FloodReport", "ProbeFigures", "fd_limit_raise", "process_alive", "process_memory_kib", "summary_table"]
