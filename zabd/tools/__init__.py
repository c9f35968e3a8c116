"""Command-line tools that drive zabd and ZooKeeper from outside: the load benchmark (zabd-bench) and the restart benchmark."""
