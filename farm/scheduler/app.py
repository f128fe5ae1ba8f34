# SPDX-License-Identifier: Apache-2.0
"""The Celery application, configured from FarmConfig.

Delivery decisions (why a soak survives worker, broker and controller restarts):

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only
  after its step finished, so a worker killed mid-step leaves the message to be
  redelivered instead of silently dropped. Every step is idempotent and carries the
  run's tick, so a redelivered duplicate is dropped by the state machine.
- The Redis transport redelivers unacknowledged messages after ``visibility_timeout``
  (default 1 h here). It must exceed the longest step (a clean kernel build, minutes)
  and the longest countdown (one sampling interval), or a running step would be
  delivered twice; it is a backstop only. The reconciler (beat) is the primary
  recovery: it re-drives any run whose next step is overdue by ``overdue_seconds``,
  from the database, which is the record of truth. A broker that restarts empty
  therefore loses nothing either.
- Unacknowledged messages are not restored when a worker's broker connection drops or
  the worker shuts down (``QoS.restore_at_shutdown = False``): kombu 5.7's restore
  path crashes the worker with ``AttributeError: 'NoneType' object has no attribute
  'hostname'`` when Redis restarts, which would turn a broker blip into a dead worker.
  Those messages wait for ``visibility_timeout`` instead, and the reconciler re-drives
  their runs long before.
- ``worker_prefetch_multiplier = 1``: a worker reserves one message at a time, so a
  long step does not hold other hosts' messages hostage.
- Retries only for InfraError (``autoretry_for`` on the task). No result backend:
  results live in the database.
- One queue per host (``farm.host.<name>``) routes steps to workers that serve that
  host; the lease, not the queue, guarantees one job per host at a time. The
  reconciler runs on ``farm.control``. Kernel builds go to ``farm.build``, served
  only by workers that build (``[worker] build``; farm.scheduler.builds).
"""

from __future__ import annotations

import logging

from celery import Celery, current_app
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from farm.config import FarmConfig, redact

log = logging.getLogger(__name__)

CONTROL_QUEUE = "farm.control"
BUILD_QUEUE = "farm.build"
_app: Celery | None = None


def queue_for(host: str) -> str:
    return f"farm.host.{host}"


SIM_THREADS = 4


def default_concurrency(config: FarmConfig, hosts: list[str]) -> int:
    """A worker's threads: one per host, whose steps mostly wait on SSH, QEMU and
    builds; a few for all its simulated hosts together, whose steps are answered in
    this process and only burn CPU (more threads would only queue for the GIL and the
    database's write lock, making every step slower); one for the control queue."""
    simulated = sum(1 for host in hosts if config.host(host).kind == "sim")
    return len(hosts) - simulated + min(simulated, SIM_THREADS) + 1


def create_app(config: FarmConfig) -> Celery:
    from kombu.transport import redis as kombu_redis

    kombu_redis.QoS.restore_at_shutdown = False  # see the module docstring
    app = Celery("farm", set_as_current=True)
    sched = config.scheduler
    app.conf.update(
        broker_url=config.broker_url,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": sched.visibility_timeout},
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_default_queue=CONTROL_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        beat_schedule={
            "reconcile": {
                "task": "farm.reconcile",
                "schedule": sched.reconcile_seconds,
                "options": {"queue": CONTROL_QUEUE, "expires": sched.reconcile_seconds * 2},
            }
        },
        beat_schedule_filename=str(config.data_dir / "celerybeat-schedule"),
        timezone="UTC",
    )
    app.conf.farm_config = config
    app.conf.imports = ("farm.scheduler.tasks",)  # the worker registers them at start
    app.set_default()
    return app


def schedule(run_id: int, host: str, tick: int, delay: float) -> bool:
    """Queue a run's next step on its host's queue, by task name (a client needs no
    tasks loaded). A broker that is down is not fatal: the reconciler re-drives."""
    try:
        current_app.send_task(
            "farm.advance",
            (run_id, tick),
            {"host": host},
            queue=queue_for(host),
            countdown=max(0.0, delay),
        )
    except (KombuError, OSError, RedisError) as exc:
        log.warning("run %s: next step not queued (%s); the reconciler will re-drive", run_id, exc)
        return False
    return True


def send_build(build_id: int) -> bool:
    """Queue the job of build ``build_id`` for the build workers; a broker that is down
    is not fatal: the runs waiting for it send it again (farm.scheduler.builds)."""
    try:
        current_app.send_task("farm.build", (build_id,), queue=BUILD_QUEUE)
    except (KombuError, OSError, RedisError) as exc:
        log.warning(
            "build %s: job not queued (%s); a waiting run will send it again", build_id, exc
        )
        return False
    return True


def get_app(config: FarmConfig) -> Celery:
    """The process's app, created on first use from ``config``."""
    global _app
    if _app is None or _app.conf.farm_config is not config:
        _app = create_app(config)
    return _app


def why_not_running(config: FarmConfig, timeout: float = 2.0) -> str | None:
    """Why runs queued now would not move: the broker does not answer, or no worker
    does; None when a worker answers a ping through the broker."""
    app = get_app(config)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        replies = app.control.ping(timeout=timeout / 2, limit=1)
    except (KombuError, OSError, RedisError) as exc:
        return f"the broker {redact(config.broker_url)} does not answer ({redact(str(exc))})"
    return None if replies else f"no worker answers on {redact(config.broker_url)}"
