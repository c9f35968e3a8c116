"""Java behaviour that ZooKeeper shows on the wire and on disk: hash orders, number and date formats, .properties text."""
