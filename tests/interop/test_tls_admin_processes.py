"""The HTTP admin server over HTTPS, of real zabd and ZooKeeper 3.8.0 processes, asked with real treq.

As in 3.8, ``admin.forceHttps=true`` makes the admin port HTTPS only and
``admin.portUnification=true`` makes it answer HTTP and HTTPS alike; both use
the ``ssl.quorum.*`` key and trust stores and ask no client certificate.
Each server gets the same zoo.cfg lines and the same certificates (a test
CA's JKS trust store, a JKS key store for 127.0.0.1); treq trusts that CA
alone, so an HTTPS answer also proves the certificate served.  Plain HTTP to
a ``forceHttps`` port gets no HTTP answer: the connection is closed (3.8's
Jetty first sends a TLS alert, zabd closes without one).  mntr's
``insecure_admin_count`` counts the plain HTTP a unified port served.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import interop_targets
from zabd.harness.certs import PASSWORD, Pki, make_pki
from zabd.harness.commands import repository_root, zabd_environment
from zabd.harness.processes import ServerProcess, start_zabd, start_zookeeper

DEADLINE = 60.0
#: One request's limit inside the querying process; a refusal must come well before it.
REQUEST_TIMEOUT_S = 10.0
MODES = {
    "forceHttps": {"admin.forceHttps": "true"},
    "portUnification": {"admin.portUnification": "true"},
}
Answers = dict[str, dict[str, Any]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "admin_server" in metafunc.fixturenames:
        kinds = interop_targets(metafunc.config)
        metafunc.parametrize("admin_server", [(kind, mode) for kind in kinds for mode in MODES],
                             ids=[f"{kind}-{mode}" for kind in kinds for mode in MODES],
                             indirect=True, scope="module")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_admin_cfg(pki: Pki, mode: str) -> dict[str, str]:
    """The admin TLS lines: the mode's switch and the quorum stores (as 3.8, not ``ssl.*``)."""
    return {
        **MODES[mode],
        "ssl.quorum.keyStore.location": str(pki.identity("admin").jks),
        "ssl.quorum.keyStore.password": PASSWORD,
        "ssl.quorum.trustStore.location": str(pki.truststore_jks),
        "ssl.quorum.trustStore.password": PASSWORD,
    }


@pytest.fixture(scope="module")
def admin_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 pki: Pki) -> Iterator[ServerProcess]:
    kind, mode = request.param
    start = {"zabd": start_zabd, "zookeeper": start_zookeeper}[kind]
    with start(tmp_path_factory.mktemp(f"{kind}-{mode}"), tls_admin_cfg(pki, mode), admin=True) as server:
        yield server


def ask(ca: Path, urls: list[str]) -> Answers:
    """GET each URL with treq, trusting only ``ca``, in a process of its own (it runs a reactor).

    url -> {"status", "body"} for an answer, or {"error", "seconds"} when none came.
    """
    done = subprocess.run(
        [sys.executable, "-c", f"from {__name__} import query_main; query_main()", str(ca), *urls],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
        cwd=repository_root(), env=zabd_environment())
    assert done.returncode == 0, done.stderr
    answers: Answers = json.loads(done.stdout)
    return answers


def query_main() -> None:
    """The querying process: ``argv`` is the CA's PEM file, then the URLs."""
    from twisted.internet.defer import Deferred, gatherResults
    from twisted.internet.ssl import Certificate
    from twisted.internet.task import react
    from twisted.web.client import Agent, BrowserLikePolicyForHTTPS

    import treq

    ca, urls = Path(sys.argv[1]), sys.argv[2:]

    async def one(reactor: Any, agent: Agent, url: str) -> tuple[str, dict[str, Any]]:
        started = time.monotonic()
        try:
            response = await treq.get(url, agent=agent, timeout=REQUEST_TIMEOUT_S)
            body = await treq.content(response)
        except Exception as e:  # noqa: BLE001 - what failed is the answer
            reasons = getattr(e, "reasons", None)  # ResponseFailed / ResponseNeverReceived
            detail = "; ".join(r.getErrorMessage() for r in reasons) if reasons else str(e)
            return url, {"error": f"{type(e).__name__}: {detail}", "seconds": time.monotonic() - started}
        return url, {"status": response.code, "body": body.decode("utf-8", "replace")}

    async def main(reactor: Any) -> None:
        policy = BrowserLikePolicyForHTTPS(trustRoot=Certificate.loadPEM(ca.read_bytes()))
        agent = Agent(reactor, contextFactory=policy)
        answers = await gatherResults([Deferred.fromCoroutine(one(reactor, agent, url)) for url in urls])
        print(json.dumps(dict(answers)))

    react(lambda reactor: Deferred.fromCoroutine(main(reactor)))


def ruok_answered(answer: dict[str, Any]) -> bool:
    return answer.get("status") == 200 and json.loads(answer["body"]) == {"command": "ruok", "error": None}


def test_admin_answers_https_and_plain_http_only_with_port_unification(pki: Pki, admin_server: ServerProcess,
                                                                      request: pytest.FixtureRequest) -> None:
    mode = request.node.callspec.params["admin_server"][1]
    port = admin_server.admin_port
    https, http = f"https://127.0.0.1:{port}/commands/ruok", f"http://127.0.0.1:{port}/commands/ruok"
    answers = ask(pki.ca_pem, [https, http])
    assert ruok_answered(answers[https]), answers[https]
    if mode == "portUnification":
        assert ruok_answered(answers[http]), answers[http]
    else:
        # Closed, not left hanging until the request times out; never an HTTP answer.
        assert "error" in answers[http], answers[http]
        assert answers[http]["seconds"] < REQUEST_TIMEOUT_S / 2, answers[http]
    # 3.8 counts the plain HTTP requests a unified port served (zabd: connections; one each here).
    mntr = ask(pki.ca_pem, [f"https://127.0.0.1:{port}/commands/mntr"])[f"https://127.0.0.1:{port}/commands/mntr"]
    assert mntr.get("status") == 200, mntr
    assert json.loads(mntr["body"])["insecure_admin_count"] == (1 if mode == "portUnification" else 0)
    assert admin_server.is_running(), admin_server.describe()
