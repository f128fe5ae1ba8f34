# SPDX-License-Identifier: Apache-2.0
"""farm bisect: start a bisection of a failed run, show its posterior, simulate strategies.

``farm bisect RUN ...`` is ``farm bisect start RUN ...``: a group cannot take an
argument in its subcommands' place, so a leading number is routed to ``start``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from farm.cli.common import emit_json, get_config, get_store, json_option, printable
from farm.errors import UserError
from farm.units import parse_duration

if TYPE_CHECKING:
    from farm.store.bisect import Bisection


def _hours(text: str) -> float:
    """A duration like 12h or 1h30m in hours; a bare number is taken as hours here."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text) / 3600.0


class _BisectGroup(click.Group):
    """Routes ``farm bisect 42 ...`` to ``farm bisect start 42 ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0].isdigit():
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_BisectGroup)
def bisect() -> None:
    """Find the first bad patch of a series (and measure how well that works).

    \b
    farm bisect RUN [--regression R] [--hosts a,b] [--max-hours H] [--wait]
    farm bisect status ID
    farm bisect list
    farm bisect simulate --patches 28 --mttf 12h
    """


@bisect.command("start")
@click.argument("run_id", metavar="RUN", type=int)
@click.option("--regression", help="Crash title or counter to hunt [default: the run's first].")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--hosts", help="Comma-separated hosts to test on [default: all].")
@click.option("--max-hours", help="Wall-clock budget, e.g. 72h; then report the credible set.")
@click.option("--wait", is_flag=True, help="Wait until the bisection is done.")
@click.option("--timeout", default="7d", show_default=True, help="How long --wait waits.")
@json_option
@click.pass_context
def start(
    ctx: click.Context,
    run_id: int,
    regression: str | None,
    confidence: float,
    hosts: str | None,
    max_hours: str | None,
    wait: bool,
    timeout: str,
    as_json: bool,
) -> None:
    """Bisect the regression of a failed run RUN across its series.

    The scheduler's beat (`farm beat`) starts it and queues the bisect runs; --wait
    shows its progress until it names the first bad patch (or its budget runs out).
    """
    from farm.scheduler.bisecting import request_bisection, wait_for_bisection

    config = get_config(ctx)
    names = [h.strip() for h in hosts.split(",") if h.strip()] if hosts else None
    for name in names or []:
        config.host(name)  # a UserError naming the known hosts
    store = get_store(ctx)
    budget = _hours(max_hours) if max_hours else None
    bid = request_bisection(
        store,
        run_id,
        regression=regression,
        confidence=confidence,
        hosts=names,
        max_hours=budget,
        requested_by="cli",
    )

    shown: list[str] = []

    def progress(b: Bisection) -> None:
        """One line whenever the state or the leading patch changes."""
        if as_json or len(b.posterior) < 2:
            return
        top = max(range(len(b.posterior) - 1), key=lambda i: b.posterior[i])
        line = f"  bisection {b.id} [{b.state.value}]: patch {top + 1} at {b.posterior[top]:.0%}"
        if not shown or shown[-1] != line:
            shown.append(line)
            click.echo(line, err=True)

    if not as_json:
        click.echo(
            f"bisection {bid} of run {run_id} requested; the scheduler's beat (farm beat) "
            f"runs it: farm bisect status {bid}"
        )
    if not wait:
        if as_json:
            emit_json({"id": bid, "run": run_id, "state": "requested"})
        return
    b = wait_for_bisection(store, bid, _hours(timeout) * 3600.0, progress, poll=5.0)
    info = {"id": b.id, "run": run_id, "state": b.state.value, "culprit": b.culprit, **b.result}
    if as_json:
        emit_json(info)
        return
    verdict = f"first bad patch {b.culprit}" if b.culprit else b.result.get("reason", "no verdict")
    click.echo(f"bisection {b.id} [{b.state.value}]: {verdict}")


@bisect.command("list")
@click.option("--state", type=click.Choice(["requested", "running", "done", "cancelled"]))
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, state: str | None, as_json: bool) -> None:
    """Every bisection, newest first: its run, what it hunts, its state and verdict."""
    from sqlalchemy import select

    from farm.store.bisect import Bisection, BisectState

    query = select(Bisection).order_by(Bisection.id.desc())
    if state is not None:
        query = query.where(Bisection.state == BisectState(state))
    with get_store(ctx).session() as session:
        rows = [
            {
                "id": b.id,
                "run": b.run_id,
                "series": b.series_id,
                "regression": b.regression,
                "kind": b.regression_kind,
                "state": str(b.state),
                "culprit": b.culprit,
                "culprit_probability": (
                    b.posterior[b.culprit - 1] if b.culprit and b.posterior else None
                ),
                "hosts": list(b.hosts),
                "created_at": b.created_at.isoformat(),
            }
            for b in session.scalars(query)
        ]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no bisections yet; start one with: farm bisect RUN", err=True)
    for row in rows:
        verdict = f"first bad patch {row['culprit']}" if row["culprit"] else "no culprit yet"
        line = (
            f"{row['id']:4d}  run {row['run']:<5} {row['state']:<9} {verdict:<20} "
            f"{row['kind']} {row['regression']}"
        )
        click.echo(printable(line))


@bisect.command("simulate")
@click.option("--patches", type=int, default=28, show_default=True)
@click.option("--mttf", default="12h", show_default=True, help="Mean time to crash.")
@click.option("--shape", type=float, default=1.0, show_default=True, help="Weibull shape.")
@click.option("--hosts", type=int, default=2, show_default=True)
@click.option("--trials", type=int, default=400, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--strategy",
    type=click.Choice(["farm", "fixed", "bayesect"]),
    default="farm",
    show_default=True,
)
@click.option("--soak", default="24h", show_default=True, help="Run length for fixed/bayesect.")
@click.option("--false-crash-rate", type=float, default=0.0, help="Unrelated crashes per hour.")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@json_option
def simulate_cmd(
    patches: int,
    mttf: str,
    shape: float,
    hosts: int,
    trials: int,
    seed: int,
    strategy: str,
    soak: str,
    false_crash_rate: float,
    confidence: float,
    as_json: bool,
) -> None:
    """Measure a strategy on a simulated farm whose culprit is known."""
    from farm.bisect.simulate import SimConfig, simulate

    try:
        cfg = SimConfig(
            patches=patches,
            mttf_hours=_hours(mttf),
            shape=shape,
            hosts=hosts,
            trials=trials,
            seed=seed,
            strategy=strategy,
            soak_hours=_hours(soak),
            false_crash_rate=false_crash_rate,
            confidence=confidence,
        )
    except ValidationError as exc:
        problems = "; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise UserError(f"bad simulation settings: {problems}") from exc

    def progress(done: int, total: int) -> None:
        if not as_json and (done % max(1, total // 10) == 0 or done == total):
            click.echo(f"  {done}/{total} trials", err=True)

    summary = simulate(cfg, progress)
    if as_json:
        emit_json(summary.model_dump())
        return
    click.echo(
        f"{strategy}: {patches} patches, MTTF {cfg.mttf_hours:g} h, shape {shape:g}, "
        f"{hosts} hosts, {trials} trials"
    )
    for name, value in summary.model_dump().items():
        click.echo(f"  {name:20} {value:g}")


def bar(p: float, width: int = 40) -> str:
    return "#" * round(p * width)


def _budget_left(b: Bisection) -> float:
    """Wall-clock hours until the bisection's budget runs out (2000 with no budget)."""
    from farm.store.base import as_utc, utcnow

    if b.max_hours is None:
        return 2000.0
    spent = (utcnow() - as_utc(b.created_at)).total_seconds() / 3600.0
    return max(b.max_hours - spent, 1e-3)


@bisect.command("status")
@click.argument("bisection_id", type=int)
@click.option(
    "--rollouts",
    type=click.IntRange(0),
    default=24,
    show_default=True,
    help="Simulated continuations behind the expected hours left (0: skip).",
)
@json_option
@click.pass_context
def status(ctx: click.Context, bisection_id: int, rollouts: int, as_json: bool) -> None:
    """Show a bisection's posterior as a bar per patch, and its verdict so far.

    The expected hours left come from simulating the rest of the bisection forward
    from its posterior (farm/bisect/forecast.py), on as many hosts as it tests on.
    """
    from sqlalchemy import select

    from farm.bisect import forecast
    from farm.scheduler import bisect_store as persist
    from farm.store.bisect import Bisection, BisectState
    from farm.store.runs import TERMINAL, Run

    with get_store(ctx).session() as session:
        b = session.get(Bisection, bisection_id)
        if b is None:
            raise UserError(f"no bisection {bisection_id}", hint="check the id")
        if b.state == BisectState.REQUESTED or not b.engine_state:
            click.echo(f"bisection {b.id} [{b.state.value}]: {b.regression}")
            click.echo(b.result.get("reason", "not started yet: farm beat starts it"))
            return
        engine = persist.engine_of(b)
        decision = engine.decide()
        patches, none = engine.patch_posterior()
        running = session.scalars(
            select(Run).where(Run.bisection_id == b.id, Run.state.not_in(TERMINAL))
        )
        in_flight = [
            {"run": r.id, "kernel": r.upto, "host": r.host, "state": r.state.value} for r in running
        ]
        hosts = len(b.hosts) or len({ev.host for ev in engine.log})
        left = None
        # the simulated farm only crashes: a counter's bisection is not forecast
        if b.state == BisectState.RUNNING and rollouts and engine.settings.kind == "crash":
            left = forecast.hours_left(engine, hosts, rollouts, max_hours=_budget_left(b))
        info = {
            "id": b.id,
            "state": b.state.value,
            "regression": b.regression,
            "culprit": b.culprit,
            "posterior": patches,
            "no_culprit": none,
            "credible_set": decision.credible_set,
            "evidence": len(engine.log),
            "in_flight": in_flight,
            "reason": decision.reason,
            "expected_hours_left": None if left is None else dataclasses.asdict(left),
        }
    if as_json:
        emit_json(info)
        return
    click.echo(f"bisection {info['id']} [{info['state']}]: {info['regression']}")
    for i, p in enumerate(patches, start=1):
        click.echo(f"  {i:3d} {p:6.1%} {bar(p)}")
    click.echo(f" none {none:6.1%} {bar(none)}")
    for r in in_flight:
        click.echo(f"in flight: run {r['run']} kernel +{r['kernel']} on {r['host']} ({r['state']})")
    click.echo(
        f"{info['evidence']} pieces of evidence; {decision.reason}; "
        f"credible set {decision.credible_set}"
    )
    if left is not None:
        click.echo(
            f"expected hours left: {left.mean_hours:g} (median {left.median_hours:g}, "
            f"90% within {left.p90_hours:g}; {left.rollouts} simulated continuations "
            f"on {max(hosts, 1)} hosts)"
        )
