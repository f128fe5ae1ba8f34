# SPDX-License-Identifier: Apache-2.0
"""The simulated host (kind ``sim``) answers the soak's own commands as a host would:
the scale benchmark measures nothing if its hosts' samples do not parse."""

from __future__ import annotations

from pathlib import Path

from farm.config import load_config
from farm.hosts import get_host
from farm.loads import Load
from farm.soak import load as load_mod
from farm.soak import sim
from farm.soak.sampler import take_sample


def sim_host(tmp_path: Path) -> sim.SimHost:
    toml = tmp_path / "farm.toml"
    toml.write_text(f'data_dir = "{tmp_path}"\n[[hosts]]\nname = "sim0"\nkind = "sim"\n')
    sim.register()
    host = get_host(load_config(toml), "sim0")
    assert isinstance(host, sim.SimHost)
    return host


def test_a_sim_sample_parses_with_every_section_the_sampler_asks_for(tmp_path: Path) -> None:
    host = sim_host(tmp_path)
    reading, pulse = take_sample(host.transport(), run_dir=None, timeout=10)
    assert reading.boot_id == host.boot_id()
    assert reading.meminfo["MemTotal"] == sim.MEM_KB * 1024
    assert pulse is None  # no load asked about


def test_a_started_load_pulses_alive_until_it_is_stopped(tmp_path: Path) -> None:
    host, remote = sim_host(tmp_path), "/var/tmp/farm"
    load = Load(name="sim-soak", description="modelled", script="true", duration=3600)
    started = load_mod.start(
        host.transport(), load=load, run_id=7, seconds=3600, remote_dir=remote, cache_dir=tmp_path
    )
    again = load_mod.start(
        host.transport(), load=load, run_id=7, seconds=3600, remote_dir=remote, cache_dir=tmp_path
    )
    assert started.fresh and not again.fresh and again.pid == started.pid
    run_dir = load_mod.run_dir(remote, 7)
    _, pulse = take_sample(host.transport(), run_dir=run_dir, timeout=10)
    assert pulse is not None and pulse.alive
    load_mod.stop(host.transport(), run_id=7, remote_dir=remote)
    _, pulse = take_sample(host.transport(), run_dir=run_dir, timeout=10)
    assert pulse is not None and not pulse.alive and pulse.exit_code == 0
