"""What the admin surface shows of a running server: four-letter words, stats, admin JSON and the status page (pure)."""
