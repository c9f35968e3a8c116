"""The composition root: one standalone server or ensemble peer built from a ZabdConfig, and twistd's entry point."""
