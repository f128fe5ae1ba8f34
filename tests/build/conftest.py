"""Fixtures of the build tests."""

from .planted import planted  # noqa: F401
