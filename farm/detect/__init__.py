"""Detect: find what went wrong in a soak (kernel crashes in console text)."""
