"""Fixtures shared by the unit tests: a clock that must end idle, a server on it, and test CAs."""
from __future__ import annotations

from typing import Iterator

import pytest
from twisted.internet.task import Clock

from tests.unit.fakes import make_server
from zabd.serving.standalone import StandaloneServer
from zabd.harness.certs import Pki, make_pki


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    yield clock
    assert clock.getDelayedCalls() == []


@pytest.fixture
def server(clock: Clock) -> StandaloneServer:
    return make_server(clock)[0]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA whose identities the TLS tests share (each test names its own)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A second CA, which ``pki``'s trust stores do not trust."""
    return make_pki(tmp_path_factory.mktemp("stranger"), name="stranger CA")
