# SPDX-License-Identifier: Apache-2.0
"""farm.toml: the one configuration file, validated at the edge.

Where it is read from, first match wins: ``--config PATH``, ``$FARM_CONFIG``,
``$XDG_CONFIG_HOME/farm/farm.toml`` (``~/.config/farm/farm.toml``). Without any file
farm runs on its embedded default: two local QEMU hosts, SQLite and a private Redis.
``FARM_*`` environment variables override single keys (``FARM_DATABASE_URL``,
``FARM_BROKER_URL``, ``FARM_DATA_DIR``; nested keys with ``__``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import stat
import string
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from farm.data import loads_dir as shipped_loads_dir
from farm.errors import UserError

LOOPBACK = "127.0.0.1"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"  # hosts, trees, loads: never a path
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


# "//user:password@" of a URL; up to the last "@", so an unencoded "@" in a password
# hides too much rather than too little.
_USERINFO = re.compile(r"(//[^:/@\s]*):\S*@")
_SECRET_QUERY = re.compile(r"([?&](?:password|passwd|pwd|token|secret)=)[^&#\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the password of every URL in it, and password or token query
    values, replaced by ``***``: what farm shows wherever a database or broker URL
    appears (output, errors, logs). Works on error messages that quote a URL too."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))


def read_private(path: Path, what: str) -> str:
    """The text of ``path``, a file only its owner may read (a password or token that
    farm.toml names but never holds). Errors name the file, never its content."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read the {what} file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UserError(
            f"the {what} file {path} is readable by others (mode {mode & 0o777:o})",
            hint=f"chmod 600 {path}",
        )
    return text


def read_secret(path: Path, what: str) -> str:
    """The first line of the private file ``path`` (see read_private)."""
    text = read_private(path, what)
    return text.splitlines()[0] if text else ""


def default_config_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "farm" / "farm.toml"


def default_data_dir() -> Path:
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "farm"


class SchedulerConfig(BaseModel):
    """Timings of the soak pipeline. Tests shrink them; production keeps the defaults."""

    model_config = ConfigDict(extra="forbid")

    sample_interval: float = Field(default=10.0, gt=0, description="seconds between samples")
    hang_grace: float = Field(
        default=60.0, ge=0, description="extra seconds after 3 missed intervals before a hang"
    )
    lease_seconds: float = Field(
        default=60.0, gt=0, description="host lease TTL; renewed while a step runs"
    )
    reconcile_seconds: float = Field(default=15.0, gt=0, description="beat period")
    heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="how often a worker tells the database it is alive"
    )
    overdue_seconds: float = Field(
        default=30.0, gt=0, description="a run this late past its due time is re-driven"
    )
    redrive_per_beat: int = Field(
        default=200, gt=0, description="at most this many overdue steps re-driven per beat"
    )
    visibility_timeout: float = Field(
        default=3600.0,
        gt=0,
        description="Redis transport redelivers unacked tasks after this (a backstop only)",
    )
    baseline_max_age_hours: float = Field(
        default=168.0, gt=0, description="a baseline run younger than this is reused"
    )
    boot_timeout: float = Field(default=600.0, gt=0)
    max_infra_retries: int = Field(default=3, ge=0)
    remote_dir: str = Field(default="/var/tmp/farm", pattern=r"^/[A-Za-z0-9_./-]+$")  # noqa: S108 - on the test host


class BisectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto: bool = Field(default=True, description="bisect every patched run that ends FAIL")
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1.0, description="posterior an automatic bisection stops at"
    )
    step_overhead_hours: float = Field(
        default=0.25, gt=0, description="build + boot before a bisect run starts soaking"
    )
    min_step_hours: float = Field(default=1.0, gt=0, description="shortest bisect soak")
    max_step_hours: float = Field(default=48.0, gt=0, description="longest bisect soak")
    prior_scale_hours: float = Field(
        default=24.0, gt=0, description="typical time to crash the engine assumes at first"
    )
    max_hours: float | None = Field(
        default=None, gt=0, description="default wall-clock budget of a bisection"
    )

    @model_validator(mode="after")
    def _ordered(self) -> BisectConfig:
        if self.min_step_hours > self.max_step_hours:
            raise ValueError(
                f"min_step_hours {self.min_step_hours:g} exceeds max_step_hours "
                f"{self.max_step_hours:g}"
            )
        return self

    def durations(self, steps: int = 8) -> tuple[float, ...]:
        """Soak lengths the planner chooses from: geometric from min to max."""
        lo, hi = self.min_step_hours, self.max_step_hours
        if lo == hi:
            return (lo,)
        return tuple(lo * (hi / lo) ** (i / (steps - 1)) for i in range(steps))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_PATCHES = 999


class IntakeConfig(_Strict):
    """Reading patch mail. A subject's ``n/total`` is untrusted input and a series is held
    as one slot per number, so the total is bounded."""

    max_patches: int = Field(
        default=MAX_PATCHES, ge=1, le=100_000, description="longest series farm reads"
    )
    lore_url: str = Field(
        default="https://lore.kernel.org",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="public-inbox archive asked for `farm submit MSGID`",
    )
    lore_timeout: float = Field(default=60.0, gt=0, le=3600, description="seconds per fetch")


POWER_FIELDS = ("name", "address", "port", "user")


class PowerConfig(_Strict):
    """How a host is switched off and on. ``qemu`` is the VM process itself.

    ``command`` runs ``on``/``off``/``cycle`` on the controller as an argument list,
    never through a shell: the template is split into words as a shell would (quotes
    group words), then the placeholders {name} {address} {port} {user} are filled in
    within each word. Without ``cycle``, a cycle is off then on. ``timeout`` bounds a
    command, or for ``manual`` how long farm waits for a human to say it is done.
    """

    kind: Literal["none", "qemu", "command", "manual"] = "none"
    on: str | None = None
    off: str | None = None
    cycle: str | None = None
    timeout: float = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _templates(self) -> PowerConfig:
        if self.kind == "command" and not (self.on and self.off):
            raise ValueError("power kind 'command' needs both 'on' and 'off' commands")
        for template in (self.on, self.off, self.cycle):
            try:
                shlex.split(template or "")
            except ValueError as exc:
                raise ValueError(f"cannot split power command {template!r}: {exc}") from exc
            for _, field, _, _ in string.Formatter().parse(template or ""):
                if field is not None and field not in POWER_FIELDS:
                    raise ValueError(
                        f"unknown placeholder {{{field}}} in power command {template!r} "
                        f"(known: {', '.join('{' + f + '}' for f in POWER_FIELDS)})"
                    )
        return self


class ConsoleConfig(_Strict):
    """Where the kernel's console output of a host can be read."""

    kind: Literal["none", "serial-file", "netconsole"] = "none"
    path: Path | None = None
    port: int | None = Field(default=None, ge=1, le=65535, description="netconsole's UDP port")
    device: str | None = Field(default=None, description="netconsole: the host's interface")
    max_log_mb: int = Field(
        default=64, ge=1, description="netconsole: past this size the log is rotated to .1"
    )


class QemuConfig(_Strict):
    """A QEMU virtual host: farm starts the VM, its SSH port is forwarded on loopback."""

    memory_mb: int = Field(default=512, ge=128)
    cpus: int = Field(default=1, ge=1)
    ssh_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    swap_mb: int = Field(default=256, ge=16, description="scratch virtio disk used as swap")
    rootfs: Path | None = Field(
        default=None,
        description="a disk image (raw or qcow2, ext4 root on partition 1, systemd and "
        "OpenSSH) the VM boots into; none: the busybox initramfs",
    )
    powerdown_seconds: float = Field(
        default=0.0,
        ge=0,
        description="power off: seconds the guest gets to handle its power button (0: none)",
    )
    accel: Literal["auto", "kvm", "tcg"] = Field(
        default="auto", description="auto: KVM if a probe guest runs on it, else TCG"
    )
    extra_args: list[str] = Field(
        default=[], description="added to QEMU's arguments; an -accel here overrides accel"
    )


class HealthConfig(_Strict):
    """Health checks: after a run ended INFRA, hung or had its host power-cycled, and when
    a host leaves maintenance, boot its known-good kernel and run a short load."""

    checks: bool | None = Field(
        default=None, description="default: on for real machines, off for QEMU hosts"
    )
    load: str | None = Field(default=None, description="default: the farm's default_load")
    seconds: float = Field(default=300.0, gt=0, description="soak length of the check")


class LaptopConfig(_Strict):
    """Laptop care during a soak."""

    refuse_on_battery: bool = True
    inhibit_sleep: bool = True


class MetalConfig(_Strict):
    """How farm installs and boots test kernels on a machine of its own (docs/baremetal.md)."""

    initramfs: Literal["auto", "none", "initramfs-tools", "dracut"] = "auto"
    keep_kernels: int = Field(default=3, ge=1, description="farm kernels kept in /boot/farm")
    panic_seconds: int = Field(default=10, ge=1, description="panic=N: reboot to the default")
    cmdline: str = Field(default="", description="added to the test kernel's command line")


class KernelConfigSource(_Strict):
    """What a host's test kernels are configured from (docs/build.md): ``tiny``
    (tinyconfig + the soak fragment, the default), ``host`` (the machine's own running
    config, fetched over SSH from /proc/config.gz or /boot/config-$(uname -r), reduced
    with ``make localmodconfig`` against its lsmod) or ``file`` (a full .config at
    ``path``). The fragment goes on top of each, then olddefconfig."""

    kind: Literal["tiny", "host", "file"] = "tiny"
    path: Path | None = None

    @model_validator(mode="after")
    def _path_for_file(self) -> KernelConfigSource:
        if (self.kind == "file") != (self.path is not None):
            raise ValueError("kernel_config: kind 'file' needs a path, and only it has one")
        return self


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_SCOPE = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # an interface name, as in fe80::1%eth0


def is_address(value: str) -> bool:
    """An IP address (a scoped IPv6 one names an interface) or an RFC 1123 host name."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        name = value.removesuffix(".")
        return len(name) <= 253 and all(_LABEL.fullmatch(label) for label in name.split("."))
    return "%" not in value or bool(_SCOPE.fullmatch(value.partition("%")[2]))


class HostConfig(_Strict):
    """One test machine of the inventory."""

    name: Name
    kind: Literal["ssh", "qemu", "sim"] = Field(
        description="sim: a simulated host for scale measurements only (farm/hosts/sim.py)"
    )
    address: str = Field(description="required for kind 'ssh'; a QEMU host is on loopback")
    port: int = Field(default=22, ge=1, le=65535)
    user: str = "root"
    key: Path | None = None
    known_hosts: Path | None = None
    arch: Literal["x86_64"] = "x86_64"
    boot: Literal["qemu", "grub", "kexec"] | None = None
    power: PowerConfig = PowerConfig()
    console: ConsoleConfig = ConsoleConfig()
    qemu: QemuConfig | None = None
    metal: MetalConfig = MetalConfig()
    tags: list[str] = []
    connect_timeout: float = Field(default=10.0, gt=0)
    command_timeout: float = Field(default=300.0, gt=0)
    boot_timeout: float = Field(default=300.0, gt=0, description="power on to SSH answering")
    allow_agent: bool = Field(default=False, description="offer ssh-agent keys too")
    health: HealthConfig = Field(default_factory=HealthConfig)
    laptop: LaptopConfig | None = None
    kernel_config: KernelConfigSource = Field(default_factory=KernelConfigSource)

    @field_validator("address")
    @classmethod
    def _ip_or_host_name(cls, value: str) -> str:
        """The address reaches ssh, power commands and netconsole: never an option,
        a space or shell syntax."""
        if not is_address(value):
            raise ValueError("neither an IP address nor a host name (RFC 1123)")
        return value

    @field_validator("user")
    @classmethod
    def _user_name(cls, value: str) -> str:
        if not _USER.fullmatch(value):
            raise ValueError("not a user name (letters, digits, '_', '.', '-')")
        return value

    @model_validator(mode="before")
    @classmethod
    def _address_needed(cls, data: Any) -> Any:
        """A real machine has no default address: 127.0.0.1 would soak the controller."""
        if not isinstance(data, dict) or data.get("address") is not None:
            return data
        if data.get("kind") == "ssh":
            raise ValueError(
                f"host {data.get('name')!r} (kind 'ssh') has no address: set "
                'address = "192.0.2.10" (its IP address or host name) under its [[hosts]]'
            )
        return {**data, "address": LOOPBACK}

    @model_validator(mode="after")
    def _kind_defaults(self) -> HostConfig:
        if self.kind == "qemu":
            self.qemu = self.qemu or QemuConfig()
            self.boot = self.boot or "qemu"
            if self.power.kind == "none":
                self.power = PowerConfig(kind="qemu")
            if self.console.kind == "none":
                self.console = ConsoleConfig(kind="serial-file")
        elif self.kind == "sim" and self.console.kind == "none":
            self.console = ConsoleConfig(kind="serial-file")  # the model writes it
        if self.boot is None:
            self.boot = "grub"
        if self.health.checks is None:
            self.health.checks = self.kind == "ssh"  # a VM or a model starts from scratch
        if self.boot == "qemu" and self.kind != "qemu":
            raise ValueError("boot 'qemu' needs kind 'qemu'")
        return self


class TreeConfig(_Strict):
    """A kernel git tree that series are applied to."""

    name: Name
    path: Path
    base: str | None = Field(default=None, description="default base ref when a series names none")
    config_fragment: Path | None = None


class BuildConfig(_Strict):
    """Kernel builds (docs/build.md)."""

    sandbox: bool = Field(
        default=True,
        description="run make in a bubblewrap sandbox; false only where bwrap cannot run",
    )
    check_each_patch: bool = Field(
        default=False,
        description="before a patched run soaks, build each patch of its range in order; "
        "the first that breaks the build ends the run FAIL (kernel) with the compiler's error",
    )


class WorkerConfig(_Strict):
    """What this machine's ``farm worker`` does besides stepping its hosts' runs
    (docs/operations.md, "A build worker")."""

    build: bool = Field(
        default=True,
        description="serve the build queue: build kernels for any worker's runs "
        "(false on a machine that only soaks, e.g. a laptop)",
    )
    build_jobs: int = Field(default=0, ge=0, description="make -jN of a build; 0: every core")
    ccache_dir: Path | None = Field(
        default=None, description="ccache of the builds; default: the cache directory's ccache"
    )
    artefact_address: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.:-]+$",
        description="USER@HOST[:PORT] where other workers fetch this builder's artefacts "
        "(rsync over SSH, host key verified); unset: workers on this machine only",
    )
    fetch_timeout: float = Field(default=600.0, gt=0, description="seconds per artefact fetch")


class ApiConfig(_Strict):
    """``farm api``: the alert webhook, the JSON API and the web view.

    The read token is read from ``$FARM_API_TOKEN`` or, when unset, from ``token_file``
    (default ``<data_dir>/api-token``); the admin token, which may act (cancel a run,
    start a bisection, maintenance on/off), from ``$FARM_API_ADMIN_TOKEN`` or
    ``admin_token_file`` (default ``<data_dir>/api-admin-token``; without it the web
    view is read-only). Neither appears in farm.toml.
    """

    host: str = Field(default="127.0.0.1", description="address to bind; loopback by default")
    port: int = Field(default=9479, ge=1, le=65535)
    token_file: Path | None = None
    admin_token_file: Path | None = None
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="a browser login lasts this long"
    )
    secure_cookies: bool = Field(
        default=False, description="mark the session cookie Secure: set it behind TLS"
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s\"'<>]+$",
        description="the web view as browsers reach it (Grafana links to its run pages); "
        "default http://<host>:<port>",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="larger request bodies are refused (413)"
    )

    @property
    def web_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


SmtpSecurity = Literal["starttls", "tls", "none"]


class MailConfig(_Strict):
    """The one SMTP sender, used by reports (``farm report --send``) and by email
    notifications alike.

    The password is read from ``password_file`` (mode 0600 or stricter) when the report or
    notification is sent; it never appears in farm.toml and is never logged. Without
    ``smtp``, reports are written as files (``git send-email``-compatible) and email
    notifications are off.
    """

    sender: str = Field(
        default="farm <farm@localhost>",
        alias="from",
        description="From: of every mail farm sends, e.g. 'Farm Bot <farm@example.org>'",
    )
    smtp: str | None = Field(default=None, description="HOST[:PORT] of the submission server")
    security: SmtpSecurity = Field(
        default="starttls", description="starttls (port 587), tls (port 465) or none"
    )
    user: str | None = Field(default=None, description="SMTP login; needs password_file")
    password_file: Path | None = None
    ca_file: Path | None = Field(
        default=None, description="trust this CA for the server's certificate (a private relay)"
    )
    timeout: float = Field(default=30.0, gt=0)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _login_has_password(self) -> MailConfig:
        if self.user and self.password_file is None:
            raise ValueError(
                "mail.user is set without mail.password_file: put the SMTP password in a "
                "file (chmod 600) and name it there; farm.toml never holds it"
            )
        if self.security == "none" and self.user:
            raise ValueError("mail.security 'none' would send the SMTP password in clear")
        return self


class ReportConfig(_Strict):
    """What the reports say about who found the bug, and who they go to.

    Tags follow Documentation/process/submitting-patches.rst: ``Reported-by:`` (or
    ``Tested-by:`` for a soak that passed) names ``identity``; ``Closes:`` points at the
    report in the list archive when ``archive_url`` is set and the report goes to a list
    (``{message_id}`` is the report's own Message-ID without brackets); ``Link:`` at
    ``link_url`` (``{bisection}``, ``{series}``) when set.
    """

    identity: str | None = Field(
        default=None, description="name <address> in the tags; default: mail.from"
    )
    archive_url: str | None = Field(
        default=None, description="e.g. https://lore.kernel.org/r/{message_id}"
    )
    link_url: str | None = Field(
        default=None, description="e.g. https://farm.example.org/bisections/{bisection}"
    )
    cc_lists: list[str] = Field(
        default=[],
        description="public lists a report may Cc (addresses, or '*' for every list the "
        "patch went to); by default no list is Cc'd",
    )
    list_domains: list[str] = Field(
        default=["vger.kernel.org", "kvack.org", "lists.*", "*.lists.*", "lists.linux.dev"],
        description="addresses at these domains are mailing lists ('*' matches a label)",
    )
    reproducer: bool = Field(default=True, description="attach repro.sh to FAIL reports")

    @field_validator("archive_url", "link_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return value
        known = ("message_id", "bisection", "series")
        for _, field, _, _ in string.Formatter().parse(value):
            if field is not None and field not in known:
                raise ValueError(f"unknown placeholder {{{field}}} (known: {', '.join(known)})")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value


NotifyChannel = Literal["desktop", "email", "webhook"]


class NotifyConfig(_Strict):
    """Who hears when a submitted run ends, a bisection names its culprit, or a host goes
    BAD: each event lists its channels. ``desktop`` uses notify-send and is skipped when
    there is no session bus; ``email`` goes to ``email`` through the [mail] sender;
    ``webhook`` POSTs JSON to ``webhook_url``, with ``Authorization: Bearer <token>``
    when ``webhook_token_file`` is set. A failing channel is logged, never fatal."""

    run_end: list[NotifyChannel] = ["desktop"]
    culprit: list[NotifyChannel] = ["desktop"]
    host_bad: list[NotifyChannel] = ["desktop"]
    email: str | None = Field(default=None, description="the user's address (not a list)")
    webhook_url: str | None = None
    webhook_token_file: Path | None = None
    timeout: float = Field(default=10.0, gt=0, description="seconds per channel")

    @model_validator(mode="after")
    def _channels_configured(self) -> NotifyConfig:
        used = {c for event in (self.run_end, self.culprit, self.host_bad) for c in event}
        if "email" in used and not self.email:
            raise ValueError("an event lists 'email' but notify.email (your address) is unset")
        if "webhook" in used and not self.webhook_url:
            raise ValueError("an event lists 'webhook' but notify.webhook_url is unset")
        if self.webhook_url and not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError("notify.webhook_url must be an http(s) URL")
        return self


class FarmConfig(BaseSettings):
    """The effective configuration."""

    model_config = SettingsConfigDict(env_prefix="FARM_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    broker_url: str = "redis://127.0.0.1:6379/0"
    hosts: list[HostConfig] = Field(
        default_factory=lambda: [
            HostConfig(name="laptop", kind="qemu", address=LOOPBACK, tags=["laptop"]),
            HostConfig(name="workstation", kind="qemu", address=LOOPBACK, tags=["workstation"]),
        ]
    )
    trees: list[TreeConfig] = []
    loads_dir: Path = Field(default_factory=shipped_loads_dir)
    default_load: str = "kbuild-tmpfs-swap"
    default_soak: str = "12h"
    intake: IntakeConfig = IntakeConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    bisect: BisectConfig = BisectConfig()
    build: BuildConfig = BuildConfig()
    worker: WorkerConfig = WorkerConfig()
    api: ApiConfig = ApiConfig()
    mail: MailConfig = MailConfig()
    report: ReportConfig = ReportConfig()
    notify: NotifyConfig = NotifyConfig()
    source: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, which overrides the defaults.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _unique_names(self) -> FarmConfig:
        for what, names in (
            ("hosts", [h.name for h in self.hosts]),
            ("trees", [t.name for t in self.trees]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate names {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _email_needs_a_server(self) -> FarmConfig:
        n = self.notify
        if "email" in (*n.run_end, *n.culprit, *n.host_bad) and self.mail.smtp is None:
            raise ValueError("[notify] lists 'email' but [mail] has no smtp server to send it")
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'farm.db'}"

    def host(self, name: str) -> HostConfig:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts) or "none"
        raise UserError(
            f"no host named {name!r} in the inventory (known: {known})",
            hint="farm hosts list",
        )

    def tree(self, name: str | None = None) -> TreeConfig | None:
        if name is None:
            return self.trees[0] if self.trees else None
        for tree in self.trees:
            if tree.name == name:
                return tree
        return None


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        value = item.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        lines.append(f"  {key}: {item['msg']}{shown}")
    return "\n".join(lines)


def load_config(path: Path | str | None = None) -> FarmConfig:
    """Read, merge and validate the configuration; every problem is a UserError."""
    explicit = path or os.environ.get("FARM_CONFIG")
    file = Path(explicit) if explicit else default_config_path()
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UserError(f"{file}: cannot read TOML: {exc}") from exc
    elif explicit:
        raise UserError(f"config file {file} does not exist", hint="farm config check")
    source = str(file) if file.exists() else "embedded default configuration"
    try:
        config = FarmConfig(**data)
    except ValidationError as exc:
        raise UserError(_describe(exc, source), hint="farm config check") from exc
    config.source = file if file.exists() else None
    base = file.parent if file.exists() else Path.cwd()
    _resolve_paths(config, base)
    return config


def _resolve_paths(config: FarmConfig, base: Path) -> None:
    """Relative paths in a config file are relative to the file, not to the cwd."""
    config.data_dir = (base / config.data_dir.expanduser()).resolve()
    config.loads_dir = (base / config.loads_dir.expanduser()).resolve()
    for section, attr in (
        (config.api, "token_file"),
        (config.api, "admin_token_file"),
        (config.mail, "password_file"),
        (config.mail, "ca_file"),
        (config.notify, "webhook_token_file"),
    ):
        value = getattr(section, attr)
        if value is not None:
            setattr(section, attr, (base / value.expanduser()).resolve())
    for tree in config.trees:
        tree.path = (base / tree.path.expanduser()).resolve()
        if tree.config_fragment:
            tree.config_fragment = (base / tree.config_fragment.expanduser()).resolve()
    for host in config.hosts:
        for attr in ("key", "known_hosts"):
            value = getattr(host, attr)
            if value is not None:
                setattr(host, attr, (base / value.expanduser()).resolve())
