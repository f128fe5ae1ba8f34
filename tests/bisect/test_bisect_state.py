# SPDX-License-Identifier: Apache-2.0
"""Engine state survives the database: a restarted controller resumes the bisection."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from farm.bisect import state
from farm.bisect.engine import Engine, Evidence, Outcome, Settings
from farm.cli import main
from farm.errors import FarmBug
from farm.scheduler import bisect_store as persist
from farm.store import Store
from farm.store.bisect import Bisection, BisectStep
from farm.store.runs import Run, RunKind, RunState


def evidence() -> list[Evidence]:
    return [
        Evidence(10, "workstation", "b0", 11.6, Outcome.MATCHING, run_id=None),
        Evidence(10, "laptop", "b1", 6.0, Outcome.MATCHING),
        Evidence(5, "laptop", "b2", 12.0, Outcome.CLEAN),
        Evidence(7, "workstation", "b3", 3.0, Outcome.MATCHING),
        Evidence(3, "laptop", "b4", 0.0, Outcome.UNTESTABLE),
    ]


def test_json_round_trip_rebuilds_the_same_engine() -> None:
    engine = Engine(10, Settings(confidence=0.9, durations=(2.0, 8.0)))
    for ev in evidence():
        engine.record(ev)
    data = json.loads(json.dumps(state.dump(engine)))
    again = state.load(data)
    assert again.settings == engine.settings
    assert again.log == engine.log
    assert again.untestable == {3}
    assert list(again.posterior()) == pytest.approx(list(engine.posterior()))


def test_unreadable_state_is_a_farm_bug_not_a_crash() -> None:
    with pytest.raises(FarmBug, match="unreadable"):
        state.load({"version": 1, "patches": "many"})
    data = state.dump(Engine(3))
    with pytest.raises(FarmBug, match="version 99"):
        state.load({**data, "version": 99})


def a_failed_run(store: Store) -> int:
    with store.session() as session:
        run = Run(
            kind=RunKind.PATCHED,
            upto=10,
            commit="c" * 40,
            host="workstation",
            load="kbuild-swap",
            soak_seconds=12 * 3600,
        )
        session.add(run)
        session.flush()
        return run.id


def test_persisted_steps_resume_after_a_restart(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = a_failed_run(store)
    with store.session() as session:
        b = persist.start(session, run_id=run_id, patches=10, regression="BUG: bad list")
        for ev in evidence()[:4]:
            persist.record(session, b, ev)
        bid = b.id
    restarted = Store(store.url)
    with restarted.session() as session:
        b = session.get(Bisection, bid)
        assert b is not None
        engine = persist.engine_of(b)
        assert engine.log == evidence()[:4]
        steps = session.scalars(select(BisectStep).where(BisectStep.bisection_id == bid)).all()
        assert [s.seq for s in steps] == [1, 2, 3, 4]
        assert [s.kernel for s in steps] == [10, 10, 5, 7]
        assert steps[-1].posterior == pytest.approx(b.posterior)
        assert len(b.posterior) == 11
        session.add(
            Run(
                kind=RunKind.BISECT,
                bisection_id=bid,
                upto=6,
                commit="d" * 40,
                host="laptop",
                load="kbuild-swap",
                soak_seconds=8 * 3600,
                state=RunState.SOAKING,
            )
        )
    restarted.dispose()
    main(["bisect", "status", str(bid), "--rollouts", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["evidence"] == 4 and len(out["posterior"]) == 10
    left = out["expected_hours_left"]
    assert left["rollouts"] == 4 and 0 < left["median_hours"] <= left["p90_hours"]
    assert [(r["kernel"], r["host"], r["state"]) for r in out["in_flight"]] == [
        (6, "laptop", "soaking")
    ]
    assert max(range(10), key=lambda i: out["posterior"][i]) + 1 in (6, 7)
    main(["bisect", "status", str(bid), "--rollouts", "4"])
    text = capsys.readouterr().out
    assert f"expected hours left: {left['mean_hours']:g} (median" in text
    assert "  7 " in text and "#" in text and "none" in text
    assert "in flight: run 2 kernel +6 on laptop (soaking)" in text


def test_status_of_a_missing_bisection_says_so(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bisect", "status", "999"])
    assert exc.value.code == 1
    assert "no bisection 999" in capsys.readouterr().err
