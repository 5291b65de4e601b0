"""Breaking the lab on purpose, and mending it: faults and impaired links."""
