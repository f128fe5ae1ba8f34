# SPDX-License-Identifier: Apache-2.0
"""A load's requirements are checked on the host over SSH before it starts: a missing
tool ends the run INFRA naming what to install, and nothing is started."""

from __future__ import annotations

from pathlib import Path

import pytest
from soakstack import SshHost

from farm.config import FarmConfig
from farm.errors import InfraError
from farm.hosts import get_host
from farm.loads import Load, get_load, load_names
from farm.soak import load as load_mod


def a_load(*requires: object) -> Load:
    return Load.model_validate(
        {
            "name": "needs",
            "description": "x",
            "script": "true",
            "duration": "1m",
            "requires": requires,
        }
    )


def test_a_host_with_everything_starts_the_load(soak_config: FarmConfig, ssh_host: SshHost) -> None:
    load = a_load("sh", {"path": "/proc/sys/vm/drop_c*"}, {"command": "awk", "package": "mawk"})
    with get_host(soak_config, "laptop").transport() as transport:
        load_mod.check_requirements(transport, load)


def test_every_missing_requirement_is_named_with_its_package_and_nothing_starts(
    soak_config: FarmConfig, ssh_host: SshHost
) -> None:
    load = a_load(
        "sh",
        {"command": "farm-no-such-tool", "package": "farm-tools"},
        {"path": "/farm/no/such/*.tar.xz", "package": "linux-source"},
        {"path": "/sys/farm-no-such-knob", "kernel": "CONFIG_FARM_KNOB"},
        {"path": "/opt/farm-ltp/runltp", "hint": "build it from source"},
    )
    with get_host(soak_config, "laptop").transport() as transport, pytest.raises(InfraError) as e:
        load_mod.start(
            transport, load=load, run_id=7, seconds=60, remote_dir=str(ssh_host.remote_dir),
            cache_dir=ssh_host.data_dir / "loads",
        )  # fmt: skip
    assert str(e.value).split("; ") == [
        "load needs needs 'farm-no-such-tool', which the host lacks: "
        "install the Debian package farm-tools",
        "load needs needs /farm/no/such/*.tar.xz, which the host lacks: "
        "install the Debian package linux-source",
        "load needs needs /sys/farm-no-such-knob, which the host lacks: "
        "boot a kernel with CONFIG_FARM_KNOB=y",
        "load needs needs /opt/farm-ltp/runltp, which the host lacks (build it from source)",
    ]
    assert not Path(ssh_host.remote_dir, "run-7").exists()


def test_every_shipped_load_that_needs_a_tool_says_which_package_or_option_brings_it(
    config: FarmConfig,
) -> None:
    for name in load_names(config):
        for requirement in get_load(config, name).requires:
            assert requirement.package or requirement.kernel or requirement.hint, (
                name,
                requirement,
            )


@pytest.mark.parametrize(
    ("requirement", "complaint"),
    [
        ({"command": "a;b"}, "String should match pattern"),
        ({"path": "/tmp/$(reboot)"}, "String should match pattern"),
        ({"path": "relative/path"}, "String should match pattern"),
        ({"command": "a", "path": "/b"}, "exactly one of 'command' or 'path'"),
        ({"package": "stress-ng"}, "exactly one of 'command' or 'path'"),
    ],
)
def test_a_requirement_that_could_reach_a_shell_unquoted_is_refused(
    requirement: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(")):
        a_load(requirement)
