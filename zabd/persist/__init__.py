"""The data directory on the real disk: the syncer thread, the txn log, the replica and snapshots."""
