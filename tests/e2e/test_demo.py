"""The motivating case end to end, exactly as ``make demo`` runs it (farm.demo.run_demo).

The 28-patch demo series is applied up to 07/28; two QEMU hosts soak the base and the
patched kernel under thp-split through a real Redis, Celery worker and beat; the failed
patched run starts a bisection across 01..07, and the report replies to 07/28.

Why this is not flaky (figures measured on this 2-core machine, docs/demo-series.md):

ARITHMETIC

The kernel builds are shared with every other test through the persistent cache
(``kernel_build_env``): the base kernel is the session's ``soak_kernel``, a cache hit,
so CI builds it once for the whole run.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from kernel_fixtures import KernelBuildEnv
from sqlalchemy import select

from farm.build import KernelArtifacts
from farm.demo import LEAK_COUNTER, Outcome, Settings, remove_worktrees, run_demo
from farm.store import Store
from farm.store.runs import Crash, Run, RunKind, Verdict

pytestmark = [pytest.mark.slow, pytest.mark.qemu, pytest.mark.kernel, pytest.mark.timeout(3600)]

CULPRIT_MESSAGE_ID = "<20261126.7.farm-demo@example.org>"
SOAK_SECONDS = 360.0


@pytest.fixture(scope="module")
def demo(
    kernel_build_env: KernelBuildEnv,
    soak_kernel: KernelArtifacts,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Outcome, Store]]:
    state = tmp_path_factory.mktemp("demo")
    settings = Settings(
        state_dir=state, data_dir=kernel_build_env.data_dir, soak_seconds=SOAK_SECONDS
    )
    outcome = run_demo(settings, say=print)
    print(json.dumps(asdict(outcome), indent=2))
    store = Store(f"sqlite:///{state / 'farm.db'}")
    yield outcome, store
    store.dispose()
    remove_worktrees(kernel_build_env.tree, kernel_build_env.data_dir / "worktrees")


def test_the_bisection_names_patch_07(demo: tuple[Outcome, Store]) -> None:
    outcome, _ = demo
    assert outcome.bisections, "no bisection was started"
    for bisection in outcome.bisections:  # one per failed patched run: each names 07
        assert bisection["state"] == "done", bisection
        assert bisection["culprit"] == 7, bisection
        assert bisection["confidence"] >= 0.95, bisection
        assert bisection["verdict"].startswith("The first bad patch is 07/"), bisection


def test_the_email_replies_to_patch_07s_message(demo: tuple[Outcome, Store]) -> None:
    outcome, _ = demo
    for bisection in outcome.bisections:
        text = Path(bisection["email"]).read_text()
        mail = email.message_from_string(text, policy=email.policy.default)
        assert mail["In-Reply-To"] == CULPRIT_MESSAGE_ID
        assert CULPRIT_MESSAGE_ID in mail["References"]
        assert "[PATCH RFC 07/28]" in mail["Subject"]
        assert "<html" in Path(bisection["html"]).read_text().lower()


def test_every_crash_is_the_list_corruption_and_there_is_one(demo: tuple[Outcome, Store]) -> None:
    _, store = demo
    with store.session() as session:
        crashes = session.execute(select(Crash.title, Run.upto).join(Run)).all()
    assert crashes, "no crash was captured"
    for title, upto in crashes:
        assert "corrupted list" in title or "list_del corruption" in title, title
        assert upto >= 7  # only kernels with patch 07 crash


def test_the_leak_is_flagged_on_the_counter(demo: tuple[Outcome, Store]) -> None:
    _, store = demo
    with store.session() as session:
        reasons = [r for run in session.scalars(select(Run)) for r in run.reasons if run.upto >= 7]
    assert any(r.startswith(f"counter {LEAK_COUNTER}") for r in reasons), reasons


def test_the_base_kernel_passed_on_both_hosts(demo: tuple[Outcome, Store]) -> None:
    _, store = demo
    with store.session() as session:
        baselines = session.scalars(select(Run).where(Run.kind == RunKind.BASELINE)).all()
    assert sorted(r.host for r in baselines) == ["laptop", "workstation"]
    assert [(r.verdict, r.reasons) for r in baselines] == [(Verdict.PASS, [])] * 2
