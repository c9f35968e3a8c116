"""Fast Leader Election and the rules of the election port's links (pure)."""
