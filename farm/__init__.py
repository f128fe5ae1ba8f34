# SPDX-License-Identifier: Apache-2.0
"""farm: a soak-test farm for Linux kernel patch series."""

__version__ = "0.1.0"
