# SPDX-License-Identifier: Apache-2.0
"""Detect: find what went wrong in a soak (kernel crashes in console text)."""
