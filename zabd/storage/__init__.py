"""ZooKeeper 3.8's files: txn log and snapshot formats, epochs, recovery, truncation and purge."""
