"""The experiments that ship with the lab, written on its public API."""
