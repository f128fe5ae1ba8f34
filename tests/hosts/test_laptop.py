# SPDX-License-Identifier: Apache-2.0
"""Laptop care over a real SSH connection to this machine.

This machine has no battery, so the power supplies are a sysfs-shaped tree made by
the test and passed as the root path (the one seam); reading it is the real remote
shell code. systemd-inhibit is installed here but no systemd runs, so the inhibitor
fails as it would on a host without logind: the run gets a note, not a refusal.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Sshd

from farm.config import HostConfig, LaptopConfig
from farm.errors import InfraError
from farm.hosts import Transport
from farm.hosts.laptop import (
    Supply,
    inhibit,
    inhibit_argv,
    prepare,
    read_supplies,
    refuse_on_battery,
    release,
    with_notes,
)
from farm.hosts.ssh import connect


@pytest.fixture
def ssh(sshd: Sshd) -> Iterator[Transport]:
    with connect(sshd.endpoint) as transport:
        yield transport


def power_supplies(root: Path, **supplies: dict[str, str]) -> Path:
    """A /sys/class/power_supply look-alike: one directory of one-line files per supply."""
    root.mkdir()
    for name, files in supplies.items():
        (root / name).mkdir()
        for key, value in files.items():
            (root / name / key).write_text(value + "\n")
    return root


def ended(pid: int, timeout: float = 5.0) -> bool:
    """The process is gone, or a zombie nobody reaped yet (its parent session ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_laptop_on_battery_is_refused(ssh: Transport, tmp_path: Path) -> None:
    root = power_supplies(
        tmp_path / "ps",
        AC={"type": "Mains", "online": "0"},
        BAT0={"type": "Battery", "status": "Discharging", "capacity": "81"},
    )
    with pytest.raises(InfraError, match=r"on battery \(BAT0 discharging, AC offline\)") as no:
        refuse_on_battery(ssh, "laptop", str(root))
    assert no.value.hint and "refuse_on_battery = false" in no.value.hint


def test_a_plugged_in_laptop_is_read_and_accepted(ssh: Transport, tmp_path: Path) -> None:
    root = power_supplies(
        tmp_path / "ps",
        AC={"type": "Mains", "online": "1"},
        BAT0={"type": "Battery", "status": "Charging"},
    )
    assert sorted(read_supplies(ssh, str(root)), key=lambda s: s.name) == [
        Supply("AC", "Mains", "1", ""),
        Supply("BAT0", "Battery", "", "Charging"),
    ]
    refuse_on_battery(ssh, "laptop", str(root))


def test_a_weak_usb_c_charger_still_counts_as_plugged_in(ssh: Transport, tmp_path: Path) -> None:
    root = power_supplies(
        tmp_path / "ps",
        ucsi={"type": "USB", "online": "1"},
        BAT1={"type": "Battery", "status": "Discharging"},
    )
    refuse_on_battery(ssh, "laptop", str(root))


def test_a_desktop_without_power_supplies_is_never_on_battery(
    ssh: Transport, tmp_path: Path
) -> None:
    assert read_supplies(ssh, str(tmp_path / "absent")) == []
    assert read_supplies(ssh, "/sys/class/power_supply") == []  # this machine
    refuse_on_battery(ssh, "laptop")


def test_the_inhibitor_blocks_sleep_idle_and_the_lid_for_the_soak_and_a_margin() -> None:
    assert inhibit_argv(42, 3600) == [
        "systemd-inhibit", "--what=sleep:idle:handle-lid-switch", "--mode=block",
        "--who=farm", "--why=farm soak run 42", "sleep", "5400",
    ]  # fmt: skip


def test_a_host_whose_inhibitor_cannot_run_gets_a_note(ssh: Transport, tmp_path: Path) -> None:
    run_dir = tmp_path / "run-42"
    note = inhibit(ssh, host="laptop", run_dir=str(run_dir), run_id=42, seconds=60)
    assert note.startswith("systemd-inhibit failed on laptop (")
    assert note.endswith("): sleep was not inhibited")
    assert "bus" in note  # its own words: no D-Bus, no logind on this machine
    assert not (run_dir / "inhibit.pid").exists()
    release(ssh, str(run_dir))  # nothing held: still fine


def test_release_ends_the_inhibitors_whole_session(ssh: Transport, tmp_path: Path) -> None:
    run_dir = tmp_path / "run-43"
    run_dir.mkdir()
    held = ssh.run(
        ["sh", "-c", f"cd {run_dir}; setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!"]
    ).stdout.strip()
    (run_dir / "inhibit.pid").write_text(held + "\n")
    try:
        release(ssh, str(run_dir))
        assert ended(int(held))
        assert not (run_dir / "inhibit.pid").exists()
    finally:
        subprocess.run(["kill", "-KILL", held], check=False, capture_output=True)


def test_prepare_refuses_before_holding_anything(ssh: Transport, tmp_path: Path) -> None:
    root = power_supplies(tmp_path / "ps", BAT0={"type": "Battery", "status": "Discharging"})
    host = HostConfig(name="laptop", kind="ssh", address="127.0.0.1", laptop=LaptopConfig())
    run_dir = tmp_path / "run-44"
    with pytest.raises(InfraError, match=r"BAT0 discharging, no mains supply offline"):
        prepare(ssh, host, run_dir=str(run_dir), run_id=44, seconds=60, root=str(root))
    assert not run_dir.exists()


def test_prepare_notes_the_missing_inhibitor_once(ssh: Transport, tmp_path: Path) -> None:
    host = HostConfig(name="laptop", kind="ssh", address="127.0.0.1", laptop=LaptopConfig())
    run_dir = str(tmp_path / "run-45")
    notes = prepare(ssh, host, run_dir=run_dir, run_id=45, seconds=60)
    assert len(notes) == 1 and "sleep was not inhibited" in notes[0]
    details = with_notes(with_notes({"kernel": "running"}, notes), notes)
    assert details == {"kernel": "running", "notes": notes}
    careless = HostConfig(name="desk", kind="ssh", address="127.0.0.1")
    assert prepare(ssh, careless, run_dir=run_dir, run_id=45, seconds=60) == []
