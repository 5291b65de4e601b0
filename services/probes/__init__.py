"""Programs the driver runs inside a lab host to act or to read the kernel (no privileges)."""
