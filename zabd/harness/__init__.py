"""Harnesses around real processes: zabd and ZooKeeper peers, kazoo's suite, the black-box fault test, floods."""
