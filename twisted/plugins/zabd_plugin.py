from twisted.application.service import ServiceMaker

zabd = ServiceMaker(
    "zabd",
    "zabd.peer.tap",
    "A ZooKeeper-compatible coordination service.",
    "zabd",
)
