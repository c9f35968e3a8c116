# -*- test-case-name: tests.unit.test_connection_throttle -*-
"""ZooKeeper 3.8's BlueThrottle, sans-IO: a token bucket for new sessions, with BLUE's random drops.

Each ConnectRequest takes tokens from the bucket (one, or with weights on,
3 for a new global session, 1 for a new local one, 2 for a reconnect); a
request that finds too few is refused and its connection closed. The
bucket starts full at ``connection_throttle_tokens`` (0: no throttling) and
gains ``fill_count`` tokens per ``fill_time`` ms, up to that maximum; with
weights on, both are counted in global sessions, so they are multiplied by
the global weight.

With ``freeze_time`` other than -1, BLUE adds random drops: at most once
per freeze time, the drop chance rises by ``drop_increase`` if the bucket
is empty, or falls by ``drop_decrease`` if at most ``decrease_ratio`` of it
is spent; each ConnectRequest is then refused with that chance before the
bucket is looked at.

Time is the server clock in ms, handed in; randomness comes from an
injected ``random.Random``.
"""
from __future__ import annotations

import math
from random import Random

from zabd.config.overload_settings import ConnectionThrottleSettings


class BlueThrottle:
    """
    One server's connection throttle.

    :param settings: the bucket's settings (weights already adjusted).
    :param now_ms: the clock reading the bucket starts at.
    :param rng: the source of BLUE's random drops.
    """

    def __init__(self, settings: ConnectionThrottleSettings, now_ms: int, rng: Random) -> None:
        self.settings = settings
        weight = settings.global_weight if settings.weight_enabled else 1
        self.max_tokens = settings.max_tokens * weight
        self.fill_count = settings.fill_count * weight
        self.tokens = self.max_tokens
        self._last_fill = now_ms
        self._last_freeze = now_ms
        #: The chance that a ConnectRequest is refused before the bucket is looked at.
        self.drop_chance = 0.0
        self._rng = rng

    @property
    def deficit(self) -> int:
        """Tokens missing from a full bucket (the ``connection_token_deficit`` figure)."""
        return self.max_tokens - self.tokens

    def tokens_needed(self, session_id: int, local_sessions: bool) -> int:
        """What a ConnectRequest for ``session_id`` costs (0: a new session)."""
        settings = self.settings
        if not settings.weight_enabled:
            return 1
        if session_id != 0:
            return settings.renew_weight
        return settings.local_weight if local_sessions else settings.global_weight

    def check_limit(self, need: int, now_ms: int) -> bool:
        """Take ``need`` tokens if BLUE and the bucket allow it (3.8's checkLimit)."""
        if self.max_tokens == 0:
            return True
        settings = self.settings
        elapsed = now_ms - self._last_fill
        if elapsed > settings.fill_time_ms:
            # Java's integer division (towards zero): whole tokens for whole fill times.
            gained = elapsed * self.fill_count
            refill = gained // settings.fill_time_ms if gained >= 0 else -(-gained // settings.fill_time_ms)
            self.tokens = min(self.tokens + refill, self.max_tokens)
            self._last_fill = now_ms
        if settings.freeze_time_ms != -1 and not self._check_blue(now_ms):
            return False
        if self.tokens < need:
            return False
        self.tokens -= need
        return True

    def _check_blue(self, now_ms: int) -> bool:
        settings = self.settings
        if now_ms - self._last_freeze > settings.freeze_time_ms:
            spent = self.max_tokens - self.tokens
            # Java's Math.round: half up.
            threshold = math.floor(self.max_tokens * settings.decrease_ratio + 0.5)
            if spent == self.max_tokens and self.drop_chance < 1:
                self.drop_chance = min(self.drop_chance + settings.drop_increase, 1.0)
            elif spent <= threshold and self.drop_chance > 0:
                self.drop_chance = max(self.drop_chance - settings.drop_decrease, 0.0)
            self._last_freeze = now_ms
        return not self._rng.random() < self.drop_chance
