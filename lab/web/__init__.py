"""`lab web`: the lab in a browser: topology, port tables, traffic and frames, live or replayed."""
