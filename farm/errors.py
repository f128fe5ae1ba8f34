# SPDX-License-Identifier: Apache-2.0
"""Errors, split by who must act.

Every error farm raises on purpose is a FarmError. The subclass says who has to do
something about it, which also decides the CLI exit code and whether a task retries:

- UserError: the input or the configuration is wrong (exit 1). Never retried.
- KernelError: the kernel under test failed: it does not build, boot or survive (exit 2).
  This is a result, not a malfunction; a bisection consumes it.
- InfraError: our side failed: a host is unreachable, a disk is full, a tool is missing
  (exit 3). Tasks retry these, and a bisection treats the test as not done.
- FarmBug: farm itself is wrong (exit 4). Report it.

Third-party exceptions (paramiko, git, redis, sqlalchemy) are translated into these at
the module that talks to them, most specific first.
"""

from __future__ import annotations


class FarmError(Exception):
    """Base of farm's errors: a message and, where known, the next command to type."""

    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UserError(FarmError):
    """Bad input or configuration: the user must fix it."""

    exit_code = 1


class KernelError(FarmError):
    """The kernel under test failed (build, boot, crash): a finding about the patches."""

    exit_code = 2


class InfraError(FarmError):
    """Hosts, network, toolchain or services failed: the operator must act; retryable."""

    exit_code = 3


class FarmBug(FarmError):
    """An internal inconsistency in farm itself."""

    exit_code = 4
