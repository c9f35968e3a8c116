# -*- test-case-name: tests.unit.test_status_page -*-
"""The status page's HTML from a list of peer rows (pure).

One card per peer rather than a table: cards wrap into a single column on a
phone, so nothing scrolls sideways at 375 px, and sit side by side on a wide
screen. The CSS is inline and there is no script; the page reloads itself
with ``<meta http-equiv="refresh">``. Every text that comes from a peer or
the config is escaped. Cards carry ``data-sid``, ``data-role`` and
``data-reach`` so tools (and the Chromium test) can read them.
"""
from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from zabd.views.admin.status_figures import PeerFigures, Reach, lag_behind, leader_zxid

_STYLE = """
:root{color-scheme:light dark;--fg:#1d2430;--muted:#5b6473;--bg:#f4f6f9;--card:#fff;
--line:#d9dee6;--leader:#1e8e3e;--follower:#1a6fd1;--observer:#7a5cc2;--bad:#c62828;--idle:#b26a00}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ee;--muted:#9aa3b1;--bg:#12161c;--card:#1b2129;
--line:#2c343f}}
*{box-sizing:border-box}
body{margin:0;padding:1rem;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg);overflow-wrap:anywhere}
h1{font-size:1.3rem;margin:0 0 .25rem}
.summary,footer{color:var(--muted);margin:0 0 1rem}
.peers{display:grid;gap:.75rem;grid-template-columns:repeat(auto-fill,minmax(min(100%,17rem),1fr))}
.peer{background:var(--card);border:1px solid var(--line);border-left:.4rem solid var(--muted);
border-radius:.5rem;padding:.75rem .9rem;min-width:0}
.peer.role-leader{border-left-color:var(--leader)}
.peer.role-follower{border-left-color:var(--follower)}
.peer.role-observer{border-left-color:var(--observer)}
.peer.reach-unreachable,.peer.reach-no-address{border-left-color:var(--bad)}
.peer.reach-not-serving{border-left-color:var(--idle)}
.peer h2{font-size:1.05rem;margin:0;display:flex;flex-wrap:wrap;gap:.4rem;align-items:baseline}
.role{font-weight:600;text-transform:uppercase;font-size:.8rem;letter-spacing:.04em}
.me{font-size:.75rem;color:var(--muted);border:1px solid var(--line);border-radius:1rem;padding:0 .45rem}
.address,.problem{margin:.2rem 0 .5rem;color:var(--muted);font-family:ui-monospace,monospace;font-size:.85rem}
.problem{color:var(--bad);font-family:inherit}
dl{margin:0}
dl>div{display:flex;justify-content:space-between;gap:.75rem;padding:.15rem 0;border-top:1px solid var(--line)}
dt{color:var(--muted)}
dd{margin:0;font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}
"""

#: Figures with no value print as this.
_NONE = "–"


@dataclass(frozen=True, slots=True)
class PageContext:
    """
    What the page says about itself.

    :param server_name: who renders it, e.g. ``server 2`` or ``standalone``.
    :param rendered_at: when, as text (UTC).
    :param refresh_seconds: the reload interval.
    """

    server_name: str
    rendered_at: str
    refresh_seconds: int


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: int | None) -> str:
    return _NONE if value is None else str(value)


def _latency(peer: PeerFigures) -> str:
    if peer.latency_avg_ms is None and peer.latency_max_ms is None:
        return _NONE
    avg = _NONE if peer.latency_avg_ms is None else f"{peer.latency_avg_ms:.2f}".rstrip("0").rstrip(".")
    return f"{_number(peer.latency_min_ms)}/{avg}/{_number(peer.latency_max_ms)} ms"


def peer_name(peer: PeerFigures) -> str:
    """``server N``, or ``standalone``."""
    return "standalone" if peer.target.sid is None else f"server {peer.target.sid}"


def shown_role(peer: PeerFigures) -> str:
    """The role word on the card: the peer's mode when serving, else why it has none."""
    return peer.role if peer.reach is Reach.SERVING and peer.role else peer.reach.value


def _rows(peer: PeerFigures, lag: int | None) -> list[tuple[str, str]]:
    zxid = _NONE if peer.zxid is None else f"0x{peer.zxid:x}"
    return [
        ("zxid", zxid),
        ("epoch", _number(peer.epoch)),
        ("lag behind leader", _NONE if lag is None else f"{lag} zxid" + ("" if lag == 1 else "s")),
        ("sessions", _number(peer.sessions)),
        ("connections", _number(peer.connections)),
        ("znodes", _number(peer.znodes)),
        ("latency min/avg/max", _latency(peer)),
        ("outstanding requests", _number(peer.outstanding)),
    ]


def _card(peer: PeerFigures, lag: int | None) -> str:
    role = shown_role(peer)
    reach = peer.reach.value.replace(" ", "-")
    classes = f"peer role-{_e(role.replace(' ', '-'))} reach-{_e(reach)}" + (" this" if peer.target.this_server else "")
    sid = "" if peer.target.sid is None else f' data-sid="{peer.target.sid}"'
    head = (f'<h2><span class="name">{_e(peer_name(peer))}</span> '
            f'<span class="role">{_e(role)}</span>'
            + (' <span class="me">this server</span>' if peer.target.this_server else "") + "</h2>")
    parts = [f'<section class="{classes}"{sid} data-role="{_e(role)}" data-reach="{_e(peer.reach.value)}">', head]
    if peer.target.address:
        parts.append(f'<p class="address">{_e(peer.target.address)}</p>')
    problem = (peer.problem or peer.target.note) if peer.reach is not Reach.SERVING else ""
    if problem:
        parts.append(f'<p class="problem">{_e(problem)}</p>')
    if peer.reach is Reach.SERVING:
        rows = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in _rows(peer, lag))
        parts.append(f"<dl>{rows}</dl>")
    parts.append("</section>")
    return "".join(parts)


def summary(peers: Sequence[PeerFigures]) -> str:
    """One line: how many peers, who leads, how many answer."""
    serving = [p for p in peers if p.reach is Reach.SERVING]
    leaders = [peer_name(p) for p in serving if p.role == "leader"]
    count = f"{len(peers)} peer" + ("" if len(peers) == 1 else "s")
    if len(peers) == 1 and peers[0].target.sid is None:
        return f"standalone server, {'serving' if serving else shown_role(peers[0])}"
    leader = ", ".join(leaders) if leaders else "none"
    others = len(peers) - len(serving)
    return f"{count} · leader: {leader} · {len(serving)} serving" + (f" · {others} not serving" if others else "")


def render_status_page(peers: Sequence[PeerFigures], context: PageContext) -> bytes:
    """The whole page, UTF-8, one card per peer in the order given."""
    lead = leader_zxid(tuple(peers))
    cards = "\n".join(_card(p, lag_behind(lead, p)) for p in peers)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{int(context.refresh_seconds)}">
<title>zabd status · {_e(context.server_name)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header><h1>zabd ensemble status</h1>
<p class="summary">{_e(summary(peers))}</p></header>
<main class="peers">
{cards}
</main>
<footer><p>Rendered by {_e(context.server_name)} at {_e(context.rendered_at)}; reloads every
{int(context.refresh_seconds)} s. Figures are those of the mntr and srvr four-letter words.</p></footer>
</body>
</html>
"""
    return page.encode("utf-8")
