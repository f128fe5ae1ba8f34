"""Prometheus metrics read from the store at scrape time."""
