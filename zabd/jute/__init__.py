"""The jute codec: primitives, records, txns, opcodes and error codes, byte-exact with ZooKeeper 3.8 (pure)."""
