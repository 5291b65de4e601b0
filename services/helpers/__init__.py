"""Programs run by the one-capability helper containers (capture, link changes, netem)."""
