# SPDX-License-Identifier: Apache-2.0
"""The simulator and `farm bisect simulate`: deterministic for a seed, honest accuracy."""

from __future__ import annotations

import json

import pytest

from farm.bisect.engine import Engine, Settings
from farm.bisect.model import Prior
from farm.bisect.simulate import SimConfig, simulate
from farm.cli import main

KEYS = ["accuracy", "median_hours", "mean_hours", "p90_hours", "machine_hours_mean"]


def test_same_seed_same_figures_and_another_seed_differs() -> None:
    cfg = SimConfig(patches=6, mttf_hours=2.0, trials=4, seed=3)
    assert simulate(cfg) == simulate(cfg)
    assert simulate(cfg) != simulate(cfg.model_copy(update={"seed": 4}))


@pytest.mark.parametrize("strategy", ["farm", "fixed", "bayesect"])
def test_every_strategy_finds_an_easy_culprit(strategy: str) -> None:
    # a crash within minutes on bad kernels and long soaks: no strategy should err
    cfg = SimConfig(
        patches=6, mttf_hours=0.5, shape=2.0, trials=5, seed=1, strategy=strategy, soak_hours=8.0
    )
    summary = simulate(cfg)
    assert summary.accuracy == 1.0
    assert 0 < summary.median_hours <= summary.p90_hours
    assert summary.machine_hours_mean >= summary.mean_hours  # two hosts, mostly busy


def test_an_engine_told_the_rate_beats_one_that_must_learn_it() -> None:
    # the yardstick benchmarks/bisect_frontier.py prints: a prior pinning the true rate
    cfg = SimConfig(patches=8, mttf_hours=2.0, trials=12, seed=5)
    pinned = Prior.told_the_rate(cfg.mttf_hours)

    def told(c: SimConfig) -> Engine:
        return Engine(c.patches, Settings(overhead_hours=c.overhead_hours, prior=pinned))

    learning, knowing = simulate(cfg), simulate(cfg, strategy=told)
    assert knowing != learning
    assert knowing.mean_hours < learning.mean_hours


def test_short_fixed_soaks_on_a_slow_bug_are_often_wrong() -> None:
    cfg = SimConfig(patches=16, mttf_hours=24.0, trials=30, strategy="fixed", soak_hours=2.0)
    assert simulate(cfg).accuracy < 0.5


def test_cli_prints_exactly_the_five_figures(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bisect", "simulate", "--patches", "6", "--mttf", "2h", "--trials", "3", "--json"]
    main(args)
    out = json.loads(capsys.readouterr().out)
    assert list(out) == KEYS
    main(args)
    assert json.loads(capsys.readouterr().out) == out


def test_cli_rejects_bad_settings_with_the_option_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bisect", "simulate", "--hosts", "0", "--trials", "1"])
    assert exc.value.code == 1
    assert "--hosts" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bisect", "simulate", "--mttf", "soon", "--trials", "1"])
    assert "cannot read duration 'soon'" in capsys.readouterr().err
