"""ZooKeeper's Java client (Debian's zkCli.sh) over TLS, against zabd and ZooKeeper 3.8.0 alike.

Both servers get the same zoo.cfg TLS lines and the same certificates: a
test CA's JKS trust store and a server JKS key store, made by
:mod:`zabd.harness.certs` (pyjks), with ``secureClientPort`` beside the
plaintext ``clientPort`` and ``ssl.clientAuth`` at its default, need.
ZooKeeper needs ``serverCnxnFactory=...NettyServerCnxnFactory`` for a TLS
port (zabd reads the line and has one connection layer).  zkCli.sh runs
with ``zookeeper.client.secure=true``, the Netty client socket and a client
key store, against the secure port, and must print what it prints against
ZooKeeper for ``create`` and ``get``; a plaintext client, and a TLS client
without a certificate, get no session from either.  A last case gives both
servers stores made by Java's own keytool (one self-signed key pair,
trusted on both sides, as ZooKeeper's admin guide sets up).
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.conftest import interop_targets, require_executable, start_server
from zabd.harness.certs import PASSWORD, Pki, keytool_stores, make_pki
from zabd.harness.commands import NETTY_EXTRA_JARS, NETTY_SERVER_FACTORY, ZOOKEEPER_JAR
from zabd.harness.probes import free_port
from zabd.harness.processes import ADDRESS_IN_USE, PORT_ATTEMPTS, ServerProcess, ServerStartError

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
#: zkCli.sh puts ``$CLIENT_JVMFLAGS $JVMFLAGS`` after its own ``-cp``; the
#: last ``-cp`` wins, so JVMFLAGS gives the whole classpath: Debian's
#: (conf dir and zookeeper.jar, no slf4j binding, so no log lines) and the
#: Netty jars the client socket needs.
ZKCLI_CLASSPATH = ":".join(["/etc/zookeeper/conf", str(ZOOKEEPER_JAR), *map(str, NETTY_EXTRA_JARS)])
RUN_DEADLINE = 90.0
#: How long zkCli waits for the session before a command fails (ms).
CONNECT_TIMEOUT_MS = 30000
NOISE_PREFIXES = ("SLF4J:", "Connecting to ", "WATCHER::", "WatchedEvent state:")


@dataclass(frozen=True)
class Stores:
    """What the server's and the client's TLS properties name."""

    server_keystore: Path
    client_keystore: Path
    truststore: Path
    password: str = PASSWORD

    def server_cfg(self, secure_port: int) -> dict[str, str]:
        return {
            "secureClientPort": str(secure_port),
            "secureClientPortAddress": "127.0.0.1",
            "serverCnxnFactory": NETTY_SERVER_FACTORY,
            "ssl.keyStore.location": str(self.server_keystore),
            "ssl.keyStore.password": self.password,
            "ssl.keyStore.type": "JKS",
            "ssl.trustStore.location": str(self.truststore),
            "ssl.trustStore.password": self.password,
            "ssl.trustStore.type": "JKS",
        }

    def client_flags(self) -> list[str]:
        return [
            "-Dzookeeper.client.secure=true",
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            f"-Dzookeeper.ssl.keyStore.location={self.client_keystore}",
            f"-Dzookeeper.ssl.keyStore.password={self.password}",
            f"-Dzookeeper.ssl.trustStore.location={self.truststore}",
            f"-Dzookeeper.ssl.trustStore.password={self.password}",
        ]


@dataclass(frozen=True)
class SecureServer:
    process: ServerProcess
    secure_port: int
    stores: Stores

    def secure_address(self) -> str:
        return f"127.0.0.1:{self.secure_port}"


@pytest.fixture(scope="module")
def zkcli() -> str:
    require_executable("java")
    return require_executable(ZKCLI)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def pki_stores(pki: Pki) -> Stores:
    return Stores(pki.identity("server").jks, pki.identity("client", server=False).jks, pki.truststore_jks)


def start_secure(kind: str, workdir: Path, stores: Stores) -> SecureServer:
    """Start ``kind`` with a secure client port; another port if someone took the free one first."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        secure_port = free_port()
        try:
            process = start_server(kind, workdir, stores.server_cfg(secure_port))
        except ServerStartError as error:
            if attempt == PORT_ATTEMPTS or ADDRESS_IN_USE not in error.log:
                raise
            continue
        return SecureServer(process, secure_port, stores)
    raise AssertionError("unreachable")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "secure_server" in metafunc.fixturenames:
        metafunc.parametrize("secure_server", interop_targets(metafunc.config), indirect=True, scope="module")


@pytest.fixture(scope="module")
def secure_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  pki_stores: Stores) -> Iterator[SecureServer]:
    """zabd or ZooKeeper, per the interop targets (both by default)."""
    kind: str = request.param
    server = start_secure(kind, tmp_path_factory.mktemp(f"{kind}-tls"), pki_stores)
    with server.process:
        yield server


def run_zkcli(zkcli: str, address: str, client_flags: list[str], *command: str) -> tuple[int, list[str], str]:
    """One zkCli.sh command against ``address``: (exit status, output lines without noise, raw output).

    zkCli.sh starts java as a child, so it runs in a process group of its
    own, killed whole when the deadline passes.
    """
    env: Mapping[str, str] = {**os.environ, "CLIENT_JVMFLAGS": " ".join(client_flags),
                              "JVMFLAGS": f"-cp {ZKCLI_CLASSPATH}"}
    process = subprocess.Popen(
        [zkcli, "-timeout", str(CONNECT_TIMEOUT_MS), "-server", address, *command],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(env), start_new_session=True)
    try:
        raw, _ = process.communicate(timeout=RUN_DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raw, _ = process.communicate()
        raise AssertionError(f"zkCli.sh did not finish within {RUN_DEADLINE}s: {command}\n"
                             f"{raw.decode('utf-8', 'replace')}") from None
    output = raw.decode("utf-8", "replace")
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith(NOISE_PREFIXES)]
    return process.returncode, lines, output


def create_and_get(zkcli: str, server: SecureServer) -> None:
    path = f"/tls-{uuid.uuid4().hex[:8]}"
    flags, address = server.stores.client_flags(), server.secure_address()
    status, lines, output = run_zkcli(zkcli, address, flags, "create", path, "over-tls")
    assert (status, lines) == (0, [f"Created {path}"]), f"{output}\n{server.process.describe()}"
    status, lines, output = run_zkcli(zkcli, address, flags, "get", path)
    assert (status, lines) == (0, ["over-tls"]), f"{output}\n{server.process.describe()}"


def test_zkcli_creates_and_gets_over_tls(zkcli: str, secure_server: SecureServer) -> None:
    create_and_get(zkcli, secure_server)


@pytest.mark.parametrize("leave_out", ["every TLS flag", "the client key store"])
def test_secure_port_refuses_plaintext_and_certificateless_clients(
        zkcli: str, secure_server: SecureServer, leave_out: str) -> None:
    """A plaintext client, and (``ssl.clientAuth`` need) a TLS client with no certificate, get no session."""
    flags = secure_server.stores.client_flags()
    flags = [] if leave_out == "every TLS flag" else [f for f in flags if ".ssl.keyStore." not in f]
    status, lines, output = run_zkcli(zkcli, secure_server.secure_address(), flags, "get", "/")
    assert (status, lines[-1:]) == (1, ["KeeperErrorCode = ConnectionLoss for /"]), output


def test_keytool_made_jks_stores_serve_zkcli(zkcli: str, tmp_path: Path, target_kind: str) -> None:
    """zabd loads the JKS stores Java's keytool wrote (and ZooKeeper, given the same, agrees)."""
    keystore, truststore = keytool_stores(tmp_path / "keytool")
    stores = Stores(keystore, keystore, truststore)
    server = start_secure(target_kind, tmp_path / target_kind, stores)
    with server.process:
        create_and_get(zkcli, server)
