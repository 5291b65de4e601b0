"""netlab's driver: start and stop the lab, show who owns which port, send traffic."""
