# SPDX-License-Identifier: Apache-2.0
"""Soak on a host: start the load detached, sample /proc, stop and quiesce it. A library:
the run lifecycle that drives it is farm.scheduler.lifecycle."""
