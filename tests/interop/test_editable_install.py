"""``pip install -e .`` gives a working ``twistd zabd`` and ``zabd``, in a throwaway venv.

The venv sees the system's site-packages (Twisted and the other dependencies
come from there, nothing is downloaded but the build backend), and the
project is copied first so that the build leaves nothing in the checkout.
A zabd installed in the system's site-packages may bring its own
twisted/plugins/zabd_plugin.py, which Twisted would load before this one, so
the test checks the mechanism itself: the copy's twisted/plugins directory is
on Twisted's plugin path, and Twisted finds the zabd plugin in it.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIND_PLUGIN = """
import sys
from pathlib import Path
import twisted.plugins
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
import zabd
plugins = Path(sys.argv[1], "twisted", "plugins")
assert str(plugins) in twisted.plugins.__path__, twisted.plugins.__path__
assert Path(zabd.__file__).resolve().is_relative_to(Path(sys.argv[1])), zabd.__file__
assert "zabd" in [maker.tapname for maker in getPlugins(IServiceMaker, twisted.plugins)]
print("found")
"""


def _project_copy(target: Path) -> Path:
    copy = target / "zabd-src"
    copy.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "dropin.cache")
    shutil.copytree(ROOT / "zabd", copy / "zabd", ignore=ignore)
    shutil.copytree(ROOT / "twisted", copy / "twisted", ignore=ignore)
    return copy


def test_an_editable_install_runs_zabd(tmp_path: Path) -> None:
    source = _project_copy(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--editable", str(source)]
    if importlib.util.find_spec("wheel") is not None:
        install.insert(-2, "--no-build-isolation")  # offline: the build backend is already here
    subprocess.run(install, check=True, timeout=600, cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"  # not the project: only the install can find it
    elsewhere.mkdir()
    found = subprocess.run([str(python), "-c", FIND_PLUGIN, str(source)], cwd=elsewhere,
                           capture_output=True, text=True, timeout=120)
    assert found.stdout.strip() == "found", found.stdout + found.stderr
    shown = subprocess.run([str(bin_dir / "zabd"), "--help"], cwd=elsewhere, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "--config=" in shown.stdout
