"""zabd.client over TLS against real servers: zabd under twistd, and Apache ZooKeeper 3.8.0 as the referee.

Each server gets a secureClientPort with ``ssl.clientAuth=need`` and a
certificate that names 127.0.0.1 only (not ``localhost``), so one server
shows every case: the client with the right CA and its own certificate
connects, creates and reads (and asks ``ruok`` over TLS); a client trusting
another CA is refused and says why; dialled as ``localhost`` the certificate
does not match, which ``verify_certs=True`` refuses and ``verify_certs=False``
accepts.

The client runs on the real reactor in a process of its own (this module,
run with ``python -m``), so a hang fails at the subprocess deadline.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from zabd.harness.certs import make_pki
from zabd.harness.probes import free_port, listens_on, wait_until
from zabd.harness.processes import ServerProcess, start_zabd, start_zookeeper
from zabd.tools._tls import secure_server_cfg

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 90.0
#: How long a refused client keeps trying before start() gives up.
REFUSED_START_S = 3.0


def start_secure(kind: str, workdir: Path, cfg: dict[str, str]) -> ServerProcess:
    server = (start_zabd if kind == "zabd" else start_zookeeper)(workdir / kind, cfg)
    port = int(cfg["secureClientPort"])
    try:
        wait_until(lambda: listens_on(server.pid, port), 30.0, f"{kind} to listen on {port}", server.describe)
    except BaseException:
        server.stop()
        raise
    return server


def test_client_over_tls(target_kind: str, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other-pki")
    server_id = pki.identity("server", hosts=("127.0.0.1",))
    client_id = pki.identity("client")
    port = free_port()
    files = {"port": port, "ca": str(pki.ca_pem), "other_ca": str(other.ca_pem),
             "cert": str(client_id.cert_pem), "key": str(client_id.key_pem)}
    # The same zoo.cfg lines as the benchmark's --tls gives both servers.
    with start_secure(target_kind, tmp_path, secure_server_cfg(port, server_id.jks, pki.truststore_jks)) as server:
        done = subprocess.run([sys.executable, "-m", "tests.interop.test_client_tls_processes", json.dumps(files)],
                              capture_output=True, text=True, timeout=DEADLINE_S, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-20000:] + server.describe()
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["created"] == "/tls-a" and out["data"] == "over tls" and out["ruok"] == "imok"
    assert out["wrong_ca"][0] == "OperationTimeoutError"
    assert "certificate verify failed" in out["wrong_ca"][1] and "not trusted" in out["wrong_ca"][1], out
    assert out["wrong_ca_ruok"][0] == "TlsError" and "not trusted" in out["wrong_ca_ruok"][1], out
    assert out["mismatch"][0] == "OperationTimeoutError"
    assert "does not name localhost" in out["mismatch"][1], out
    # A refused start ends at its own timeout (no hang: else the subprocess deadline fails the test).
    assert f"not connected within {REFUSED_START_S} s" in out["wrong_ca"][1]
    assert out["unverified"] == "over tls"


# ---- the client's side, run as ``python -m tests.interop.test_client_tls_processes FILES`` -------------


async def _refused(client: Any) -> tuple[str, str]:
    try:
        await client.start(timeout=REFUSED_START_S)
    except Exception as e:
        return type(e).__name__, str(e)
    await client.stop()
    return "connected", ""


async def scenario(reactor: Any, files: dict[str, Any]) -> dict[str, Any]:
    from zabd.client import ZooKeeperClient

    port = files["port"]

    def client(host: str = "127.0.0.1", **kw: Any) -> ZooKeeperClient:
        kw.setdefault("ca", files["ca"])
        return ZooKeeperClient(f"{host}:{port}", reactor=reactor, use_ssl=True, certfile=files["cert"],
                               keyfile=files["key"], **kw)

    out: dict[str, Any] = {}
    good = client()
    await good.start(timeout=20.0)
    out["created"] = await good.create("/tls-a", b"over tls")
    out["data"] = (await good.get("/tls-a"))[0].decode()
    out["ruok"] = await good.command(b"ruok")
    await good.stop()

    out["wrong_ca"] = await _refused(client(ca=files["other_ca"]))
    try:
        await client(ca=files["other_ca"]).command(b"ruok", timeout=REFUSED_START_S)
        out["wrong_ca_ruok"] = ["answered", ""]
    except Exception as e:
        out["wrong_ca_ruok"] = [type(e).__name__, str(e)]
    out["mismatch"] = await _refused(client("localhost"))

    lax = client("localhost", verify_certs=False)
    await lax.start(timeout=20.0)
    out["unverified"] = (await lax.get("/tls-a"))[0].decode()
    await lax.delete("/tls-a")
    await lax.stop()
    return out


def main() -> None:
    files = json.loads(sys.argv[1])

    async def run(reactor: Any) -> None:
        print(json.dumps(await scenario(reactor, files)), flush=True)

    react(lambda reactor: ensureDeferred(run(reactor)))


if __name__ == "__main__":
    main()
