# SPDX-License-Identifier: Apache-2.0
"""The one place that decides: the run lifecycle, verdicts, bisections, host health and
``farm submit``, over the store, driving the stage libraries; plus the Celery app and
its tasks (the only module that defines any: farm.scheduler.tasks).

Importing this package imports no Celery; ``farm.scheduler.app`` does.
"""
