"""Traffic: socket scripts and the conversations each protocol has."""
