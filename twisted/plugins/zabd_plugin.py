from twisted.application.service import ServiceMaker

zabd = ServiceMaker(
    "zabd",
    "zabd.server.tap",
    "A ZooKeeper-compatible coordination service.",
    "zabd",
)
