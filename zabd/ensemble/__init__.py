"""One ensemble member's role machine (LOOKING, LEADING, FOLLOWING, OBSERVING) and what it needs of the network."""
