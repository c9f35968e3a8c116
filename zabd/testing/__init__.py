"""In-memory fakes for testing zabd and its clients, public like ``treq.testing``: no socket, no thread, no sleep.

Everything here runs on a fake clock, so a test decides every interleaving
and a seed replays a run exactly. Process harnesses (real servers, real
ports) are in zabd.harness instead.

Building blocks:

- :mod:`zabd.testing.simulation`: virtual time, the call queue, the RNG and
  the trace of one simulated world (``Simulation``, and a node's ``Scope``);
- :mod:`zabd.testing.simnet`: a network between simulated nodes, with
  partitions, losses, delays and crashes (its election links are in
  :mod:`~zabd.testing.simelection`, its byte streams in
  :mod:`~zabd.testing.simstreams`);
- :mod:`zabd.testing.memdisk` and :mod:`zabd.testing.memlog`: a disk that
  loses unsynced bytes on a crash, and ZooKeeper's txn log on it;
- :mod:`zabd.testing.simreplica`: a Zab replica on that disk.

Whole systems:

- :mod:`zabd.testing.ensemble`: ``SimEnsemble``, real QuorumPeers and their
  servers on the simulated network, built by zabd.peer.assembly as twistd's
  peers are; :mod:`zabd.testing.reconfigsim` adds joins and reconfigs;
- :mod:`zabd.testing.fakezk`: fake ZooKeeper servers (scripted, or a real
  in-memory zabd server) behind an ``IReactorTCP``, for testing clients;
- :mod:`zabd.testing.tlsmemory`: TLS connections in memory.

Runs that search for bugs:

- :mod:`zabd.testing.chaos`: random faults against a SimEnsemble, with Zab's
  invariants checked throughout (``python -m zabd.testing.chaos``);
- :mod:`zabd.testing.remix`: the scenarios of the Zab bugs Remix found;
- :mod:`zabd.testing.fuzz`: a mutation fuzzer for the decoders and ports
  (``python -m zabd.testing.fuzz``).
"""
