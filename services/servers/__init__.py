"""The lab's servers: the programs its processes run (and the init of a host)."""
