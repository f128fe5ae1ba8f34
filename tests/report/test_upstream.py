# SPDX-License-Identifier: Apache-2.0
"""The report a patch author can act on, as syzbot and the 0-day robot send them: the
crash's own lines, the kernel's facts, the tags in the documented form, the config and a
reproducer attached; sent over STARTTLS with a login to a real SMTP server, read back
with git's own tools (git mailinfo, git interpret-trailers, git send-email)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import os
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailserver import PASSWORD, USER, MailServer

from farm.cli import main
from farm.config import FarmConfig
from farm.errors import UserError
from farm.git import git
from farm.report.email import build_email, identity_of
from farm.report.mailer import send
from farm.scheduler.report_input import build_input
from farm.store import Store
from farm.store.series import Series

from .scenario import CULPRIT, LIST, TITLE, Story, failing_story, passing_story

ARCHIVE = "https://lore.kernel.org/r/{message_id}"


@pytest.fixture
def story(config: FarmConfig, store: Store, tmp_path: Path) -> Story:
    return failing_story(config, store, tmp_path)


def configure(farm_toml: Path, server: MailServer, extra: str = "") -> None:
    farm_toml.write_text(
        farm_toml.read_text()
        + server.toml()
        + f'[report]\nidentity = "Farm Bot <farm-bot@example.org>"\narchive_url = "{ARCHIVE}"\n'
        + extra
    )


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def body_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def attachments(msg: EmailMessage) -> dict[str, bytes]:
    return {
        str(part.get_filename()): part.get_payload(decode=True)  # type: ignore[misc]
        for part in msg.iter_attachments()
    }


def report_via_cli(capsys: pytest.CaptureFixture[bytes], *args: str) -> EmailMessage:
    main(["report", *args])
    return parse(capsys.readouterr().out)


def test_the_email_quotes_the_crash_and_names_the_kernel_it_happened_on(
    story: Story, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    msg = report_via_cli(capsysbinary, str(story.bisection_id))
    body = body_of(msg)
    lines = body.splitlines()
    crash = [line.rstrip() for line in story.crash_report.splitlines()]
    for line in crash:  # the titled report, line for line (trailing blanks never survive mail)
        assert line in lines
    assert "The crash on laptop at 1m14s uptime:" in body  # [   74.264500] on the console
    assert f"base commit:   {story.base}" in body
    for i in range(1, CULPRIT + 1):  # the culprit's kernel: base + 01..03
        assert f"  {i:02d}/05 " in body and story.message_ids[i] in body
    assert story.message_ids[CULPRIT + 1] not in body
    [compiler] = [c for c in story.config.splitlines() if c.startswith("CONFIG_CC_VERSION_TEXT")]
    assert f"compiler:      {compiler.split('=', 1)[1].strip(chr(34))}" in body
    files = attachments(msg)
    assert set(files) == {"config", "repro.sh"}
    assert files["config"].decode() == story.config
    sha = hashlib.sha256(files["config"]).hexdigest()
    assert f'kernel config: attached as "config"\nconfig sha256: {sha}\n' in body
    assert "machine:       QEMU x86_64 virtual machine, 512 MB, 1 CPU" in body
    assert "kernel:        6.1.0-farm+" in body
    assert "load:          thp-split for 1h" in body
    assert [line for line in lines if len(line) > 80 and line not in crash] == []


def test_a_machine_of_ones_own_is_named_by_the_dmi_product_in_its_oops(
    config: FarmConfig, store: Store, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """A real laptop's oops (tests/detect/fixtures): its "Hardware name:" line."""
    metal = Path(__file__).parents[1] / "detect" / "fixtures" / "deferred_split_list_del.log"
    story = failing_story(config, store, tmp_path, console_log=metal)
    body = body_of(report_via_cli(capsysbinary, str(story.bisection_id)))
    assert "machine:       LENOVO 20XW004KGE/20XW004KGE\n" in body
    assert "The crash on laptop at 11h35m uptime:" in body  # [41705.106246]


def test_git_mailinfo_reads_the_tags_in_the_documented_form(
    story: Story, farm_toml: Path, smtp_server: MailServer, tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:  # fmt: skip
    configure(farm_toml, smtp_server, f'cc_lists = ["{LIST}"]\n')  # archived: Closes
    msg = report_via_cli(capsysbinary, str(story.bisection_id))
    mail = tmp_path / "report.eml"
    mail.write_bytes(msg.as_bytes())
    info = subprocess.run(
        ["git", "mailinfo", str(tmp_path / "msg"), str(tmp_path / "patch")],
        input=mail.read_bytes(), capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    assert "Author: Farm Bot\nEmail: farm-bot@example.org\n" in info
    assert "Subject: lib: spell out seven" in info  # mailinfo drops "Re: [PATCH 3/5]"
    trailers = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=(tmp_path / "msg").read_bytes(), capture_output=True, check=True,
    ).stdout.decode().splitlines()  # fmt: skip
    own_id = msg["Message-ID"].strip("<>")
    assert trailers == [
        "Reported-by: Farm Bot <farm-bot@example.org>",
        f"Closes: https://lore.kernel.org/r/{own_id}",
    ]


def test_the_message_is_valid_rfc_5322_with_no_defects(story: Story, store: Store) -> None:
    with store.session() as s:
        msg = build_email(build_input(s, story.bisection_id))
    raw = msg.as_bytes(policy=email.policy.SMTP)  # as it goes on the wire: CRLF
    strict = email.message_from_bytes(raw, policy=email.policy.strict)  # raises on defects
    assert all(not part.defects for part in strict.walk())
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for name in ("From", "Date", "Message-ID", "To", "Subject", "In-Reply-To", "References"):
        assert len(strict.get_all(name) or []) == 1, name


def test_the_report_goes_over_starttls_with_a_login_and_threads_under_the_culprit(
    story: Story, farm_toml: Path, smtp_server: MailServer,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    configure(farm_toml, smtp_server)
    caplog.set_level(logging.DEBUG)
    main(["report", str(story.bisection_id), "--send"])
    [got] = smtp_server.messages
    assert got.tls and got.login == USER
    assert got.mail_from == "farm-bot@example.org"
    assert got.rcpt_tos == ["ada@example.org", "rev@example.org"]  # the list is not Cc'd
    msg = parse(got.content)
    assert msg["In-Reply-To"].strip() == story.message_ids[CULPRIT]  # folded: " <...>"
    assert msg["References"].split() == [story.cover, story.message_ids[CULPRIT]]
    assert msg["Subject"] == f"Re: [PATCH {CULPRIT}/5] lib: spell out seven"
    assert TITLE in body_of(msg)
    assert "Reported-by: Farm Bot <farm-bot@example.org>\r\n---\r\n" in body_of(msg)  # as sent
    assert "Closes:" not in body_of(msg)  # to no list, so in no archive: no dead link
    out = capsys.readouterr()
    assert "sent the report to ada@example.org, rev@example.org" in out.err
    assert PASSWORD not in out.out + out.err + caplog.text


def test_a_public_list_is_cc_only_when_configured(
    story: Story, farm_toml: Path, smtp_server: MailServer
) -> None:
    configure(farm_toml, smtp_server, f'cc_lists = ["{LIST}"]\n')
    main(["report", str(story.bisection_id), "--send"])
    [got] = smtp_server.messages
    assert got.rcpt_tos == ["ada@example.org", LIST, "rev@example.org"]


def test_a_wrong_password_is_a_clear_error_that_does_not_show_it(
    story: Story, config: FarmConfig, store: Store, smtp_server: MailServer, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not the password\n")
    wrong.chmod(0o600)
    with store.session() as s:
        msg = build_email(build_input(s, story.bisection_id, config), identity_of(config))
    with pytest.raises(UserError, match=f"refused the login of {USER}") as err:
        send(msg, smtp_server.mail_config(password_file=wrong))
    assert "not the password" not in str(err.value) + str(err.value.hint)
    assert smtp_server.logins and all(not ok for _, ok in smtp_server.logins)
    assert smtp_server.messages == []


def test_a_password_file_others_can_read_is_refused_before_connecting(
    story: Story, store: Store, smtp_server: MailServer
) -> None:
    smtp_server.password_file.chmod(0o644)
    with store.session() as s:
        msg = build_email(build_input(s, story.bisection_id))
    with pytest.raises(UserError, match="readable by others") as err:
        send(msg, smtp_server.mail_config())
    assert err.value.hint == f"chmod 600 {smtp_server.password_file}"
    assert smtp_server.messages == []


def test_an_untrusted_certificate_is_refused(
    story: Story, store: Store, smtp_server: MailServer
) -> None:
    from farm.errors import InfraError

    with store.session() as s:
        msg = build_email(build_input(s, story.bisection_id))
    with pytest.raises(InfraError, match="TLS with SMTP server"):
        send(msg, smtp_server.mail_config(ca_file=None))
    assert smtp_server.logins == []


def test_git_send_email_sends_the_mbox_with_its_threading(
    story: Story, plain_smtp_server: MailServer, tmp_path: Path
) -> None:
    out = tmp_path / "report.mbox"
    main(["report", str(story.bisection_id), "--format", "mbox", "-o", str(out)])
    assert out.read_bytes().startswith(b"From farm ")
    sent = subprocess.run(
        ["git", "send-email", "--no-validate", "--confirm=never", "--suppress-cc=all",
         "--from=farm <farm@localhost>", "--to=ada@example.org",
         "--smtp-server=127.0.0.1", f"--smtp-server-port={plain_smtp_server.port}", str(out)],
        cwd=story.repo, capture_output=True, text=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    [got] = plain_smtp_server.messages
    msg = parse(got.content)
    assert msg["In-Reply-To"].strip() == story.message_ids[CULPRIT]
    assert story.cover in msg["References"]
    assert set(attachments(msg)) == {"config", "repro.sh"}


def test_repro_sh_applies_the_series_exactly_as_farm_did(
    story: Story, capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    msg = report_via_cli(capsysbinary, str(story.bisection_id))
    script = tmp_path / "repro.sh"
    script.write_bytes(attachments(msg)["repro.sh"])
    clone = tmp_path / "author-clone"
    git(tmp_path, "clone", "--quiet", str(story.repo), str(clone))
    git(clone, "config", "user.email", "author@example.org")
    git(clone, "config", "user.name", "Author")
    subprocess.run(["sh", str(script), "apply", str(clone)], check=True, capture_output=True)
    tree = git(clone, "rev-parse", "HEAD^{tree}").strip()
    assert tree == git(story.repo, "rev-parse", f"{story.commits[CULPRIT]}^{{tree}}").strip()
    log = git(clone, "log", "--format=%B", f"{story.base}..HEAD")
    assert all(story.message_ids[i].strip("<>") in log for i in range(1, CULPRIT + 1))


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no race: CI time
def test_repro_sh_runs_the_same_load_and_prints_its_counters(
    story: Story, capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path
) -> None:
    """The load of the failing run (thp-split: thp_churn, compiled from the C source in
    the script), shortened to 3 s and sized for 64 MB so the controller survives it."""
    msg = report_via_cli(capsysbinary, str(story.bisection_id))
    script = tmp_path / "repro.sh"
    script.write_bytes(attachments(msg)["repro.sh"])
    env = {**os.environ, "FARM_SECONDS": "3", "FARM_MEM_KB": "65536"}
    proc = subprocess.run(
        ["sh", str(script), "run"], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "load thp-split for 3 s; counters before:" in proc.stdout
    assert "load exited with status 0; quiescing" in proc.stdout
    assert "nr_anon_transparent_hugepages" in proc.stdout


def test_a_hostile_message_id_stays_data_inside_repro_sh(
    story: Story, store: Store, config: FarmConfig, tmp_path: Path
) -> None:
    """A patch mail is untrusted: its bytes live in a quoted here-document and reach
    git am as they are; nothing of it runs."""
    from farm.report import repro
    from farm.report.model import LoadRecipe, Reproducer

    marker = tmp_path / "pwned"
    evil = (
        f"Message-ID: <$(touch {marker})@x>\nSubject: `touch {marker}`\n\n"
        f"FARM_PATCH_1\n'; touch {marker}; '\n"
    ).encode()
    script = repro.script(
        Reproducer(
            base_commit="HEAD",
            patches=[(1, evil)],
            config="CONFIG_X=y\n",
            load=LoadRecipe(name="x", script="true\n", seconds=1),
        )
    )
    path = tmp_path / "repro.sh"
    path.write_bytes(script)
    function = subprocess.run(
        ["sed", "-n", "/^patch_1() {/,/^}/p", str(path)], capture_output=True, check=True
    ).stdout
    shown = subprocess.run(
        ["sh", "-c", 'eval "$FUNCTION"; patch_1'], capture_output=True, check=True,
        env={**os.environ, "FUNCTION": function.decode()},
    ).stdout  # fmt: skip
    assert shown == evil
    assert not marker.exists()


def test_a_soak_that_passed_sends_tested_by_with_hours_and_hosts(
    config: FarmConfig, store: Store, farm_toml: Path, smtp_server: MailServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    configure(farm_toml, smtp_server)
    series_id, _ = passing_story(config, store, tmp_path)
    main(["report", "--tested", str(series_id), "--send"])
    [got] = smtp_server.messages
    msg = parse(got.content)
    with store.session() as s:
        series = s.get(Series, series_id)
        assert series is not None and series.cover_message_id
        cover, title = series.cover_message_id.strip(), series.title
    assert msg["In-Reply-To"].strip() == cover and msg["References"].strip() == cover
    assert msg["Subject"] == f"Re: [PATCH 0/5] {title}"  # the cover letter's
    words = " ".join(body_of(msg).split())
    assert "for 24h in total on laptop, workstation under the load thp-split" in words
    assert "Tested-by: Farm Bot <farm-bot@example.org>" in body_of(msg).splitlines()
    mail = tmp_path / "pass.eml"
    mail.write_bytes(got.content)
    subprocess.run(
        ["git", "mailinfo", str(tmp_path / "msg"), str(tmp_path / "patch")],
        stdin=mail.open("rb"), capture_output=True, check=True,
    )  # fmt: skip
    trailers = subprocess.run(
        ["git", "interpret-trailers", "--parse", str(tmp_path / "msg")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Tested-by: Farm Bot <farm-bot@example.org>" in trailers


def test_no_tested_by_for_a_series_whose_run_failed(
    story: Story, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--tested", str(story.series_id)])
    assert exit_.value.code == 1
    assert f"run {story.run_id} of series {story.series_id} failed" in capsys.readouterr().err


def test_an_output_file_in_a_missing_directory_is_refused_before_sending(
    story: Story, farm_toml: Path, smtp_server: MailServer, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(farm_toml, smtp_server)
    with pytest.raises(SystemExit) as exit_:
        main(["report", str(story.bisection_id), "--send", "-o", "/nonexistent/dir/x.eml"])
    assert exit_.value.code == 1
    assert (
        "cannot write /nonexistent/dir/x.eml: No such file or directory" in capsys.readouterr().err
    )
    assert smtp_server.messages == []


def test_the_markdown_and_html_pages_carry_the_same_evidence(
    story: Story, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    main(["report", str(story.bisection_id), "--format", "markdown"])
    page = capsysbinary.readouterr().out.decode()
    assert "## Evidence" in page and "kernel BUG at lib/list_debug.c:53!" in page
    assert f"base commit:   {story.base}" in page and story.message_ids[CULPRIT] in page
    main(["report", str(story.bisection_id), "--format", "html"])
    assert "&lt;TASK&gt;" in capsysbinary.readouterr().out.decode()  # escaped console text
