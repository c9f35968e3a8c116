"""
The ensemble's membership and settings, read from zoo.cfg as ZooKeeper 3.8 reads them.

Pure: text and values in, records out; reading ``<dataDir>/myid`` is the
caller's job. This module holds the records; :mod:`zabd.config.ensemble_build`
applies 3.8's QuorumPeerConfig rules to build them.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from zabd.membership.hierarchy import HierarchyError, QuorumHierarchical, hierarchy_from_properties
from zabd.membership.members import (
    Address,
    LearnerType,
    MemberSyntaxError,
    QuorumServer,
    java_host_string,
    parse_member,
)
from zabd.membership.verifier import (
    QuorumMaj,
    QuorumVerifier,
    parse_server_id,
    parse_version,
    properties_key_order,
    verifier_from_entries,
    verifier_from_text,
    version_hex,
)

__all__ = [
    "Address", "EnsembleConfig", "EnsembleError", "HierarchyError", "LearnerType",
    "MemberSyntaxError", "QuorumHierarchical", "QuorumMaj", "QuorumOptions", "QuorumServer", "QuorumVerifier",
    "hierarchy_from_properties", "java_host_string", "parse_member", "parse_myid", "parse_server_id", "parse_version",
    "properties_key_order", "verifier_from_entries", "verifier_from_text", "version_hex",
]


class EnsembleError(ValueError):
    """
    An ensemble configuration 3.8 refuses.

    :param problem: what is wrong.
    :param key: the zoo.cfg key at fault, if one is.
    :param file: the file at fault when it is not zoo.cfg (the myid file).
    """

    def __init__(self, problem: str, key: str | None = None, file: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.key = key
        self.file = file


@dataclass(frozen=True, slots=True)
class QuorumOptions:
    """The zoo.cfg settings only a quorum peer has, with 3.8's defaults (times in ms).

    The ticks and limits, and ``reconfigEnabled``, are ZabdConfig's: a
    standalone server has them too.
    """

    election_alg: int = 3
    sync_enabled: bool = True
    quorum_listen_on_all_ips: bool = False
    cnx_timeout_ms: int = 5000
    election_port_bind_retry: int = 3
    tcp_keep_alive: bool = False
    leader_serves: bool = True
    commit_log_count: int = 500
    snapshot_size_factor: float = 0.33

    def adjusted(self) -> tuple[QuorumOptions, list[tuple[str | None, str]]]:
        """
        The options with out-of-range values replaced as 3.8 replaces them.

        :returns: the options and (key, warning) for each value replaced.
        """
        fixed, warnings = self, list[tuple[str | None, str]]()
        if self.commit_log_count < 500:
            warnings.append(("commitLogCount", f"{self.commit_log_count} is below the "
                                               "minimum 500; using 500"))
            fixed = replace(fixed, commit_log_count=500)
        if self.snapshot_size_factor > 1:
            warnings.append(("snapshotSizeFactor", f"{self.snapshot_size_factor} is above 1; "
                                                   "using 0.33"))
            fixed = replace(fixed, snapshot_size_factor=0.33)
        if self.election_port_bind_retry < 0:
            warnings.append(("electionPortBindRetry", f"{self.election_port_bind_retry} is "
                                                      "negative; using 3"))
            fixed = replace(fixed, election_port_bind_retry=3)
        return fixed, warnings


@dataclass(frozen=True, slots=True)
class EnsembleConfig:
    """
    This server's view of the ensemble: who it is, who the others are, how to run.

    ``last_seen`` is a proposed config newer than ``verifier`` that was found
    in ``zoo.cfg.dynamic.next`` at start (3.8's lastSeenQuorumVerifier), if any.
    """

    myid: int
    verifier: QuorumVerifier
    options: QuorumOptions = QuorumOptions()
    last_seen: QuorumVerifier | None = None

    @property
    def my_server(self) -> QuorumServer:
        """This server's own member entry."""
        return self.verifier.all_members[self.myid]

    @property
    def peer_type(self) -> LearnerType:
        """What this server is; the server list decides, as in 3.8."""
        return self.my_server.learner_type

    @property
    def is_observer(self) -> bool:
        return self.peer_type is LearnerType.OBSERVER

    @property
    def client_address(self) -> Address | None:
        """The client address on this server's own line, if it has one."""
        me = self.my_server
        return None if me.client_addr_from_static else me.client_addr

    def conf_lines(self) -> list[tuple[str, str]]:
        """The ``conf`` lines a quorum peer adds after ``initLimit`` and ``syncLimit``, in 3.8's order."""
        me = self.my_server
        return [
            ("electionAlg", str(self.options.election_alg)),
            ("electionPort", str(me.election_addr[1])),
            ("quorumPort", str(me.quorum_addr[1])),
            ("peerType", str(int(me.learner_type))),
        ]

    def conf_membership(self) -> str:
        """What ``conf`` prints after those lines: a ``membership: `` line, then the config text."""
        return "membership: \n" + self.verifier.config_text().decode("utf-8")


def parse_myid(text: str) -> int:
    """
    The server id in a myid file: its first line, whitespace trimmed.

    3.8 takes the first line as it is (``Long.parseLong``); zabd also forgives
    spaces around the number.

    :raises ValueError: if it is not a non-negative integer.
    """
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    if not first.isascii() or not first.lstrip("+").isdigit() or int(first) >= 1 << 63:
        raise ValueError(f"expected a server id (a non-negative integer), got {first!r}")
    return int(first)
