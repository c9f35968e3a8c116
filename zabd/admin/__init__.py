"""The HTTP admin endpoint: ZooKeeper's AdminServer commands, /metrics and the status page."""
