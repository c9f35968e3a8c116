"""zabd: a ZooKeeper-compatible coordination service on Twisted."""
from zabd._version import __version__ as _version

__version__ = _version.public()
