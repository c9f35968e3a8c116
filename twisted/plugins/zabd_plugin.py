"""``twistd zabd``: Twisted finds zabd here (twisted.plugin searches every twisted/plugins directory on sys.path).

Only the name and the module are given; zabd.peer.tap is imported when the
plugin is used, so listing twistd's plugins stays cheap.
"""
from twisted.application.service import ServiceMaker

zabd = ServiceMaker(
    "zabd",
    "zabd.peer.tap",
    "A ZooKeeper-compatible coordination service.",
    "zabd",
)
