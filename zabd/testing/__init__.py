"""In-memory fakes, public like treq.testing: a simulated network, clock and disk, whole ensembles, fake ZooKeeper servers, fuzzers and the chaos run."""
