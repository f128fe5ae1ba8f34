# SPDX-License-Identifier: Apache-2.0
"""farm's HTTP API: the alert webhook that starts bisections, and read-only JSON views.

The API calls into the store only; it never imports Celery. See docs/deploy.md.
"""

from farm.api.app import create_app

__all__ = ["create_app"]
