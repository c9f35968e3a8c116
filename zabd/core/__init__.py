"""The data tree, its txn rules and digest, sessions, watches, ACLs and quotas: ZooKeeper's server state (pure)."""
