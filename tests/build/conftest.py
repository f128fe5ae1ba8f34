# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the build tests."""

from .planted import planted  # noqa: F401
