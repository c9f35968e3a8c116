"""The ``zabd`` console script: ``zabd ARGS`` is ``twistd -n zabd ARGS``, twistd's own options in front."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from zabd.peer.cli import split_arguments, twistd_argv

ROOT = Path(__file__).resolve().parents[2]


def test_zabd_options_follow_the_plugin_name() -> None:
    assert twistd_argv(["--config", "zoo.cfg"]) == ["--nodaemon", "zabd", "--config", "zoo.cfg"]
    assert twistd_argv([]) == ["--nodaemon", "zabd"]


def test_twistd_options_go_in_front_with_their_values() -> None:
    args = ["-c", "zoo.cfg", "--pidfile", "zabd.pid", "-l", "-", "--reactor=poll", "--umask", "022"]
    assert split_arguments(args) == (["--pidfile", "zabd.pid", "-l", "-", "--reactor=poll", "--umask", "022"],
                                     ["-c", "zoo.cfg"])


def test_joined_values_and_help() -> None:
    assert split_arguments(["--config=a.cfg", "-cb.cfg", "--help", "--no-save"]) == (
        ["--no-save"], ["--config=a.cfg", "-cb.cfg", "--help"])


def test_after_a_double_dash_everything_is_zabds() -> None:
    assert split_arguments(["--pidfile=", "--", "--logfile", "x"]) == (["--pidfile="], ["--logfile", "x"])


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "zabd.peer.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_command_runs_the_twistd_plugin(tmp_path: Path) -> None:
    """In a real process: ``--help`` is the plugin's, and a config is read as twistd's zabd reads it."""
    shown = _run_cli("--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "[--config zoo.cfg]" in shown.stdout and "--config=" in shown.stdout
    config = tmp_path / "zoo.cfg"
    config.write_text("tickTime=often\n", encoding="utf-8")
    failed = _run_cli("--pidfile=", "--config", str(config), cwd=tmp_path)
    assert failed.returncode != 0
    assert "tickTime" in failed.stdout + failed.stderr, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr
