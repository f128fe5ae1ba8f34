# SPDX-License-Identifier: Apache-2.0
"""Engine state to and from JSON, for the ``bisections.engine_state`` column.

The state is the settings plus the evidence log: replaying the log rebuilds the
engine exactly, so a controller restart resumes a bisection where it stood.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ValidationError

from farm.bisect.engine import Engine, Evidence, Outcome, Settings
from farm.bisect.model import Prior
from farm.errors import FarmBug

VERSION = 1


class _EvidenceModel(BaseModel):
    kernel: int
    host: str
    boot: str
    uptime_hours: float
    outcome: Outcome
    run_id: int | None = None


class _StateModel(BaseModel):
    version: int
    patches: int
    settings: dict[str, Any]
    prior: dict[str, Any]
    evidence: list[_EvidenceModel]


def dump(engine: Engine) -> dict[str, Any]:
    settings = dataclasses.asdict(engine.settings)
    prior = settings.pop("prior")
    return {
        "version": VERSION,
        "patches": engine.n,
        "settings": settings,
        "prior": prior,
        "evidence": [dataclasses.asdict(ev) for ev in engine.log],
    }


def _tuples(fields: dict[str, Any]) -> Any:
    """JSON made the dataclasses' tuples into lists."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}


def load(data: dict[str, Any]) -> Engine:
    try:
        state = _StateModel.model_validate(data)
        prior = Prior(**_tuples(state.prior))
        settings = Settings(**_tuples(state.settings), prior=prior)
    except (ValidationError, TypeError) as exc:
        raise FarmBug(f"stored bisection state is unreadable: {exc}") from exc
    if state.version != VERSION:
        raise FarmBug(f"stored bisection state has version {state.version}, expected {VERSION}")
    engine = Engine(state.patches, settings)
    for ev in state.evidence:
        engine.record(Evidence(**ev.model_dump()))
    return engine
