# SPDX-License-Identifier: Apache-2.0
"""The reconciler: periodic (beat) repair of lost work, from the database.

A step's message can be lost in many ways: the worker was killed after taking it, the
broker restarted empty, the next step could not be queued. None of that matters,
because the database says what each active run waits for (``run_progress.due_at``
and ``tick``): any run overdue by ``overdue_seconds`` gets its current step queued
again. A duplicate is harmless (the tick check drops it), and the reconciler may run
on several controllers at once; still, each overdue run is claimed with SELECT ... FOR
UPDATE SKIP LOCKED, so that two reconcilers do not both queue it and a run whose step
is committing right now (its run_progress row locked by the worker) is left alone.

A step that is merely late (workers saturated, their messages waiting) is not lost,
and queueing it again only adds work where there is too much already: a re-drive
storm. So re-drives back off, per step, in Redis (``farm:redrive:<run>`` holds the
tick last re-driven, how often and when): a step is re-driven when it is
``overdue_seconds`` late, then again 2, 4, 8 ... (at most 64) overdue periods after
its last re-drive; not while its host's queue still holds messages that no worker has
taken; and at most ``redrive_per_beat`` per beat, the most overdue first. The check
and the record are one Lua script, atomic across controllers. A broker restarted
empty forgets the records with the messages, so those steps are re-driven at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from farm.config import FarmConfig
from farm.errors import InfraError
from farm.scheduler.app import queue_for
from farm.store import Store
from farm.store.runs import TERMINAL, Run
from farm.store.samples import RunProgress, ensure_progress

log = logging.getLogger(__name__)

Schedule = Callable[[int, str, int, float], bool]
MAX_BACKOFF_DOUBLINGS = 6
RECORD_TTL = 86400  # a record outlives any backoff; a finished run's goes by itself

# KEYS: per run, its record and its host's queue. ARGV: now, overdue, limit, then per
# run its tick. Returns the (1-based) positions of the runs to re-drive.
_PICK = f"""
local now, overdue, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local picked = {{}}
for i = 1, #KEYS / 2 do
  if #picked >= limit then break end
  local record, queue, tick = KEYS[2 * i - 1], KEYS[2 * i], ARGV[3 + i]
  local seen = redis.call('hmget', record, 'tick', 'count', 'at')
  local count, ready = 0, true
  if seen[1] == tick then
    count = tonumber(seen[2])
    ready = now - tonumber(seen[3]) >= overdue * 2 ^ math.min(count, {MAX_BACKOFF_DOUBLINGS})
  end
  if ready and redis.call('llen', queue) == 0 then
    redis.call('hset', record, 'tick', tick, 'count', count + 1, 'at', now)
    redis.call('expire', record, {RECORD_TTL})
    table.insert(picked, i)
  end
end
return picked
"""


def redrive(
    store: Store,
    config: FarmConfig,
    client: redis.Redis[bytes],
    schedule: Schedule,
    now: float | None = None,
) -> int:
    """Queue the current step of overdue active runs, as the backoff allows; how many
    were queued. ``now`` is the clock (tests move it on)."""
    now = time.time() if now is None else now
    overdue = config.scheduler.overdue_seconds
    with store.session() as session:
        _add_missing_progress(session)
        due = session.execute(
            select(RunProgress.run_id, Run.host, RunProgress.tick, RunProgress.due_at)
            .join(Run, Run.id == RunProgress.run_id)
            .where(Run.state.not_in(TERMINAL), RunProgress.due_at < now - overdue)
            .order_by(RunProgress.due_at, RunProgress.run_id)
            .with_for_update(of=RunProgress, skip_locked=True)
        ).all()
        # Recorded while the rows are still ours: another reconciler sees the record.
        picked = _pick(client, due, now, overdue, config.scheduler.redrive_per_beat)
    queued = 0
    for run_id, host, tick, due_at in picked:
        log.info("reconciler: re-driving run %s on %s at tick %s (%.0f s late)", run_id, host,
                 tick, now - due_at)  # fmt: skip
        queued += schedule(run_id, host, tick, 0.0)
    return queued


def _pick(
    client: redis.Redis[bytes],
    due: Sequence[tuple[int, str, int, float]],
    now: float,
    overdue: float,
    limit: int,
) -> list[tuple[int, str, int, float]]:
    if not due:
        return []
    keys = [k for run_id, host, _, _ in due for k in (f"farm:redrive:{run_id}", queue_for(host))]
    ticks = [tick for _, _, tick, _ in due]
    try:
        pick = client.register_script(_PICK)  # EVALSHA: the script is sent once
        positions = pick(keys, [now, overdue, limit, *ticks])
    except redis.RedisError as exc:
        raise InfraError(f"reconciler: redis unreachable: {exc}") from exc
    return [due[int(i) - 1] for i in positions]


def _add_missing_progress(session: Session) -> None:
    """An active run without lifecycle bookkeeping gets it, due now (so it is re-driven
    one overdue period from now if nothing steps it)."""
    missing = session.scalars(
        select(Run.id)
        .outerjoin(RunProgress, RunProgress.run_id == Run.id)
        .where(Run.state.not_in(TERMINAL), RunProgress.run_id.is_(None))
    ).all()
    for run_id in missing:
        ensure_progress(session, run_id)
