"""The connection throttle (3.8's BlueThrottle): the token bucket, its weights, BLUE's drops, and refusals."""
from __future__ import annotations

from pathlib import Path
from random import Random

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock

from tests.unit.fakes import FakeClient, make_server
from zabd.metrics.server import ServerMetrics
from zabd.server.client_port import ClientPortFactory
from zabd.config.zoocfg import ZabdConfig
from zabd.views.stats_view import StandaloneView
from zabd.serving.connthrottle import BlueThrottle
from zabd.config.overload_settings import ConnectionThrottleSettings


class FixedRandom(Random):
    """A Random whose every draw is ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def bucket(rng: Random | None = None, **settings: object) -> BlueThrottle:
    return BlueThrottle(ConnectionThrottleSettings(**settings), 0, rng or Random(0))  # type: ignore[arg-type]


def test_no_tokens_means_no_throttling() -> None:
    throttle = bucket()
    assert all(throttle.check_limit(1, 0) for _ in range(1000))
    assert throttle.deficit == 0


def test_the_bucket_refuses_past_its_tokens_and_refills_per_whole_fill_time() -> None:
    throttle = bucket(max_tokens=3, fill_time_ms=1000, fill_count=2)
    assert [throttle.check_limit(1, 0) for _ in range(4)] == [True, True, True, False]
    assert throttle.deficit == 3
    assert not throttle.check_limit(1, 1000)  # not more than one fill time yet
    assert throttle.check_limit(1, 1001)  # 2 tokens back; 1 taken
    assert throttle.tokens == 1
    assert throttle.check_limit(1, 100_000) and throttle.tokens == 2  # never beyond the maximum


def test_weights_count_tokens_in_global_sessions() -> None:
    throttle = bucket(max_tokens=2, fill_count=1, weight_enabled=True, global_weight=3, local_weight=1,
                      renew_weight=2)
    assert (throttle.max_tokens, throttle.fill_count) == (6, 3)
    assert throttle.tokens_needed(0, local_sessions=False) == 3
    assert throttle.tokens_needed(0, local_sessions=True) == 1
    assert throttle.tokens_needed(0x1234, local_sessions=True) == 2
    assert bucket(max_tokens=2).tokens_needed(0, local_sessions=False) == 1


def test_blue_raises_the_drop_chance_on_an_empty_bucket_and_lowers_it_once_refilled() -> None:
    throttle = bucket(FixedRandom(0.3), max_tokens=2, fill_time_ms=10_000, freeze_time_ms=0, drop_increase=0.25,
                      drop_decrease=0.125, decrease_ratio=0.5)
    assert throttle.check_limit(1, 1) and throttle.check_limit(1, 2)
    assert not throttle.check_limit(1, 3)  # empty: the chance rises to 0.25, the bucket refuses
    assert throttle.drop_chance == 0.25
    assert not throttle.check_limit(1, 3)  # within the freeze time: unchanged
    assert throttle.drop_chance == 0.25
    assert not throttle.check_limit(1, 4)
    assert throttle.drop_chance == 0.5
    # Refilled, nothing spent: the chance falls to 0.375, and the draw of 0.3 is
    # still dropped, tokens or not; then to 0.25, and it passes.
    assert not throttle.check_limit(1, 20_005)
    assert (throttle.drop_chance, throttle.tokens) == (0.375, 2)
    assert throttle.check_limit(1, 20_006) and throttle.drop_chance == 0.25


def test_a_refused_connect_request_closes_the_connection_unanswered(clock: Clock) -> None:
    server = make_server(clock, connection_throttle=ConnectionThrottleSettings(max_tokens=1, fill_time_ms=1000))[0]
    metrics: ServerMetrics = server.ctx.metrics
    first, second = FakeClient(server), FakeClient(server)
    assert first.handshake() is not None
    assert second.handshake() is None and second.lost
    assert metrics.connection_rejected.value == 1
    assert metrics.connection_requests.value == 1  # counted after the throttle, as in 3.8
    deficit = metrics.connection_token_deficit
    assert (deficit.count, deficit.total) == (1, 1)
    clock.advance(1.5)  # more than one fill time: a token is back
    assert FakeClient(server).handshake() is not None


def test_a_reconnect_costs_the_renew_weight(clock: Clock) -> None:
    settings = ConnectionThrottleSettings(max_tokens=1, fill_time_ms=1_000_000, weight_enabled=True)
    server = make_server(clock, connection_throttle=settings)[0]
    assert server.connection_throttle.max_tokens == 3
    first = FakeClient(server)
    assert first.handshake() is not None  # a new global session: 3 tokens
    again = FakeClient(server)
    assert again.handshake(session_id=first.session_id, passwd=first.password) is None  # 2 more: none left
    assert server.ctx.metrics.connection_rejected.value == 1


def test_drop_probability_is_in_mntr(clock: Clock, tmp_path: Path) -> None:
    server = make_server(clock, connection_throttle=ConnectionThrottleSettings(max_tokens=1, freeze_time_ms=0),
                         random=FixedRandom(0.0))[0]
    server.connection_throttle.drop_chance = 0.5
    view = StandaloneView(server, ZabdConfig(data_dir=str(tmp_path)))
    assert ("connection_drop_probability", 0.5) in view.mntr_extra()


def test_the_connection_limits_count_connection_rejected(clock: Clock) -> None:
    metrics = ServerMetrics()
    factory = ClientPortFactory(make_server(clock)[0], lambda word, argument: "", {}, 4096, 1, max_cnxns=2,
                                metrics=metrics)
    assert factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 1)) is not None
    assert factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 2)) is None  # maxClientCnxns
    assert factory.buildProtocol(IPv4Address("TCP", "10.0.0.2", 1)) is not None
    assert factory.buildProtocol(IPv4Address("TCP", "10.0.0.3", 1)) is None  # maxCnxns
    assert metrics.connection_rejected.value == 2
