"""TLS as ZooKeeper configures it: key and trust stores, OpenSSL contexts, host checks (no Twisted)."""
