"""The ``[scheduler]`` section of farm.toml: how often, how long, how patient.

Pydantic only (no Celery), so farm.config can import it without slowing ``farm --help``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SchedulerConfig(BaseModel):
    """Timings of the soak pipeline. Tests shrink them; production keeps the defaults."""

    model_config = ConfigDict(extra="forbid")

    sample_interval: float = Field(default=10.0, gt=0, description="seconds between samples")
    hang_grace: float = Field(
        default=60.0, ge=0, description="extra seconds after 3 missed intervals before a hang"
    )
    lease_seconds: float = Field(
        default=60.0, gt=0, description="host lease TTL; renewed while a step runs"
    )
    reconcile_seconds: float = Field(default=15.0, gt=0, description="beat period")
    overdue_seconds: float = Field(
        default=30.0, gt=0, description="a run this late past its due time is re-driven"
    )
    visibility_timeout: float = Field(
        default=3600.0,
        gt=0,
        description="Redis transport redelivers unacked tasks after this (a backstop only)",
    )
    baseline_max_age_hours: float = Field(
        default=168.0, gt=0, description="a baseline run younger than this is reused"
    )
    boot_timeout: float = Field(default=600.0, gt=0)
    max_infra_retries: int = Field(default=3, ge=0)
    remote_dir: str = Field(default="/var/tmp/farm", pattern=r"^/[A-Za-z0-9_./-]+$")  # noqa: S108 - on the test host
