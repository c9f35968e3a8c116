"""The admin endpoint's commands, JSON shapes and status page, rendered from a server view (pure)."""
