"""zoo.cfg as ZooKeeper 3.8 reads it: keys, the ensemble, dynamic files, overload and security settings (pure)."""
