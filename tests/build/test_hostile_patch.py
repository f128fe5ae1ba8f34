# SPDX-License-Identifier: Apache-2.0
"""A patch whose Makefile rule goes for farm's secrets, built for real.

The rule (tests/build/planted.py's probe, in init/Makefile) runs during the build of
linux-source 6.1 and prints what it finds: the SSH key in $HOME/.ssh, farm.toml with
the database password, the API token in the data directory, FARM_* variables; it tries
to connect to a listener on loopback and to write into the source tree. The build goes
through, the rule's lines are in build.log, and no secret is.
"""

from __future__ import annotations

import json
import time

import pytest
from kernel_fixtures import KernelBuildEnv

from farm.build import KernelArtifacts
from farm.build.tree import commit_edit

from .planted import RAN, Planted

pytestmark = [pytest.mark.slow, pytest.mark.kernel]
SESSION = time.time_ns()


def hostile_rule(planted: Planted) -> str:
    """A kbuild rule run on every build of init/: each probe line, as a recipe line."""
    recipe = [
        "\t@" + line.replace("$", "$$").replace("SRCTREE", "$(srctree)")
        for line in planted.probe("SRCTREE")
    ]
    return "\n".join(
        [
            f"\n# session {SESSION}: what a hostile patch could add",
            "always-y += farm-hostile",
            "$(obj)/farm-hostile: FORCE",
            *recipe,
            "",
        ]
    )


def test_a_hostile_makefile_rule_runs_but_reads_no_secret_and_reaches_no_one(
    kernel_build_env: KernelBuildEnv, soak_kernel: KernelArtifacts, planted: Planted
) -> None:
    tree = kernel_build_env.tree
    commit = commit_edit(tree, "init/Makefile", hostile_rule(planted), "init: hostile")
    kernel = kernel_build_env.build(commit, data_dir=planted.data_dir)
    log = kernel.build_log.read_text()
    assert RAN in log  # the rule really ran, in this very build
    # ... in a sandbox that changes nothing in the kernel: the release is the build's own.
    assert kernel.release == f"6.1.192-farm-{kernel.commit[:12]}-{kernel.config_hash[:8]}"
    assert planted.leaked(log) == [], planted.output(log)
    for artefact in kernel.dir.iterdir():
        assert planted.leaked(artefact.read_bytes().decode("latin-1")) == [], artefact.name
    assert f"ssh key: cat: {planted.home}/.ssh/id_ed25519: No such file or directory" in log
    assert f"config: cat: {planted.config}: No such file or directory" in log
    assert "network: bash: connect: Connection refused" in log
    assert planted.connections() == 0
    assert "source tree: touch: " in log and "Read-only file system" in log
    assert list(kernel_build_env.cache_dir.glob("build/*/src/farm-was-here")) == []
    meta = json.loads(kernel.metadata.read_text())
    assert meta["sandbox"] == "bwrap"
    first = log.splitlines()[0]
    assert first.startswith("bwrap ") and " --unshare-net " in first and " --clearenv " in first
    assert " -- nice -n 10 make -C " in first
