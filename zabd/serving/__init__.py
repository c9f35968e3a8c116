"""The servers that answer clients, standalone and per role, and one client connection (pure)."""
