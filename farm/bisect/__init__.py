# SPDX-License-Identifier: Apache-2.0
"""The bisection engine: a posterior over the first bad patch, evidence in, next tests
out. Pure: no store, no Celery; farm.scheduler.bisecting drives it."""
