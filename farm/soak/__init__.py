"""Soak runs: the per-run state machine, the load on the host, samples and console."""
