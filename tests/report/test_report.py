# SPDX-License-Identifier: Apache-2.0
"""`farm report`: the email reply to the culprit, read back header by header with the
email package, and the Markdown/HTML reports with their plots."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from farm.bisect.engine import Evidence, Outcome
from farm.cli import main
from farm.config import MailConfig
from farm.ending import Cause, Finding, RunEnding
from farm.errors import UserError
from farm.report.email import build_email
from farm.report.mailer import send
from farm.report.model import CounterSeries, ReportInput
from farm.report.render import images, markdown, to_html
from farm.report.text import plain_body
from farm.scheduler import bisect_store as persist
from farm.scheduler.report_input import build_input
from farm.store import Store
from farm.store.runs import Crash, Run, RunKind
from farm.store.series import Patch, Series

N = 10
COVER = "<cover.1715000000.git.dev@example.org>"
TITLE = "BUG: corrupted list in deferred_split_scan"


LEAK = "nr_anon_transparent_hugepages"


def patch_id(i: int) -> str:
    return f"<patch{i:02d}.1715000000.git.dev@example.org>"


def seed_store(store: Store, subject7: str = "mm: split THP on partial unmap") -> int:
    """A 10-patch series, the failed run with its crash, and a finished bisection (7)."""
    with store.session() as s:
        series = Series(
            title="mm: THP partial unmap rework",
            total=N,
            source="/srv/thp.mbox",
            content_hash="0" * 64,
            cover_message_id=COVER,
        )
        for i in range(1, N + 1):
            subject = subject7 if i == 7 else f"mm: step {i}"
            series.patches.append(
                Patch(
                    index=i,
                    subject=subject,
                    full_subject=f"[PATCH RFC {i:02d}/{N}] {subject}",
                    message_id=patch_id(i),
                    in_reply_to=COVER,
                    references=[COVER],
                    author="Dev Eloper <dev@example.org>",
                    to=["linux-mm@kvack.org"],
                    cc=["Reviewer <rev@example.org>", "dev@example.org"],
                    raw=b"",
                )
            )
        s.add(series)
        s.flush()
        run = Run(
            kind=RunKind.PATCHED,
            series_id=series.id,
            upto=N,
            commit="c" * 40,
            host="workstation",
            load="kbuild-swap",
            soak_seconds=12 * 3600,
            ending=RunEnding(
                findings=[
                    Finding(cause=Cause.CRASH, text=f"crash: {TITLE}", title=TITLE),
                    Finding(
                        cause=Cause.COUNTER,
                        text=f"counter {LEAK}: 1604 after quiesce, expected <= 0",
                        counter=LEAK,
                        rule="returns-to-zero",
                        value=1604,
                        detail="1604 after quiesce, expected <= 0",
                    ),
                ]
            ),
        )
        s.add(run)
        s.flush()
        s.add(
            Crash(
                run_id=run.id,
                host="workstation",
                title=TITLE,
                kind="BUG",
                signature="f" * 64,
                report="...",
                alt_titles=[],
                frames=[
                    "__list_del_entry_valid_or_report",
                    "deferred_split_scan",
                    "do_shrink_slab",
                    "shrink_slab",
                ],
            )
        )
        b = persist.start(s, run_id=run.id, patches=N, regression=TITLE, series_id=series.id)
        evs = [(N, "workstation", 11.6, Outcome.MATCHING), (N, "laptop", 5.0, Outcome.MATCHING)]
        evs += [(7, "laptop", 4.0, Outcome.MATCHING), (8, "workstation", 3.0, Outcome.MATCHING)]
        evs += [(7, "laptop", 6.0, Outcome.MATCHING)]
        evs += [(6, "workstation", 40.0, Outcome.CLEAN), (6, "laptop", 40.0, Outcome.CLEAN)]
        evs += [(6, "spare", 40.0, Outcome.CLEAN), (6, "spare", 40.0, Outcome.CLEAN)]
        evs += [(3, "laptop", 5.0, Outcome.UNRELATED)]
        for i, (k, host, hours, outcome) in enumerate(evs):
            persist.record(s, b, Evidence(k, host, f"boot{i}", hours, outcome, run_id=None))
        return b.id


def parse(text: str) -> EmailMessage:
    msg = email.message_from_string(text, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_email_replies_to_the_culprit_patch_header_by_header(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    bid = seed_store(store)
    main(["report", str(bid)])
    msg = parse(capsys.readouterr().out)
    assert msg["Subject"] == "Re: [PATCH RFC 07/10] mm: split THP on partial unmap"
    assert msg["In-Reply-To"] == patch_id(7)
    assert msg["References"].split() == [COVER, patch_id(7)]
    assert msg["To"] == "Dev Eloper <dev@example.org>"
    assert [a.addr_spec for a in msg["Cc"].addresses] == ["rev@example.org"]  # no public list
    assert msg["From"] == "farm <farm@localhost>"
    assert msg["Message-ID"].endswith("@farm.localhost>")
    assert msg["Date"]
    body = msg.get_body(("plain",)).get_content()
    assert all(len(line) <= 80 for line in body.splitlines())
    assert TITLE in body and "deferred_split_scan" in body
    words = " ".join(body.replace(" \\\n", " ").split())  # shell continuations joined
    assert "first bad patch is 07/10" in words and "% confidence" in words
    assert "\r" not in body
    table = [line for line in body.splitlines() if line.startswith(("+", "base"))]
    assert len(table) == 10  # one line per boot
    assert any(line.startswith("+06") and "clean" in line for line in table)
    assert any(line.startswith("+10") and " 11h36m " in line for line in table)  # uptime
    assert f"Also seen on the failing kernel: counter {LEAK}: 1604 after quiesce" in words
    assert (
        "farm submit /srv/thp.mbox --hosts workstation --load kbuild-swap --soak 12h --upto 7"
        in words
    )


def test_a_hostile_subject_cannot_inject_headers(store: Store) -> None:
    bid = seed_store(store, subject7="oops\r\nBcc: victim@example.com\r\n\r\nbody")
    with store.session() as s:
        ri = build_input(s, bid)
    msg = parse(build_email(ri).as_string())
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Re: [PATCH RFC 07/10] oops Bcc: victim@example.com body"
    assert list(msg.keys()).count("Subject") == 1


def test_a_newline_in_a_message_id_is_refused(store: Store) -> None:
    bid = seed_store(store)
    with store.session() as s:
        ri = build_input(s, bid)
    assert ri.culprit is not None
    ri.culprit.message_id = "<x@y>\nBcc: victim@example.com"
    with pytest.raises(UserError, match="refusing to write a header"):
        build_email(ri)


def test_dry_run_smtp_lists_recipients_without_connecting(store: Store) -> None:
    bid = seed_store(store)
    with store.session() as s:
        msg = build_email(build_input(s, bid))
    recipients = send(msg, MailConfig(smtp="127.0.0.1:1"), dry_run=True)
    assert recipients == ["dev@example.org", "rev@example.org"]


def inconclusive() -> ReportInput:
    return ReportInput(
        bisection_id=3,
        series_title="s",
        total=28,
        regression="nr_anon_partially_mapped",
        regression_kind="counter",
        counter_summary="78299 vs baseline 0",
        confidence=0.6,
        credible_set=[6, 7],
        posterior_steps=[[1 / 29] * 29, [0.0] * 5 + [0.4, 0.6] + [0.0] * 22],
        counters=[
            CounterSeries(kernel=7, host="laptop", points=[(0, 0), (1, 900), (2, 1800)]),
            CounterSeries(kernel=5, host="laptop", points=[(0, 0), (1, 0), (2, 3)]),
        ],
    )


def test_without_a_culprit_the_text_gives_the_credible_set() -> None:
    body = plain_body(inconclusive(), [], [])
    assert "Counter nr_anon_partially_mapped regressed: 78299 vs baseline 0." in body
    assert "culprit is among: 06, 07" in body


def test_markdown_and_html_carry_the_plots() -> None:
    ri = inconclusive()
    pngs = images(ri)
    assert set(pngs) == {"counter.png", "posterior.png"}
    assert all(png.startswith(b"\x89PNG") for png in pngs.values())
    md = markdown(ri, "r3-")
    assert "![counter](r3-counter.png)" in md and "![posterior](r3-posterior.png)" in md
    page = to_html(ri)
    assert page.count("data:image/png;base64,") == 2


def test_cli_markdown_writes_the_plots_beside_the_file(store: Store, tmp_path: Path) -> None:
    bid = seed_store(store)
    out = tmp_path / "report.md"
    main(["report", str(bid), "--format", "markdown", "-o", str(out)])
    text = out.read_text()
    assert "## Verdict" in text and "07/10" in text
    assert (tmp_path / "report-posterior.png").read_bytes().startswith(b"\x89PNG")
    html_out = tmp_path / "report.html"
    main(["report", str(bid), "--format", "html", "-o", str(html_out)])
    assert "<h2>Test runs</h2>" in html_out.read_text()


def test_a_counter_bisection_plots_each_runs_samples(store: Store) -> None:
    from sqlalchemy import insert

    from farm.soak.sampler import Reading
    from farm.store.samples import KeyCache, Sample, sample_row

    with store.session() as s:
        run = Run(
            kind=RunKind.PATCHED,
            upto=N,
            commit="c" * 40,
            host="laptop",
            load="thp-stress",
            soak_seconds=12 * 3600,
        )
        s.add(run)
        s.flush()
        b = persist.start(
            s,
            run_id=run.id,
            patches=N,
            regression="nr_anon_partially_mapped",
            regression_kind="counter",
        )
        persist.record(s, b, Evidence(N, "laptop", "boot0", 2.0, Outcome.COUNTER_FAIL))
        keys = KeyCache()
        for kernel, slope in ((7, 900), (6, 0)):
            bisect_run = Run(
                kind=RunKind.BISECT,
                bisection_id=b.id,
                upto=kernel,
                commit="d" * 40,
                host="laptop",
                load="thp-stress",
                soak_seconds=7200,
            )
            s.add(bisect_run)
            s.flush()
            rows = [
                sample_row(
                    keys,
                    s,
                    host="laptop",
                    run_id=bisect_run.id,
                    reading=Reading(
                        ts=1.7e9 + 600 * i,
                        phase="soak",
                        boot_id="b",
                        uptime=600.0 * i,
                        tainted=0,
                        vmstat={"nr_anon_partially_mapped": slope * i, "nr_free": 5},
                        meminfo={"MemFree": 1},
                    ),
                )
                for i in range(7)
            ]
            s.execute(insert(Sample), rows)
        bid = b.id
    with store.session() as s:
        ri = build_input(s, bid)
    assert [(c.kernel, c.host) for c in ri.counters] == [(7, "laptop"), (6, "laptop")]
    assert ri.counters[0].points[-1] == (1.0, 5400.0)
    assert ri.counters[1].points[-1] == (1.0, 0.0)
    assert "counter.png" in images(ri)
