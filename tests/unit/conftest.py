"""Fixtures shared by the sans-IO unit tests: a clock that must end idle, and a server on it."""
from __future__ import annotations

from typing import Iterator

import pytest
from twisted.internet.task import Clock

from tests.unit.fakes import make_server
from zabd.serving.standalone import StandaloneServer


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    yield clock
    assert clock.getDelayedCalls() == []


@pytest.fixture
def server(clock: Clock) -> StandaloneServer:
    return make_server(clock)[0]
