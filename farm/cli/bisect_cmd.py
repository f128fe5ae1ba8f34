"""farm bisect: simulate bisection strategies, show a bisection's posterior."""

from __future__ import annotations

import click
from pydantic import ValidationError

from farm.cli.common import emit_json, get_store, json_option
from farm.errors import UserError
from farm.units import parse_duration


def _hours(text: str) -> float:
    """A duration like 12h or 1h30m in hours; a bare number is taken as hours here."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text) / 3600.0


@click.group()
def bisect() -> None:
    """Find the first bad patch of a series (and measure how well that works)."""


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


@bisect.command("status")
@click.argument("bisection_id", type=int)
@json_option
@click.pass_context
def status(ctx: click.Context, bisection_id: int, as_json: bool) -> None:
    """Show a bisection's posterior as a bar per patch, and its verdict so far."""
    from sqlalchemy import select

    from farm.bisect import persist
    from farm.store.bisect import Bisection
    from farm.store.runs import Run, RunState

    with get_store(ctx).session() as session:
        b = session.get(Bisection, bisection_id)
        if b is None:
            raise UserError(f"no bisection {bisection_id}", hint="check the id")
        engine = persist.engine_of(b)
        decision = engine.decide()
        patches, none = engine.patch_posterior()
        running = session.scalars(
            select(Run).where(
                Run.bisection_id == b.id, Run.state.not_in([RunState.DONE, RunState.CANCELLED])
            )
        )
        in_flight = [
            {"run": r.id, "kernel": r.upto, "host": r.host, "state": r.state.value} for r in running
        ]
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
