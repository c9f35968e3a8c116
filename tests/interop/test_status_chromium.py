"""The status page of a real 3-peer zabd ensemble, rendered by headless Chromium.

Three twistd peers (zabd.harness.ensembleprocs, each with its admin port on
a free loopback port) whose server lines carry their client addresses.
Chromium (Debian's ``chromium``; missing, the test fails) loads ``/`` of one
follower's admin port: the page asks the other two peers for their figures
over their client ports, so the roles it shows prove the whole path. Every
wait is a condition with a deadline.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.conftest import kazoo_client
from tests.unit.test_status_page import Cards
from zabd.harness.commands import CFG_NAME, LOCALHOST
from zabd.harness.ensembleprocs import Ensemble, EnsemblePeer, prepare_ensemble
from zabd.harness.probes import listens_on, wait_until
from zabd.harness.processes import ADDRESS_IN_USE, PORT_ATTEMPTS

CHROMIUM = "/usr/bin/chromium"
DEADLINE = 60.0
CHROMIUM_TIMEOUT = 60.0
ADMIN_FAILED = "Unable to start the admin server"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def with_client_addresses(ensemble: Ensemble) -> None:
    """Rewrite each peer's zoo.cfg so that every server line ends with ``;host:clientPort``."""
    client_ports = {sid: peer.port for sid, peer in ensemble.peers.items()}
    for peer in ensemble:
        cfg = peer.workdir / CFG_NAME
        lines = []
        for line in cfg.read_text().splitlines():
            key = line.partition("=")[0]
            member = re.fullmatch(r"server\.(\d+)", key)
            lines.append(f"{line};{LOCALHOST}:{client_ports[int(member.group(1))]}" if member else line)
        cfg.write_text("\n".join(lines) + "\n")


def admin_listening(peer: EnsemblePeer, port: int) -> bool:
    """Whether the peer listens on its admin port; raises if it logged that it could not."""
    if ADMIN_FAILED in peer.log_text():
        raise OSError(f"peer {peer.sid}: {ADMIN_FAILED}\n{peer.describe()}")
    return peer.pid is not None and listens_on(peer.pid, port)


@pytest.fixture
def ensemble_with_admin(tmp_path: Path) -> Iterator[tuple[Ensemble, dict[int, int]]]:
    """A settled 3-peer zabd ensemble and each peer's admin port; another set of ports if one was taken."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        ensemble = prepare_ensemble("zabd", tmp_path / f"ensemble{attempt}", voters=3, admin=True)
        with_client_addresses(ensemble)
        admin_ports = {sid: peer.admin_port for sid, peer in ensemble.peers.items() if peer.admin_port is not None}
        try:
            for peer in ensemble:
                peer.spawn()
            ensemble.wait_for_leader(timeout=DEADLINE)
            for sid, peer in ensemble.peers.items():
                wait_until(lambda: admin_listening(peer, admin_ports[sid]), DEADLINE,
                           f"peer {sid}'s admin port {admin_ports[sid]}", ensemble.describe)
        except (OSError, TimeoutError):
            ensemble.stop_all()
            taken = any(ADDRESS_IN_USE in p.log_text() or ADMIN_FAILED in p.log_text() for p in ensemble)
            if attempt == PORT_ATTEMPTS or not taken:
                raise
            continue
        try:
            yield ensemble, admin_ports
        finally:
            ensemble.stop_all()
        return


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with its profile and HOME under ``tmp_path``."""
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
    home = tmp_path / "chromium-home"
    home.mkdir(exist_ok=True)
    command = [CHROMIUM if Path(CHROMIUM).exists() else "chromium", "--headless", "--no-sandbox",
               "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
               f"--user-data-dir={home / 'profile'}", *args]
    return subprocess.run(command, env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=CHROMIUM_TIMEOUT, check=False)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    assert data[:8] == PNG_SIGNATURE, f"not a PNG: {data[:8]!r}"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chromium_shows_one_leader_and_two_followers(
        ensemble_with_admin: tuple[Ensemble, dict[int, int]], tmp_path: Path) -> None:
    ensemble, admin_ports = ensemble_with_admin
    leader = ensemble.wait_for_leader(timeout=DEADLINE)
    shown = next(sid for sid in ensemble.peers if sid != leader)
    url = f"http://{LOCALHOST}:{admin_ports[shown]}/"
    with kazoo_client(ensemble.hosts([shown])) as client:
        client.create("/status-page", b"seen")  # a write, so every zxid is past the epoch's start
    pages: list[Cards] = []

    def roles_shown() -> bool:
        result = chromium(tmp_path, "--dump-dom", url)
        assert result.returncode == 0, result.stderr
        cards = Cards(result.stdout.encode("utf-8"))
        pages.append(cards)
        return sorted(str(role) for role in cards.roles()) == ["follower", "follower", "leader"]

    wait_until(roles_shown, DEADLINE, f"Chromium to show one leader and two followers at {url}",
               lambda: f"last page text: {''.join(pages[-1].text) if pages else '(none)'}\n{ensemble.describe()}")
    cards = pages[-1]
    assert [card["data-sid"] for card in cards.cards] == ["1", "2", "3"]
    assert next(c for c in cards.cards if c["data-role"] == "leader")["data-sid"] == str(leader)
    this_card = next(c for c in cards.cards if "this" in (c["class"] or "").split())
    assert this_card["data-sid"] == str(shown)
    text = "".join(cards.text)
    assert f"leader: server {leader}" in text and "3 serving" in text
    assert len(re.findall(r"0x[0-9a-f]{9,}", text)) == 3  # each peer's zxid, past epoch 0

    screenshot = tmp_path / "status.png"
    result = chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=390,844",
                      "--hide-scrollbars", url)
    assert result.returncode == 0, result.stderr
    wait_until(screenshot.exists, DEADLINE, f"Chromium's screenshot {screenshot}")
    assert png_size(screenshot.read_bytes()) == (390, 844)
