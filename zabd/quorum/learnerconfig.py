# -*- test-case-name: tests.unit.test_reconfig_quorum -*-
"""The configs a learner meets on the quorum port (3.8's Learner and Follower reconfig steps).

- a reconfig PROPOSAL: the config it proposes is *seen*;
- COMMITANDACTIVATE / INFORMANDACTIVATE: that config is *in force* once its
  txn is applied, led by the sid the packet names;
- NEWLEADER's data: the leader's config, in force at UPTODATE.

The peer (``on_config``) answers whether the learner must leave its role:
its leader changed, or it became or stopped being an observer.
"""
from __future__ import annotations

from collections.abc import Callable

from zabd.membership.verifier import QuorumVerifier, verifier_from_text
from zabd.quorum.configchange import txn_config
from zabd.quorum.snapstream import QuorumWireError


class LearnerConfigs:
    """The configs one learner has seen and put in force, and when each takes effect."""

    def __init__(self, version: int, on_seen: Callable[[QuorumVerifier], None],
                 on_config: Callable[[QuorumVerifier, int | None], bool]) -> None:
        #: The version of the config in force here.
        self.version = version
        self.on_seen = on_seen
        self.on_config = on_config
        #: Configs put in force by a commit, by its zxid: (config, its leader).
        self._activations: dict[int, tuple[QuorumVerifier, int]] = {}
        self._newleader: QuorumVerifier | None = None

    def proposed(self, txn: bytes) -> None:
        config = _config_of(txn)
        if config is not None:
            self.on_seen(config)

    def activates(self, zxid: int, txn: bytes, leader: int) -> None:
        """The commit of ``zxid`` puts its config in force, led by ``leader``."""
        config = _config_of(txn)
        if config is None:
            raise QuorumWireError(f"an activation of 0x{zxid:x}, which is no reconfig")
        self._activations[zxid] = (config, leader)

    def applied(self, zxid: int) -> QuorumVerifier | None:
        """``zxid`` is applied; the config it put in force if that changes this learner's role."""
        activation = self._activations.pop(zxid, None)
        if activation is None:
            return None
        config, leader = activation
        self.version = max(self.version, config.version)
        return config if self.on_config(config, leader) else None

    def newleader(self, data: bytes | None) -> None:
        if data:
            try:
                self._newleader = verifier_from_text(data)
            except ValueError as e:
                raise QuorumWireError(f"bad config in NEWLEADER: {e}") from None

    def uptodate(self) -> QuorumVerifier | None:
        """UPTODATE: the leader's config is in force; returned if that changes this learner's role."""
        config, self._newleader = self._newleader, None
        if config is None or config.version <= self.version:
            return None
        self.version = config.version
        return config if self.on_config(config, None) else None


def _config_of(txn: bytes) -> QuorumVerifier | None:
    try:
        return txn_config(txn)
    except ValueError as e:
        raise QuorumWireError(f"bad reconfig txn: {e}") from None
