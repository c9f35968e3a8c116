"""zabd: a ZooKeeper-compatible coordination service on Twisted."""
from zabd._version import __version__ as _incremental_version

__version__ = _incremental_version.public()
