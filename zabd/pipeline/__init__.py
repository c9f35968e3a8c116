"""The request processor chain: prep, sync and final stages, and the reads (pure)."""
