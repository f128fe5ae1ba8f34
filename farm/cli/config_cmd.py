# SPDX-License-Identifier: Apache-2.0
"""farm config: check and show the effective configuration.

``farm config check`` validates the file, then checks what it can without changing
anything: trees are git repositories, key and token files exist and are private, the
SSH hosts' keys are recorded, the default load exists, and the services' ports are
free (a warning: `farm up` may be using them)."""

from __future__ import annotations

import errno
import socket
import stat
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from farm.cli.common import emit_json, get_config, json_option
from farm.config import FarmConfig, HostConfig, KernelConfigSource, redact
from farm.errors import UserError
from farm.git import is_git_repo

EXPORTER_PORT = 9478  # `farm exporter`'s default, which `farm up` uses


@dataclass(frozen=True)
class Finding:
    """One check: ``level`` is ok, warning or error (errors make the exit status 1)."""

    level: str
    what: str
    detail: str
    hint: str | None = None


@click.group()
def config() -> None:
    """Inspect farm's configuration."""


@config.command("check")
@json_option
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Validate the configuration, check what it names (trees, keys, ports) and print
    the effective values; exit 1 if a check found an error."""
    cfg = get_config(ctx)
    data = cfg.model_dump(mode="json")
    data["database_url"] = redact(cfg.db_url)
    data["broker_url"] = redact(cfg.broker_url)
    source = str(cfg.source) if cfg.source else "embedded default"
    findings = checks(cfg)
    if as_json:
        emit_json({"source": source, "config": data, "checks": [asdict(f) for f in findings]})
    else:
        _print(cfg, source, data, findings)
    if any(f.level == "error" for f in findings):
        sys.exit(1)


def _print(cfg: FarmConfig, source: str, data: dict[str, str], findings: list[Finding]) -> None:
    errors = sum(f.level == "error" for f in findings)
    state = "OK" if not errors else f"read, {errors} problems"
    click.echo(f"# configuration {state}, read from: {source}")
    click.echo(f"data_dir     = {cfg.data_dir}")
    click.echo(f"database_url = {data['database_url']}")
    click.echo(f"broker_url   = {data['broker_url']}")
    click.echo(f"loads_dir    = {cfg.loads_dir}")
    for tree in cfg.trees:
        click.echo(f"tree {tree.name}: {tree.path} (base {tree.base or 'from series'})")
    for host in cfg.hosts:
        tags = ",".join(host.tags) or "-"
        click.echo(
            f"host {host.name}: {host.kind} {host.user}@{host.address}:{host.port} "
            f"boot={host.boot} power={host.power.kind} console={host.console.kind} tags={tags} "
            f"kernel_config={_kernel_config(host.kernel_config)}"
        )
    mail = cfg.mail
    login = f" as {mail.user} (password in {mail.password_file})" if mail.user else ""
    where = f"{mail.smtp} {mail.security}{login}" if mail.smtp else "no smtp: reports as files"
    click.echo(f"mail: from {mail.sender}, {where}")
    n = cfg.notify
    events = ", ".join(
        f"{name}={'+'.join(getattr(n, name)) or 'off'}"
        for name in ("run_end", "culprit", "host_bad")
    )
    click.echo(f"notify: {events}")
    for finding in findings:
        click.echo(f"{finding.level:<7}  {finding.what}: {finding.detail}")
        if finding.hint:
            click.echo(f"         hint: {finding.hint}")


def checks(cfg: FarmConfig) -> list[Finding]:
    """Everything checkable without side effects, in the order of the file."""
    found = [*_load(cfg)]
    for tree in cfg.trees:
        found += _tree(tree.name, tree.path, tree.config_fragment)
    for host in cfg.hosts:
        found += _host(cfg, host)
    found += _token(cfg)
    found += _ports(cfg)
    return found


def _load(cfg: FarmConfig) -> list[Finding]:
    from farm.loads import get_load

    try:
        get_load(cfg, cfg.default_load)
    except UserError as exc:
        return [Finding("error", "default_load", exc.message, exc.hint)]
    return [Finding("ok", "default_load", f"{cfg.default_load} in {cfg.loads_dir}")]


def _tree(name: str, path: Path, fragment: Path | None) -> list[Finding]:
    what = f"tree {name}"
    if not path.is_dir():
        return [Finding("error", what, f"{path} does not exist", "fix trees.path")]
    if not is_git_repo(path):
        hint = f"git clone a kernel tree to {path}, or point trees.path at one"
        return [Finding("error", what, f"{path} is not a git repository", hint)]
    found = [Finding("ok", what, f"{path} is a git repository")]
    if fragment is not None and not fragment.is_file():
        found.append(Finding("error", what, f"config_fragment {fragment} does not exist"))
    return found


def _private_file(what: str, path: Path) -> Finding:
    """A secret: it must exist, be ours and be readable by nobody else."""
    try:
        info = path.stat()
    except OSError as exc:
        return Finding("error", what, f"{path}: {exc.strerror}")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = f"{info.st_mode & 0o777:o}"
        return Finding("error", what, f"{path} is mode {mode}", f"chmod 600 {path}")
    return Finding("ok", what, f"{path} exists, mode {info.st_mode & 0o777:o}")


def _host(cfg: FarmConfig, host: HostConfig) -> list[Finding]:
    """The SSH key and the recorded host key of a real machine (farm provisions both
    for its QEMU hosts)."""
    from farm.hosts import keys

    if host.kind != "ssh":
        return []
    what = f"host {host.name}"
    key = host.key or keys.ssh_dir(cfg.data_dir) / "id_ed25519"
    found = [_private_file(f"{what} key", key)] if key.exists() or host.key else []
    known = host.known_hosts or keys.known_hosts_path(cfg.data_dir)
    pattern = keys.host_pattern(host.address, host.port)
    looked = subprocess.run(
        ["ssh-keygen", "-F", pattern, "-f", str(known)], capture_output=True, check=False
    )
    if looked.returncode == 0:
        found.append(Finding("ok", f"{what} host key", f"{pattern} is recorded in {known}"))
    else:
        hint = f"ssh-keyscan {host.address} | ssh-keygen -lf -, then farm hosts trust {host.name}"
        found.append(Finding("error", f"{what} host key", f"{pattern} not in {known}", hint))
    return found


def _token(cfg: FarmConfig) -> list[Finding]:
    from farm.api.auth import token_file

    path = token_file(cfg)
    return [_private_file("api token", path)] if path.exists() else []


def _ports(cfg: FarmConfig) -> list[Finding]:
    """The ports `farm up` will listen on; in use is a warning: something else may hold
    them on purpose. Ports of a farm that is up are its own."""
    from farm.hosts.netconsole import DEFAULT_PORT
    from farm.supervisor import read_state

    if read_state(cfg.data_dir) is not None:
        return [Finding("ok", "ports", "farm is up: its services hold their ports")]
    wanted = [("exporter", socket.SOCK_STREAM, "127.0.0.1", EXPORTER_PORT)]
    if _token(cfg):
        wanted.append(("api", socket.SOCK_STREAM, cfg.api.host, cfg.api.port))
    netconsole = {
        h.console.port or DEFAULT_PORT for h in cfg.hosts if h.console.kind == "netconsole"
    }
    wanted += [("netconsole", socket.SOCK_DGRAM, "127.0.0.1", p) for p in sorted(netconsole)]
    found = []
    for name, kind, address, port in wanted:
        proto = "TCP" if kind == socket.SOCK_STREAM else "UDP"
        what = f"{name} port"
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((address, port))
            except OSError as exc:
                why = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                detail = f"{proto} {address}:{port} {why}"
                hint = "`farm up` would fail to start this service: free the port or move it"
                found.append(Finding("warning", what, detail, hint))
                continue
        found.append(Finding("ok", what, f"{proto} {address}:{port} free"))
    return found


def _kernel_config(source: KernelConfigSource) -> str:
    return f"file:{source.path}" if source.kind == "file" else source.kind
