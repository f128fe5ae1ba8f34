# SPDX-License-Identifier: Apache-2.0
"""Install a farm-built kernel on a machine over SSH, next to (never instead of) its own.

Test kernels live apart from the distribution's: ``/boot/farm/vmlinuz-<release>``,
``System.map-<release>``, ``cmdline-<release>`` and, when one is made,
``initrd.img-<release>``; modules go to ``/lib/modules/<release>``. Keeping them out of
``/boot/vmlinuz-*`` means the distribution's grub scripts never list them, so a farm
kernel can never become the entry a machine boots by default, even when it sorts as
the newest version. farm's own grub script (``/etc/grub.d/42_farm``) adds one entry
per test kernel, with its id ``farm-<release>`` and the command line farm chose
(``panic=N`` included), for ``grub-reboot``.

Releases must contain "farm" (jobs/kconfig/soak.config sets ``-farm``): that is how
farm knows which kernels are its own to clean up; it keeps the newest few and never
removes the running kernel. Everything runs as root: directly when the SSH user is
root, else through ``sudo -n``; data reaches the shell only as quoted arguments.
"""

from __future__ import annotations

import gzip
import lzma
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from farm.errors import InfraError, UserError
from farm.hosts.base import BootableKernel, CommandResult, Transport

FARM_BOOT = "/boot/farm"
GRUB_SCRIPT = "/etc/grub.d/42_farm"
MARKER = "farm"
Initramfs = Literal["auto", "none", "initramfs-tools", "dracut"]
_RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]*$")

# farm's grub script: one menu entry per kernel in /boot/farm, read at update-grub time.
# It uses grub-mkconfig's own library, so the entry reaches /boot as 10_linux's do.
GRUB_SCRIPT_TEXT = r"""#!/bin/sh
# Written by farm (https://farm docs/baremetal.md): one-shot test kernels in /boot/farm.
# They are listed after the distribution's entries and are booted only by grub-reboot.
set -e
. "${pkgdatadir:-/usr/share/grub}/grub-mkconfig_lib"
dir=/boot/farm
for image in "$dir"/vmlinuz-*; do
  [ -f "$image" ] || continue
  release=${image#"$dir"/vmlinuz-}
  [ -f "$dir/cmdline-$release" ] || continue
  device=$(${grub_probe:-grub-probe} --target=device "$dir")
  echo "menuentry 'farm test kernel $release' --id 'farm-$release' {"
  prepare_grub_to_access_device "$device" | sed 's/^/\t/'
  printf '\tlinux %s %s\n' "$(make_system_path_relative_to_its_root "$image")" \
    "$(cat "$dir/cmdline-$release")"
  if [ -f "$dir/initrd.img-$release" ]; then
    printf '\tinitrd %s\n' "$(make_system_path_relative_to_its_root "$dir/initrd.img-$release")"
  fi
  echo "}"
done
"""

# Which initramfs generator the distribution has, when the host config says "auto".
_DETECT_INITRAMFS = (
    "if command -v dracut >/dev/null; then echo dracut; "
    "elif command -v mkinitramfs >/dev/null; then echo initramfs-tools; else echo none; fi"
)


class Root:
    """Runs commands as root on a host: directly when the SSH user is root, else with
    ``sudo -n``, which fails instead of asking for a password farm cannot type."""

    def __init__(self, transport: Transport, *, user: str, host: str) -> None:
        self.transport = transport
        self.user = user
        self.host = host
        self._prefix = [] if user == "root" else ["sudo", "-n"]
        self._checked = user == "root"

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> CommandResult:
        self._check_sudo()
        return self.transport.run([*self._prefix, *argv], timeout=timeout, check=check, stdin=stdin)

    def sh(
        self, script: str, *args: str, timeout: float | None = None, stdin: bytes | None = None
    ) -> CommandResult:
        """A fixed, farm-authored snippet; data only as its positional arguments $1..."""
        return self.run(["sh", "-c", script, "sh", *args], timeout=timeout, stdin=stdin)

    def put(self, data: bytes, path: str, *, mode: int = 0o644) -> None:
        """Write ``path`` via a temporary file and a rename: never half a file."""
        self.sh(
            'cat > "$1.farm-part" && chmod "$2" "$1.farm-part" && mv -f "$1.farm-part" "$1"',
            path,
            f"{mode:o}",
            stdin=data,
        )

    def _check_sudo(self) -> None:
        if self._checked:
            return
        done = self.transport.run(["sudo", "-n", "true"], check=False)
        if not done.ok:
            line = f"{self.user} ALL=(root) NOPASSWD: ALL"
            raise UserError(
                f"{self.user}@{self.host} cannot run commands as root without a password "
                f"(sudo -n: {(done.stderr or done.stdout).strip() or f'exit {done.exit_code}'})",
                hint=f"on {self.host}: echo '{line}' > /etc/sudoers.d/farm "
                "(or connect as root); see docs/baremetal.md",
            )
        self._checked = True


@dataclass(frozen=True)
class InstalledKernel:
    release: str
    image: str
    initrd: str | None
    cmdline: str
    removed: tuple[str, ...]  # releases of older farm kernels cleaned up


def check_release(release: str) -> None:
    """A release farm may write to /boot and later delete: its own, and a plain name."""
    if not _RELEASE.match(release) or MARKER not in release:
        raise UserError(
            f"kernel release {release!r} is not marked as a farm test kernel",
            hint='build it with CONFIG_LOCALVERSION="-farm" (jobs/kconfig/soak.config), '
            "so farm can tell its kernels from the distribution's",
        )


def grub_quote(words: Sequence[str]) -> str:
    """A command line for grub.cfg: each word single-quoted, so ``$`` stays literal."""
    for word in words:
        if "'" in word or "\n" in word:
            raise UserError(f"kernel command line word {word!r} has a quote or newline")
    return " ".join(
        f"'{word}'" if not re.fullmatch(r"[\w.,:=/+@-]+", word) else word for word in words
    )


def install_kernel(
    root: Root,
    kernel: BootableKernel,
    cmdline: Sequence[str],
    *,
    initramfs: Initramfs = "auto",
    keep: int = 3,
    grub: bool = True,
) -> InstalledKernel:
    """Copy ``kernel`` (and its modules) to the host, make its initramfs and, with
    ``grub``, its grub entry; older farm kernels beyond the ``keep`` newest go."""
    release = kernel.release
    check_release(release)
    image, initrd = f"{FARM_BOOT}/vmlinuz-{release}", f"{FARM_BOOT}/initrd.img-{release}"
    root.run(["mkdir", "-p", FARM_BOOT])
    root.put(_read(kernel.bzimage), image)
    root.put(_read(kernel.system_map), f"{FARM_BOOT}/System.map-{release}")
    _install_modules(root, kernel)
    made = _make_initramfs(root, release, initrd, initramfs)
    root.put((grub_quote(cmdline) + "\n").encode(), f"{FARM_BOOT}/cmdline-{release}")
    removed = remove_old_kernels(root, keep=keep, also_keep=release)
    if grub:
        update_grub(root)
    return InstalledKernel(release, image, initrd if made else None, " ".join(cmdline), removed)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from exc


def _as_gzip(tarball: Path) -> bytes:
    """The .tar.xz recompressed for the host: gzip is essential on every Debian and in
    busybox, xz-utils is not installed on a minimal system (found on a real one)."""
    try:
        return gzip.compress(lzma.decompress(_read(tarball)), compresslevel=1)
    except lzma.LZMAError as exc:
        raise InfraError(f"{tarball} is not a readable .tar.xz: {exc}") from exc


def _install_modules(root: Root, kernel: BootableKernel) -> None:
    """The build's modules tarball (lib/modules/<release>/...) into /lib/modules."""
    tarball: Path | None = getattr(kernel, "modules_tarball", None)
    target = f"/lib/modules/{kernel.release}"
    root.run(["rm", "-rf", "--", target])
    if tarball is None:
        return
    # Extracted below /lib/modules, never over /lib: on merged-/usr systems /lib is a symlink.
    root.run(
        ["tar", "-xzf", "-", "-C", "/lib/modules", "--strip-components=2"],
        stdin=_as_gzip(tarball),
        timeout=900,
    )
    root.run(["depmod", "-a", kernel.release])


def _make_initramfs(root: Root, release: str, initrd: str, kind: Initramfs) -> bool:
    if kind == "auto":
        kind = root.transport.run(_DETECT_INITRAMFS).stdout.strip()  # type: ignore[assignment]
    root.run(["rm", "-f", "--", initrd])
    if kind == "none":
        return False
    if kind == "dracut":
        root.run(["dracut", "--force", "--kver", release, initrd], timeout=900)
    elif kind == "initramfs-tools":
        root.run(["mkinitramfs", "-o", initrd, release], timeout=900)
    else:
        raise InfraError(f"{root.host}: unknown initramfs generator {kind!r}")
    return True


def remove_old_kernels(root: Root, *, keep: int, also_keep: str = "") -> tuple[str, ...]:
    """Remove farm kernels beyond the ``keep`` newest; never the running one, nor
    ``also_keep``. Returns the releases removed."""
    listing = root.sh('uname -r; ls -1t "$1" 2>/dev/null || true', FARM_BOOT).stdout.split()
    running, names = listing[0], listing[1:]
    releases = [n.removeprefix("vmlinuz-") for n in names if n.startswith("vmlinuz-")]
    ours = [r for r in releases if _RELEASE.match(r) and MARKER in r]
    kept = {running, also_keep, *[r for r in ours if r != also_keep][: max(keep - 1, 0)]}
    old = tuple(r for r in ours if r not in kept)
    for release in old:
        files = [f"{FARM_BOOT}/{kind}-{release}" for kind in _FILES]
        root.run(["rm", "-rf", "--", *files, f"/lib/modules/{release}"])
    return old


_FILES = ("vmlinuz", "System.map", "cmdline", "initrd.img")


def update_grub(root: Root) -> None:
    """(Re)write farm's grub script when it changed, then regenerate grub.cfg."""
    current = root.run(["cat", GRUB_SCRIPT], check=False).stdout
    if current != GRUB_SCRIPT_TEXT:
        root.put(GRUB_SCRIPT_TEXT.encode(), GRUB_SCRIPT, mode=0o755)
    root.sh(
        "if command -v update-grub >/dev/null; then update-grub; "
        "else grub-mkconfig -o /boot/grub/grub.cfg; fi 2>&1",
        timeout=600,
    )


def grub_default(root: Root) -> str:
    """GRUB_DEFAULT as update-grub sees it (/etc/default/grub and grub.d/*.cfg)."""
    return root.sh(
        "GRUB_DEFAULT=0; for f in /etc/default/grub /etc/default/grub.d/*.cfg; do "
        '[ -e "$f" ] && . "$f"; done; printf %s "$GRUB_DEFAULT"'
    ).stdout.strip()


def grub_entry_id(release: str) -> str:
    return f"farm-{release}"


def check_grub_entry(root: Root, release: str) -> str:
    """The id of ``release``'s entry, after checking grub.cfg has it."""
    entry = grub_entry_id(release)
    cfg = root.sh(
        'for f in /boot/grub/grub.cfg /boot/grub2/grub.cfg; do [ -f "$f" ] && cat "$f"; done; true'
    ).stdout
    if f"--id '{entry}'" not in cfg:
        raise InfraError(
            f"{root.host}: update-grub wrote no entry {entry!r} (farm's script {GRUB_SCRIPT})",
            hint=f"run update-grub on {root.host} and read its output",
        )
    return entry
