"""The ``[bisect]`` section of farm.toml: when bisections start and the time scale.

Pydantic only, so farm.config can import it cheaply. The engine thinks in hours; a farm
whose crashes come within minutes (the demo) shrinks the scale here, not in the engine.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BisectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto: bool = Field(default=True, description="bisect every patched run that ends FAIL")
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1.0, description="posterior an automatic bisection stops at"
    )
    step_overhead_hours: float = Field(
        default=0.25, gt=0, description="build + boot before a bisect run starts soaking"
    )
    min_step_hours: float = Field(default=1.0, gt=0, description="shortest bisect soak")
    max_step_hours: float = Field(default=48.0, gt=0, description="longest bisect soak")
    prior_scale_hours: float = Field(
        default=24.0, gt=0, description="typical time to crash the engine assumes at first"
    )
    max_hours: float | None = Field(
        default=None, gt=0, description="default wall-clock budget of a bisection"
    )

    @model_validator(mode="after")
    def _ordered(self) -> BisectConfig:
        if self.min_step_hours > self.max_step_hours:
            raise ValueError(
                f"min_step_hours {self.min_step_hours:g} exceeds max_step_hours "
                f"{self.max_step_hours:g}"
            )
        return self

    def durations(self, steps: int = 8) -> tuple[float, ...]:
        """Soak lengths the planner chooses from: geometric from min to max."""
        lo, hi = self.min_step_hours, self.max_step_hours
        if lo == hi:
            return (lo,)
        return tuple(lo * (hi / lo) ** (i / (steps - 1)) for i in range(steps))
