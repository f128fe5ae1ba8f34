# SPDX-License-Identifier: Apache-2.0
"""Build a kernel commit with a config fragment, incrementally, once per (commit, config).

Per tree, farm keeps a git worktree under the cache directory and, per (arch, config
hash), a persistent ``make O=<dir>`` output directory. Checking a worktree out at the
next commit rewrites only the files that differ, so make recompiles only what the patch
changed; ccache catches the rest when a bisection jumps back and forth. A lock file per
tree keeps two workers out of the same worktree and output directories. The finished
artefacts are copied to the data directory, keyed by (commit, config hash): a second
request is a cache hit that runs nothing.

make runs the patches' code (any Makefile or script may change), so it runs in a
sandbox (farm.build.sandbox) with a minimal environment; farm's own steps (checkout,
ccache statistics, copying the artefacts) run outside it.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from farm.build import kconfig
from farm.build.artifacts import (
    BuildMetadata,
    KernelArtifacts,
    Toolchain,
    artifacts_dir,
    build_id_for,
    cached_build,
    release_suffix,
)
from farm.build.failures import Failure, check_toolchain, classify
from farm.build.sandbox import Sandbox, default_sandbox
from farm.build.tree import farm_cache_dir, file_lock
from farm.errors import InfraError, KernelError
from farm.git import git, resolve

Progress = Callable[[str], None]
_PROGRESS_EVERY = 10.0  # seconds between progress lines while make runs
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
_STALE_SECONDS = 86400.0
_SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


class _Make:
    """One build's make invocations, all logged to build.log."""

    def __init__(
        self,
        src: Path,
        out: Path,
        env: dict[str, str],
        sandbox: Sandbox,
        build_id: str,
        log: IO[str],
        localversion: str = "",
    ) -> None:
        self.src, self.out, self.env, self.sandbox, self.log = src, out, env, sandbox, log
        self.variables = [
            f"O={out}",
            f"ARCH={kconfig.ARCH}",
            "CC=ccache gcc",
            "HOSTCC=ccache gcc",
            f"KBUILD_BUILD_VERSION={build_id}",
            "KBUILD_BUILD_USER=farm",
            "KBUILD_BUILD_HOST=farm",
            f"LOCALVERSION={localversion}",
        ]
        self.lines: list[str] = []

    def argv(self, targets: list[str], jobs: int = 1) -> list[str]:
        """make in its sandbox, with its whole environment on the command line."""
        return self.sandbox.wrap(self.make_argv(targets, jobs), self.env)

    def make_argv(self, targets: list[str], jobs: int = 1) -> list[str]:
        return [
            "nice",
            "-n",
            "10",
            "make",
            "-C",
            str(self.src),
            *self.variables,
            f"-j{jobs}",
            *targets,
        ]

    def command_line(self, targets: list[str], jobs: int) -> str:
        return shlex.join(self.argv(targets, jobs))

    def __call__(self, targets: list[str], jobs: int = 1, progress: Progress | None = None) -> None:
        # The sandbox and environment are those of the log's first line: not repeated.
        self.log.write(f"$ {shlex.join(self.make_argv(targets, jobs))}\n")
        self.log.flush()
        try:
            proc = subprocess.Popen(
                self.argv(targets, jobs),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise InfraError(
                f"cannot run make: {exc}", hint="apt-get install build-essential"
            ) from exc
        assert proc.stdout is not None
        try:
            last = time.monotonic()
            for line in proc.stdout:
                self.log.write(line)
                self.lines.append(line)
                if progress and time.monotonic() - last > _PROGRESS_EVERY:
                    progress(line.strip())
                    last = time.monotonic()
        except BaseException:
            proc.terminate()  # interrupted: never leave make running in the output dir
            proc.wait()
            raise
        if proc.wait() != 0:
            raise _MakeFailed(proc.returncode)


def _die_with_parent() -> None:
    """In make's process: be sent SIGTERM when farm dies, so a killed worker's make
    does not go on writing an output directory whose lock it no longer holds."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _MakeFailed(Exception):
    def __init__(self, returncode: int) -> None:
        super().__init__(returncode)
        self.returncode = returncode


def build_kernel(
    tree: Path,
    commit: str,
    *,
    data_dir: Path,
    fragment: Path | None = None,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    sandbox: Sandbox | None = None,
    base: kconfig.BaseConfig | None = None,
    jobs: int = 0,
    ccache_dir: Path | None = None,
) -> KernelArtifacts:
    """Build ``commit`` of the git repository ``tree`` with ``fragment`` on ``base``
    (default tinyconfig; a host's reduced config or a given file, kconfig.BaseConfig).

    Returns the artefacts (``cached`` when an earlier build is reused). A tree that does
    not build raises KernelError naming the first error; our failures raise InfraError.
    ``cache_dir`` (default ``$FARM_CACHE_DIR``) holds the worktree, output directories
    and (unless ``ccache_dir`` says where) ccache; make runs with ``jobs`` (0: a job
    per core). ``sandbox`` confines make (farm.build.sandbox.for_config(config); by
    default it hides the secrets of the configuration in use)."""
    say = progress or (lambda _msg: None)
    sha = resolve(tree, commit)
    fragment = fragment or kconfig.default_fragment()
    options = kconfig.read_fragment(fragment)
    base = base or kconfig.BaseConfig()
    cfg_hash = kconfig.config_hash(options, base)
    final = artifacts_dir(data_dir, sha, cfg_hash)
    if hit := cached_build(final):
        say(f"{final.name}: cached build, nothing to do")
        return hit
    cache = cache_dir or farm_cache_dir()
    with file_lock(cache / "build" / f"{_tree_key(tree)}.lock"):
        if hit := cached_build(final):  # built by another worker while we waited
            return hit
        jail = sandbox or default_sandbox(data_dir)
        request = _Request(sha, fragment, options, base, cfg_hash, jobs, ccache_dir)
        return _build_locked(tree, request, cache, final, jail, say)


def check_each_patch(
    tree: Path,
    patches: list[tuple[int, str]],
    *,
    data_dir: Path,
    fragment: Path | None = None,
    progress: Progress | None = None,
    sandbox: Sandbox | None = None,
    cache_dir: Path | None = None,
    base: kconfig.BaseConfig | None = None,
    jobs: int = 0,
    ccache_dir: Path | None = None,
) -> None:
    """Build every patch of an applied range in order, as 0-day does, each an
    incremental build on the previous one (and a cache hit for a later bisection).
    ``patches`` are (number, commit) pairs. The first patch that does not build raises
    a KernelError naming it and quoting the compiler's error; a series whose end builds
    but whose middle does not is caught before any soak."""
    say = progress or (lambda _msg: None)
    total = max((number for number, _ in patches), default=0)
    for number, commit in patches:
        say(f"per-patch build check: {number:02d}/{total:02d} {commit[:12]}")
        try:
            build_kernel(
                tree, commit, data_dir=data_dir, fragment=fragment, progress=say,
                sandbox=sandbox, cache_dir=cache_dir, base=base, jobs=jobs,
                ccache_dir=ccache_dir,
            )  # fmt: skip
        except KernelError as exc:
            raise KernelError(
                f"patch {number:02d}/{total:02d} ({commit[:12]}) breaks the build: {exc.message}",
                hint=exc.hint,
            ) from exc


def _tree_key(tree: Path) -> str:
    digest = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:8]
    return f"{tree.resolve().name}-{digest}"


@dataclass(frozen=True)
class _Request:
    sha: str
    fragment: Path
    options: dict[str, str]
    base: kconfig.BaseConfig
    cfg_hash: str
    jobs: int = 0
    ccache: Path | None = None


def _build_locked(
    tree: Path, request: _Request, cache: Path, final: Path, sandbox: Sandbox, say: Progress
) -> KernelArtifacts:
    sha, fragment, cfg_hash = request.sha, request.fragment, request.cfg_hash
    work = cache / "build" / _tree_key(tree)
    env = _make_env(request.ccache or cache / "ccache", work)
    check_toolchain(env)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():  # an infrastructure failure: its log is replaced by the retry
        shutil.rmtree(final)
    _remove_stale_staging(final)
    src = _checkout(tree, sha, work / "src", say)
    out = work / f"out-{kconfig.ARCH}-{cfg_hash[:8]}"
    incremental = (out / "vmlinux").exists()
    out.mkdir(parents=True, exist_ok=True)
    jail = _confine(sandbox, src, out, Path(env["CCACHE_DIR"]), env, say)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    build_id = build_id_for(sha, cfg_hash)
    try:
        with (staging / "build.log").open("w", buffering=1) as log:  # line-buffered
            make = _Make(src, out, env, jail, build_id, log, release_suffix(sha, cfg_hash))
            jobs = request.jobs or os.cpu_count() or 1
            meta = BuildMetadata(
                commit=sha,
                config_hash=cfg_hash,
                fragment=str(fragment),
                arch=kconfig.ARCH,
                state="building",
                command=make.command_line([], jobs),
                build_id=build_id,
                started_at=dt.datetime.now(dt.UTC).isoformat(),
                host=socket.gethostname(),
                incremental=incremental,
                sandbox=jail.kind,
                toolchain=toolchain(env),
                config_source=request.base.describe(fragment.name),
            )
            log.write(f"{meta.command}\n")
            meta.write(staging)
            failure = _run(make, meta, out, src, request, jobs, staging, say)
        if not _publish(staging, final):
            shutil.rmtree(staging)
            failure, meta = None, BuildMetadata.read(final) or meta
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if failure:
        raise failure.error(hint=f"less {final / 'build.log'}")
    kind = "incremental" if incremental else "clean"
    say(f"built {meta.release} ({kind}) in {meta.duration_seconds:.0f}s: {final}")
    return KernelArtifacts.from_metadata(final, meta, cached=False)


def toolchain(env: dict[str, str], compiler: str = "gcc") -> Toolchain:
    """The versions of the tools make will find on ``env``'s PATH."""

    def first_line(*argv: str) -> str:
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=30, check=False
            )
        except OSError:
            return ""
        return done.stdout.partition("\n")[0].strip()

    return Toolchain(
        compiler=compiler,
        compiler_version=first_line(compiler, "-dumpfullversion"),
        compiler_banner=first_line(compiler, "--version"),
        binutils=first_line("ld", "--version"),
        make=first_line("make", "--version"),
    )


def _make_env(ccache: Path, work: Path) -> dict[str, str]:
    """make's whole environment: none of the worker's (FARM_*, database and broker URLs,
    SSH agent), but its PATH, which says where the toolchain is."""
    return {
        "PATH": os.environ.get("PATH") or _SYSTEM_PATH,
        "HOME": "/nonexistent",
        "LC_ALL": "C",
        "CCACHE_DIR": str(ccache),
        "CCACHE_BASEDIR": str(work),
    }


def _confine(
    sandbox: Sandbox, src: Path, out: Path, ccache: Path, env: dict[str, str], say: Progress
) -> Sandbox:
    """This build's sandbox, checked to work: make writes only the output directory and
    ccache; it reads the source tree and the repository scripts/setlocalversion asks
    about (without it the release would silently lose its "+")."""
    ccache.mkdir(parents=True, exist_ok=True)
    jail = sandbox.bind(read_only=[src, *_git_dirs(src)], writable=[out, ccache])
    jail.check(env)
    if not jail.enabled:
        say("warning: make runs without a sandbox ([build] sandbox = false in farm.toml)")
    return jail


def _git_dirs(src: Path) -> list[Path]:
    """The repository of the worktree ``src`` (its .git file points there) and the
    object stores that repository borrows from (objects/info/alternates)."""
    common = Path(git(src, "rev-parse", "--path-format=absolute", "--git-common-dir").strip())
    objects = common / "objects"
    alternates = objects / "info" / "alternates"
    lines = alternates.read_text().splitlines() if alternates.is_file() else []
    borrowed = [objects / line for line in lines if line and not line.startswith("#")]
    return [common, *(path for path in borrowed if path.is_dir())]


def _remove_stale_staging(final: Path) -> None:
    """Staging directories of builds killed before they could clean up (a day old:
    a live build elsewhere sharing this data directory is never that slow)."""
    for stale in final.parent.glob(f".{final.name}.*"):
        if time.time() - stale.stat().st_mtime > _STALE_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)


def _publish(staging: Path, final: Path) -> bool:
    """Rename the finished build into place; False if a build sharing the data
    directory (another tree or cache, same commit and config) got there first."""
    try:
        staging.rename(final)
    except OSError:
        if (final / "metadata.json").exists():
            return False
        raise
    return True


def _run(
    make: _Make,
    meta: BuildMetadata,
    out: Path,
    src: Path,
    request: _Request,
    jobs: int,
    staging: Path,
    say: Progress,
) -> Failure | None:
    """Configure, make and collect; the outcome lands in ``meta`` and metadata.json."""
    started = time.monotonic()
    before = _ccache_stats(make.env)
    failure = None
    try:
        say(f"configuring {meta.commit[:12]}: {meta.config_source}")
        kconfig.configure_base(out, src, request.base, request.options, lambda t: make(t))
        kind = "incremental" if meta.incremental else "clean"
        say(f"building {meta.commit[:12]} with -j{jobs} ({kind})")
        make([], jobs, say)
        meta.modules = (
            kconfig.parse_config((out / ".config").read_text()).get("CONFIG_MODULES") == "y"
        )
        if meta.modules:
            _modules_tarball(make, jobs, staging)
        _collect(out, staging)
        meta.release = (out / "include" / "config" / "kernel.release").read_text().strip()
        meta.state = "ok"
    except _MakeFailed as exc:
        failure = classify(make.lines, exc.returncode, src, out)
        meta.state, meta.fault = "failed", failure.fault
        meta.error, meta.error_lines = failure.message, failure.lines
    finally:
        meta.duration_seconds = round(time.monotonic() - started, 2)
        meta.ccache = _ccache_delta(before, _ccache_stats(make.env))
        meta.write(staging)
    return failure


def _checkout(tree: Path, sha: str, src: Path, say: Progress) -> Path:
    """The persistent worktree of ``tree`` at ``sha``; git rewrites only changed files."""
    if (src / ".git").exists():
        git(src, "checkout", "-q", "--detach", "--force", sha, timeout=1800)
        return src
    say(f"creating the build worktree {src} (one time per tree)")
    git(tree, "worktree", "prune")
    src.parent.mkdir(parents=True, exist_ok=True)
    git(tree, "worktree", "add", "-q", "--detach", "--force", str(src), sha, timeout=1800)
    return src


def _collect(out: Path, staging: Path) -> None:
    for name, relative in (
        ("bzImage", "arch/x86/boot/bzImage"),
        ("System.map", "System.map"),
        ("vmlinux", "vmlinux"),
        (".config", ".config"),
    ):
        try:
            shutil.copy2(out / relative, staging / name)
        except OSError as exc:
            raise InfraError(f"cannot copy {out / relative} to {staging}: {exc.strerror}") from exc


def _modules_tarball(make: _Make, jobs: int, staging: Path) -> None:
    """modules_install into a scratch root and pack it (configs with CONFIG_MODULES)."""
    # In the output directory: the only place, besides ccache, make may write to.
    with tempfile.TemporaryDirectory(prefix=".farm-modules-", dir=make.out) as root:
        make(["modules_install", f"INSTALL_MOD_PATH={root}"], jobs)
        with tarfile.open(staging / "modules.tar.xz", "w:xz") as tar:
            tar.add(Path(root) / "lib", arcname="lib")


def _ccache_stats(env: dict[str, str]) -> dict[str, int]:
    proc = subprocess.run(
        ["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=False
    )
    stats = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("\t")
        if value.isdigit():
            stats[key] = int(value)
    return stats


def _ccache_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    def delta(*keys: str) -> int:
        return sum(after.get(k, 0) - before.get(k, 0) for k in keys)

    return {
        "hits": delta("direct_cache_hit", "preprocessed_cache_hit"),
        "misses": delta("cache_miss"),
    }
