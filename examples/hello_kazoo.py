"""Talk to a running zabd with kazoo, exactly as to ZooKeeper.

    twistd -n zabd &
    python examples/hello_kazoo.py [127.0.0.1:2181]
"""
from __future__ import annotations

import sys

from kazoo.client import KazooClient


def main(hosts: str) -> None:
    client = KazooClient(hosts=hosts, timeout=10)
    client.start(timeout=10)
    try:
        client.ensure_path("/examples")
        me = client.create("/examples/worker-", b"hello", ephemeral=True, sequence=True)
        data, stat = client.get(me)
        print(f"{me} holds {data!r} (version {stat.version}, owner 0x{stat.ephemeralOwner:x})")
        print("workers:", sorted(client.get_children("/examples")))
        print("server says:", client.command(b"ruok").strip())
    finally:
        client.stop()
        client.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2181")
