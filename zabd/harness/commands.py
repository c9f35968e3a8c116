"""The files and command lines that start a zabd or Apache ZooKeeper server.

Kept apart from :mod:`zabd.harness.processes`, which runs and supervises the
processes, so that what a server is started *with* (its ``zoo.cfg``, the twistd
bootstrap and environment for zabd, the JVM flags, system properties and
classpath for ZooKeeper) can be read and tested on its own, without starting
anything.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import zabd

LOCALHOST = "127.0.0.1"
CFG_NAME = "zoo.cfg"

# Debian's zookeeper.jar names its dependencies in its manifest Class-Path
# (slf4j-api included, but no slf4j binding); slf4j-simple makes the server log
# to stderr, which we capture.
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
SLF4J_BINDING_JAR = Path("/usr/share/java/slf4j-simple.jar")
ZOOKEEPER_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
# Jetty (in zookeeper.jar's Class-Path) needs the servlet API, which the
# manifest leaves out: without it 3.8 logs "Unable to load jetty" and runs no
# AdminServer.
SERVLET_API_JAR = Path("/usr/share/java/servlet-api.jar")
# NettyServerCnxnFactory (which ZooKeeper's TLS client port needs) and the
# Netty client socket use these too; the manifest names netty's buffer,
# common, handler and transport jars but not them.
NETTY_EXTRA_JARS: tuple[Path, ...] = tuple(
    Path("/usr/share/java", jar)
    for jar in ("netty-codec.jar", "netty-resolver.jar", "netty-transport-native-unix-common.jar"))
NETTY_SERVER_FACTORY = "org.apache.zookeeper.server.NettyServerCnxnFactory"

# zoo.cfg keys that ZooKeeper honours only as JVM system properties, mapped to
# the property name. Any extra_cfg key starting with "zookeeper." is passed
# through as a property of the same name. The cfg line is written as well, so
# zabd sees exactly the same zoo.cfg.
ZOOKEEPER_SYSTEM_PROPERTIES: Mapping[str, str] = {
    "extendedTypesEnabled": "zookeeper.extendedTypesEnabled",
    "DigestAuthenticationProvider.superDigest": "zookeeper.DigestAuthenticationProvider.superDigest",
    "znode.container.checkIntervalMs": "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute": "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs": "znode.container.maxNeverUsedIntervalMs",
    "jute.maxbuffer": "jute.maxbuffer",
    "readonlymode.enabled": "readonlymode.enabled",
}

# twistd as the twistd script runs it, but with this checkout's zabd as its one subcommand: a
# twisted/plugins/zabd_plugin.py of another zabd installed on the path (found first) cannot stand in.
# An interpreter whose zabd predates zabd.peer.cli (ZABD_PYTHON) runs plain twistd.
_TWISTD_BOOTSTRAP = (
    "try:\n    from zabd.peer.cli import run_twistd as run\n"
    "except ImportError:\n    from twisted.scripts.twistd import run\nrun()"
)


def repository_root() -> Path:
    """The directory holding the ``zabd`` package (and ``twisted/plugins``)."""
    return Path(zabd.__file__).resolve().parent.parent


def write_config(
    workdir: Path, port: int, extra_cfg: Mapping[str, str] | None = None
) -> Path:
    """Write ``workdir/zoo.cfg`` for a standalone server on 127.0.0.1:port."""
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings: dict[str, str] = {
        "tickTime": "2000",
        "dataDir": str(data_dir),
        "clientPort": str(port),
        "clientPortAddress": LOCALHOST,
        "4lw.commands.whitelist": "*",
        "admin.enableServer": "false",
    }
    settings.update(extra_cfg or {})
    cfg = workdir / CFG_NAME
    cfg.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return cfg


def admin_settings(port: int, address: str = LOCALHOST) -> dict[str, str]:
    """zoo.cfg keys that turn the HTTP admin server on at ``address:port`` (zabd and ZooKeeper alike)."""
    return {"admin.enableServer": "true", "admin.serverAddress": address, "admin.serverPort": str(port)}


def admin_enabled(extra_cfg: Mapping[str, str] | None) -> bool:
    """Whether ``extra_cfg`` asks for the admin server (the harness turns it off otherwise)."""
    return (extra_cfg or {}).get("admin.enableServer", "false").strip().lower() == "true"


def netty_enabled(extra_cfg: Mapping[str, str] | None) -> bool:
    """Whether ``extra_cfg`` picks ZooKeeper's Netty connection factory (as its TLS client port needs)."""
    settings = extra_cfg or {}
    chosen = settings.get("serverCnxnFactory", settings.get("zookeeper.serverCnxnFactory", ""))
    return chosen.strip() == NETTY_SERVER_FACTORY


def zookeeper_classpath(admin: bool = False, netty: bool = False) -> str:
    jars: tuple[Path, ...] = (
        (ZOOKEEPER_JAR, SLF4J_BINDING_JAR, SERVLET_API_JAR) if admin else (ZOOKEEPER_JAR, SLF4J_BINDING_JAR))
    if netty:
        jars += NETTY_EXTRA_JARS
    for jar in jars:
        if not jar.exists():
            raise FileNotFoundError(f"ZooKeeper needs {jar} (Debian packages zookeeper, libslf4j-java, "
                                    "libservlet-api-java, libnetty-java)")
    return ":".join(str(jar) for jar in jars)


def zookeeper_system_properties(extra_cfg: Mapping[str, str] | None) -> list[str]:
    """``-D`` flags for the settings ZooKeeper takes only as system properties."""
    flags = []
    for key, value in (extra_cfg or {}).items():
        if key.startswith("zookeeper."):
            flags.append(f"-D{key}={value}")
        elif key in ZOOKEEPER_SYSTEM_PROPERTIES:
            flags.append(f"-D{ZOOKEEPER_SYSTEM_PROPERTIES[key]}={value}")
    return flags


def zookeeper_command(cfg: Path, workdir: Path, extra_cfg: Mapping[str, str] | None) -> list[str]:
    java = shutil.which("java")
    if java is None:
        raise FileNotFoundError("java not found on PATH (needed to run Apache ZooKeeper)")
    admin = admin_enabled(extra_cfg)
    return [
        java,
        # The benchmarks raise the heap for large trees.
        f"-Xmx{os.environ.get('ZABD_ZOOKEEPER_HEAP', '512m')}",
        "-Djava.net.preferIPv4Stack=true",
        f"-Dzookeeper.log.dir={workdir}",
        f"-Dzookeeper.admin.enableServer={'true' if admin else 'false'}",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
        "-Dorg.slf4j.simpleLogger.showDateTime=true",
        "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
        *zookeeper_system_properties(extra_cfg),
        "-cp",
        zookeeper_classpath(admin, netty_enabled(extra_cfg)),
        ZOOKEEPER_MAIN,
        str(cfg),
    ]


def zabd_command(cfg: Path) -> list[str]:
    # ZABD_PYTHON runs the server under another interpreter that has zabd
    # installed (the benchmark's --zabd-python), e.g. a distribution's build.
    python = os.environ.get("ZABD_PYTHON") or sys.executable
    return [python, "-c", _TWISTD_BOOTSTRAP, "-n", "--pidfile=", "zabd", "--config", str(cfg)]


def zabd_environment() -> dict[str, str]:
    env = dict(os.environ)
    root = str(repository_root())
    previous = env.get("PYTHONPATH")
    env["PYTHONPATH"] = root if not previous else f"{root}{os.pathsep}{previous}"
    env["PYTHONUNBUFFERED"] = "1"
    return env
