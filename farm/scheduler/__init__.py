"""The scheduler: Celery tasks that advance soak runs, host leases and the reconciler.

Importing this package imports no Celery; ``farm.scheduler.app`` does.
"""
