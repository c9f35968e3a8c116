# -*- test-case-name: tests.unit.test_ensemble_config -*-
"""
3.8's QuorumPeerConfig rules: zoo.cfg's members and settings -> an :class:`EnsembleConfig`, or None.

The rules cover participants and observers, group and weight lines,
standaloneEnabled, myid, and where the client address comes from; a
configuration 3.8 runs standalone gives None. Pure, like the records in
:mod:`zabd.config.ensemble`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from zabd.config.ensemble import EnsembleConfig, EnsembleError, QuorumOptions, parse_myid
from zabd.membership.hierarchy import HierarchyError, QuorumHierarchical, hierarchy_from_properties
from zabd.membership.members import Address, QuorumServer, parse_member
from zabd.membership.verifier import QuorumMaj, parse_server_id, parse_version, properties_key_order


def build_ensemble(
    properties: Sequence[tuple[str, str]],
    options: QuorumOptions,
    *,
    standalone_enabled: bool = True,
    myid: str | None = None,
    myid_path: str = "myid",
    static_client: Address | None = None,
    dynamic: Sequence[tuple[str, str]] | None = None,
) -> tuple[EnsembleConfig | None, list[tuple[str | None, str]]]:
    """
    Apply 3.8's QuorumPeerConfig rules to zoo.cfg; None when 3.8 would run standalone.

    3.8 reads ``server.N``, ``version`` and ``peerType`` only under those exact
    names, so the ``zookeeper.``-prefixed spellings are not looked at here.

    :param properties: every (key, value) of zoo.cfg in file order; 3.8's
        member order depends on all the keys, not only the ``server.N`` ones.
    :param options: the peer's settings.
    :param standalone_enabled: ``standaloneEnabled``.
    :param myid: the myid file's text, None if there is no such file.
    :param myid_path: that file's name, for messages.
    :param static_client: (host, port) from ``clientPort``/``clientPortAddress``,
        host ``0.0.0.0`` when no address was given; None without ``clientPort``.
    :param dynamic: the (key, value) entries of the ``dynamicConfigFile``, its
        ``version`` (from the file name) last; when given, the membership
        (``server.N``, ``group.G``, ``weight.SID``, ``version``) comes from
        them alone, as 3.8 reads it.
    :returns: the ensemble (or None) and warnings as (key or None, text).
    :raises EnsembleError: naming the key or file at fault.
    """
    settings = dict(properties)  # the last value of each key wins, as in Properties
    if dynamic is not None:
        settings = {k: v for k, v in settings.items()
                    if not k.startswith(("server.", "group.", "weight.")) and k != "version"}
        settings.update(dynamic)
        # 3.8 builds the verifier from the dynamic file's own Properties, so their order rules.
        order = properties_key_order(dict(dynamic))
    else:
        order = properties_key_order(settings)
    servers = [key for key in order if key.startswith("server.")]
    try:
        version = parse_version(settings["version"]) if "version" in settings else 0
    except ValueError as e:
        raise EnsembleError(str(e), "version") from None
    written_for: dict[int, str] = {}
    members = []
    for key in servers:
        try:
            sid = parse_server_id(key)
            if sid in written_for:
                raise ValueError(f"server id {sid} is also given as {written_for[sid]}")
            members.append(parse_member(sid, settings[key]))
        except ValueError as e:
            raise EnsembleError(str(e), key) from None
        written_for[sid] = key
    hierarchy = [(key, settings[key]) for key in order if key.startswith(("group.", "weight."))]
    verifier = _verifier(members, hierarchy, version, written_for)
    warnings: list[tuple[str | None, str]] = []
    if hierarchy and not members:
        warnings.append((hierarchy[0][0], "ignored: group and weight lines need server lines "
                                          "(3.8 refuses to start with them)"))
    voters, observers = len(verifier.voting_members), len(verifier.observing_members)
    if voters == 0 and not standalone_enabled:
        raise EnsembleError("standaloneEnabled is false, so at least one participant "
                            "(server.N line) is needed", "standaloneEnabled")
    if voters <= 1 and standalone_enabled or voters == 0:
        if observers:
            raise EnsembleError("observers need a quorum of participants to follow",
                                written_for[min(verifier.observing_members)])
        if voters:
            warnings.append((None, "only one server is listed: running standalone"))
        return None, warnings
    if voters <= 2:
        warnings.append((None, "no server failure will be tolerated: "
                               "an ensemble needs at least 3 participants"))
    elif voters % 2 == 0:
        warnings.append((None, "non-optimal configuration: "
                               "consider an odd number of participants"))
    for key in ("initLimit", "syncLimit"):
        if key not in settings and f"zookeeper.{key}" not in settings:
            raise EnsembleError(f"{key} is not set (a quorum peer needs it)", key)
    if myid is None:
        raise EnsembleError("myid file is missing", file=myid_path)
    try:
        sid = parse_myid(myid)
    except ValueError as e:
        raise EnsembleError(str(e), file=myid_path) from None
    if sid not in verifier.all_members:
        raise EnsembleError(f"my id {sid} is not in the server list (no server.{sid} line)",
                            file=myid_path)
    verifier = _with_client_address(verifier, sid, written_for[sid], static_client)
    options, adjusted = options.adjusted()
    warnings += adjusted
    ensemble = EnsembleConfig(sid, verifier, options)
    peer_type = settings.get("peerType", ensemble.peer_type.name).lower()
    if peer_type != ensemble.peer_type.name.lower():
        warnings.append(("peerType", f"{peer_type} does not match the server list "
                                     f"({ensemble.peer_type.name.lower()}); "
                                     "using the server list"))
    return ensemble, warnings


def _verifier(members: list[QuorumServer], hierarchy: list[tuple[str, str]], version: int,
              written_for: dict[int, str]) -> QuorumMaj | QuorumHierarchical:
    # As in 3.8, any group or weight key makes the quorums hierarchical. Without
    # server lines 3.8 fails on them (a NullPointerException); zabd runs standalone.
    if not members or not hierarchy:
        return QuorumMaj(members, version)
    try:
        return hierarchy_from_properties(members, hierarchy, version)
    except HierarchyError as e:
        key = e.key if e.sid is None else written_for.get(e.sid, e.key)
        raise EnsembleError(e.problem, key) from None


def _with_client_address(verifier: QuorumMaj | QuorumHierarchical, sid: int, key: str,
                         static_client: Address | None) -> QuorumMaj | QuorumHierarchical:
    # 3.8's setupClientPort: the server line's client address wins; clientPort
    # may repeat it but not contradict it, and fills it in when the line has none.
    # Names are not resolved here, so a name and an address only clash on the port.
    me = verifier.all_members[sid]
    if static_client is None:
        return verifier
    if me.client_addr is not None:
        static_host, line_host = static_client[0], me.client_addr[0]
        comparable = _is_ip_literal(static_host) and _is_ip_literal(line_host)
        wildcard = static_host in ("0.0.0.0", "0:0:0:0:0:0:0:0")
        if (static_client[1] != me.client_addr[1]
                or (comparable and not wildcard and static_host != line_host)):
            raise EnsembleError(
                f"clientPort/clientPortAddress ({static_client[0]}:{static_client[1]}) differ from "
                f"the client address on the server line ({me.client_addr[0]}:{me.client_addr[1]})",
                key)
        return verifier
    filled = replace(me, client_addr=static_client, client_addr_from_static=True)
    if isinstance(verifier, QuorumHierarchical):
        return verifier.with_member(filled)
    # Fed back in 3.8's own order, the members keep it.
    return QuorumMaj([filled if m.sid == sid else m for m in verifier.all_members.values()],
                     verifier.version)


def _is_ip_literal(host: str) -> bool:
    # Hosts here are already in Java's form, so a literal is all digits and dots, or has ':'.
    return ":" in host or host.replace(".", "").isdigit()
