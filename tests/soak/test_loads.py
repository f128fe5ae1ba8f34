# SPDX-License-Identifier: Apache-2.0
"""Loads as data: the shipped loads validate, broken ones are refused with the file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.config import FarmConfig
from farm.errors import UserError
from farm.loads import get_load, load_names, read_load


def test_the_shipped_loads_are_valid(config: FarmConfig) -> None:
    assert {"kbuild-tmpfs-swap", "thp-split", "stress-ng-vm"} <= set(load_names(config))
    thp = get_load(config, "thp-split")
    assert thp.binaries == ["thp_churn"] and thp.duration == 3600
    assert {(e.counter, e.rule) for e in thp.expect} >= {
        ("nr_anon_transparent_hugepages", "returns-to-zero")
    }
    assert [(r.command, r.package) for r in get_load(config, "stress-ng-vm").requires] == [
        ("stress-ng", "stress-ng")
    ]
    assert get_load(config, "kbuild-tmpfs-swap").warmup == 60
    selftests = get_load(config, "mm-selftests").selftests
    assert selftests is not None and selftests.target == "mm"
    assert {"madv_populate", "soft-dirty", "userfaultfd"} <= set(selftests.programs)


def test_an_unknown_load_names_the_known_ones(config: FarmConfig) -> None:
    with pytest.raises(UserError, match=r"no load named 'nope' .*known: .*thp-split"):
        get_load(config, "nope")


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (
            'description = "x"\nscript = "true"\nduration = "soon"',
            "duration: Value error, cannot read duration 'soon'",
        ),
        ('description = "x"\nscript = "true"\nduration = "1h"\nbinaries = ["nope"]', "no source"),
        (
            'description = "x"\nscript = "true"\nduration = "1h"\nrequires = ["a;b"]',
            "requires.0.command: String should match pattern",
        ),
        (
            'description = "x"\nscript = "true"\nduration = "1h"\n'
            '[[expect]]\ncounter = "x"\nrule = "fancy"',
            "expect.0.rule",
        ),
        ('description = "x"\nscript = "true"', "duration: Field required"),
        (
            'description = "x"\nscript = "true"\nduration = "1h"\n'
            '[selftests]\ntarget = "mm"\nprograms = ["x; rm -rf /"]',
            "is not a selftest program name",
        ),
        (
            'description = "x"\nscript = "true"\nduration = "1h"\n'
            '[selftests]\ntarget = "../mm"\nprograms = ["x"]',
            "selftests.target: String should match pattern",
        ),
    ],
)
def test_a_broken_load_is_refused_with_the_file_and_field(
    tmp_path: Path, body: str, complaint: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'name = "bad"\n{body}\n')
    with pytest.raises(UserError) as error:
        read_load(path)
    assert str(path) in str(error.value) and complaint in str(error.value)


def test_a_load_file_must_carry_its_own_name(tmp_path: Path) -> None:
    path = tmp_path / "one.toml"
    path.write_text('name = "other"\ndescription = "x"\nscript = "true"\nduration = "1h"\n')
    with pytest.raises(UserError, match="must match the file name 'one'"):
        read_load(path)


@pytest.mark.parametrize("name", ["../../../evil", "/tmp/evil", "sub/evil", "Evil", ".hidden"])
def test_a_load_is_named_never_a_path(config: FarmConfig, tmp_path: Path, name: str) -> None:
    evil = tmp_path / "evil.toml"  # a valid load outside the loads directory
    evil.write_text('name = "evil"\ndescription = "x"\nscript = "reboot"\nduration = "1h"\n')
    config.loads_dir = tmp_path / "a" / "b" / "loads"
    config.loads_dir.mkdir(parents=True)
    (config.loads_dir / "idle.toml").write_text(
        'name = "idle"\ndescription = "x"\nscript = "true"\nduration = "1h"\n'
    )
    with pytest.raises(UserError, match=r"is not a load name .*\(known: idle\)") as refused:
        get_load(config, name.replace("/tmp", str(tmp_path)))
    assert refused.value.hint and "--load idle" in refused.value.hint
