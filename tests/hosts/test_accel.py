# SPDX-License-Identifier: Apache-2.0
"""QEMU's accelerator: KVM only when a probe guest really runs on it, else TCG.

On this machine /dev/kvm opens but a guest stalls as soon as it turns paging on, so
the real probe falls back to TCG; the KVM path is checked by the QEMU command line it
gives a VM.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from farm.config import HostConfig, QemuConfig
from farm.hosts import accel
from farm.hosts.qemu import QEMU, QemuVm


def vm(tmp_path: Path, **qemu: object) -> QemuVm:
    config = HostConfig(name="laptop", kind="qemu", qemu=QemuConfig.model_validate(qemu))
    return QemuVm(config, tmp_path / "data")


def accel_of(argv: list[str]) -> list[str]:
    """Every ``-accel VALUE`` pair of a command line."""
    pairs = [argv[i : i + 2] for i, arg in enumerate(argv) if arg == "-accel"]
    return [arg for pair in pairs for arg in pair]


def test_the_probe_guest_runs_to_its_report_under_tcg() -> None:
    assert accel.run_probe(QEMU, "tcg") is None


@pytest.mark.slow
def test_the_kvm_probe_runs_once_per_machine_and_falls_back_to_tcg_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "qemu-accel.json"
    with caplog.at_level(logging.INFO, logger="farm.hosts.accel"):
        first = accel.kvm_probe(QEMU, cache)
        again = accel.kvm_probe(QEMU, cache)
    assert again == first
    assert json.loads(cache.read_text())["key"] == accel.machine_key(QEMU)
    if first.accel == "kvm":  # a machine with a working KVM: nothing to say
        assert caplog.records == []
        return
    assert first.reason
    assert [r.getMessage() for r in caplog.records] == [
        f"QEMU: KVM unusable here ({first.reason}); using TCG"
    ]


def test_a_vm_with_accel_kvm_gets_kvm_and_the_host_cpu(tmp_path: Path) -> None:
    argv = vm(tmp_path, accel="kvm").argv(2222, "quiet")
    assert accel_of(argv) == ["-accel", "kvm"]
    assert argv[argv.index("-cpu") + 1] == "host"


def test_a_vm_with_accel_tcg_gets_tcg_without_probing(tmp_path: Path) -> None:
    argv = vm(tmp_path, accel="tcg").argv(2222, "quiet")
    assert accel_of(argv) == ["-accel", "tcg"]
    assert "-cpu" not in argv
    assert not (tmp_path / "cache").exists()


def test_auto_uses_the_cached_answer_of_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARM_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    answer = {"accel": "kvm", "reason": "", "key": accel.machine_key(QEMU)}
    (tmp_path / "cache" / "qemu-accel.json").write_text(json.dumps(answer))
    assert accel_of(vm(tmp_path).argv(2222, "quiet")) == ["-accel", "kvm"]


def test_extra_args_choosing_the_accelerator_override_farms_choice(tmp_path: Path) -> None:
    for extra in (["-accel", "tcg,thread=multi"], ["-machine", "q35,accel=kvm"], ["-enable-kvm"]):
        argv = vm(tmp_path, accel="kvm", extra_args=extra).argv(2222, "quiet")
        assert argv[-len(extra) :] == extra
        assert accel_of(argv) == accel_of(extra)
        assert "-cpu" not in argv
