# SPDX-License-Identifier: Apache-2.0
"""Prometheus metrics read from the store at scrape time."""
