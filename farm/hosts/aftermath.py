# SPDX-License-Identifier: Apache-2.0
"""What a machine remembers of a crash, read after it came back up.

A laptop has no serial console: when the test kernel dies, its last words survive in
pstore (ramoops or EFI variables: /sys/fs/pstore, or where systemd-pstore archived
them, /var/lib/systemd/pstore) and, when the kernel lived long enough to flush them, in
the previous boot's journal. pstore records are removed once read, so a crash is
collected once. The text is console-like: farm.detect.crash titles it.
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.detect.crash import Crash, parse
from farm.hosts.base import Transport
from farm.hosts.install import Root

PSTORE_DIRS = ("/sys/fs/pstore", "/var/lib/systemd/pstore")
# Each record as "==> path <==" then its text; only files of farm's known directories.
_LIST = 'find "$@" -type f 2>/dev/null | sort || true'
_JOURNAL = ["journalctl", "-k", "-b", "-1", "--no-pager", "-o", "short-monotonic", "-q"]


@dataclass(frozen=True)
class Aftermath:
    """pstore records (path → text) and the previous boot's kernel log."""

    pstore: dict[str, str]
    journal: str

    @property
    def text(self) -> str:
        """Everything, pstore first (it has the crash when the journal could not)."""
        parts = [f"==> {path} <==\n{text}" for path, text in self.pstore.items()]
        if self.journal:
            parts.append(f"==> journalctl -k -b -1 <==\n{self.journal}")
        return "\n".join(parts)

    def excerpt(self, chars: int = 8000) -> str:
        """For an error message: the end of each record (where a panic is), shared out."""
        share = chars // (len(self.pstore) + 1)
        parts = [f"==> {path} <==\n{text[-share:]}" for path, text in self.pstore.items()]
        if self.journal:
            parts.append(f"==> journalctl -k -b -1 <==\n{self.journal[-share:]}")
        return "\n".join(parts)

    def crashes(self) -> list[Crash]:
        return parse(self.text)

    @property
    def empty(self) -> bool:
        return not self.pstore and not self.journal


def collect_aftermath(transport: Transport, *, user: str = "root", host: str = "") -> Aftermath:
    """Read (then remove) pstore records and the previous boot's kernel log.

    Either may be missing: no pstore backend, a volatile journal. That is an empty
    part, not an error: the caller decides what no evidence means."""
    root = Root(transport, user=user, host=host or "host")
    paths = root.sh(_LIST, *PSTORE_DIRS).stdout.split("\n")
    records = {}
    for path in filter(None, paths):
        records[path] = root.run(["cat", "--", path], check=False).stdout
    if records:
        root.run(["rm", "-f", "--", *records], check=False)
    journal = root.run(_JOURNAL, check=False)
    return Aftermath(records, _kernel_lines(journal.stdout) if journal.ok else "")


def _kernel_lines(journal: str) -> str:
    """``[  12.345678] host kernel: text`` → ``[  12.345678] text``: the console's form."""
    lines = []
    for line in journal.splitlines():
        stamp, sep, rest = line.partition("] ")
        message = rest.partition(" kernel: ")[2] if " kernel: " in rest else rest
        lines.append(f"{stamp}{sep}{message}" if sep else line)
    return "\n".join(lines)
