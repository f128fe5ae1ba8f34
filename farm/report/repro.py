# SPDX-License-Identifier: Apache-2.0
"""repro.sh: the failure reproduced without farm, by whoever wrote the patch.

Three steps, each a subcommand: ``apply TREE`` checks out the base commit in a kernel
git tree and applies the series with ``git am`` exactly as farm did (the mail as
received is inside the script), ``build TREE`` builds it with the same .config, ``run``
(on the test machine, as root, booted into that kernel) runs the same load for the same
time, quiesces and prints the counters farm watched.

Whatever came from mail (the patches, their Message-IDs) or from the kernel tree (the
config) is either inside a quoted here-document, whose delimiter is checked not to occur
in it, or passed through ``shlex.quote``: the shell never expands it.
"""

from __future__ import annotations

import hashlib
import shlex

from farm.report.model import Reproducer

NAME = "repro.sh"

_HEAD = """\
#!/bin/sh
# Reproduces what farm saw, without farm. Steps:
#   sh repro.sh apply /path/to/linux   # a git clone that has the base commit
#   sh repro.sh build /path/to/linux   # same .config; the kernel is arch/x86/boot/bzImage
#   sh repro.sh run                    # on the test machine booted into it, as root
# FARM_SECONDS=N shortens the load (default: as long as farm ran it); FARM_MEM_KB=N
# sizes it for N kB of memory (default: the machine's).
set -eu
"""

_STEPS = """\
apply() {
    tree=$1
    git -C "$tree" checkout --quiet --detach "$BASE"
    for n in $PATCHES; do
        "patch_$n" | git -C "$tree" -c core.hooksPath=/dev/null -c commit.gpgSign=false \\
            am --quiet -3 --keep --message-id
    done
    git -C "$tree" log --oneline "$BASE..HEAD"
}

build() {
    tree=$1
    kconfig > "$tree/.config"
    make -C "$tree" olddefconfig
    make -C "$tree" -j"$(nproc)" bzImage
    echo "built $tree/arch/x86/boot/bzImage"
}

counters() {
    for c in $COUNTERS; do
        awk -v c="$c" '$1 == c { print "  " $1 " " $2 }' /proc/vmstat
    done
}

run() {
    FARM_DIR=$(mktemp -d /tmp/farm-repro.XXXXXX)
    FARM_RUN_ID=0
    : "${FARM_MEM_KB:=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)}"
    export FARM_DIR FARM_RUN_ID FARM_SECONDS FARM_MEM_KB
    mkdir -p "$FARM_DIR/bin"
    i=0
    for b in $BINARIES; do
        i=$((i + 1))
        "source_$i" > "$FARM_DIR/$b.c"
        cc -static -O2 -o "$FARM_DIR/bin/$b" "$FARM_DIR/$b.c"
    done
    load_script > "$FARM_DIR/load.sh"
    echo "load $LOAD for $FARM_SECONDS s; counters before:"
    counters
    status=0
    sh "$FARM_DIR/load.sh" || status=$?
    echo "load exited with status $status; quiescing"
    quiesce
    echo "counters after the load (farm expects them back at their baseline):"
    counters
    return "$status"
}

case "${1:-}" in
    apply|build) [ $# -eq 2 ] || { echo "usage: sh $0 $1 TREE" >&2; exit 1; }; "$1" "$2" ;;
    run) run ;;
    *) echo "usage: sh $0 apply TREE | build TREE | run" >&2; exit 1 ;;
esac
"""


def _delimiter(tag: str, data: bytes) -> bytes:
    """A here-document end marker that is no line of ``data``."""
    lines = set(data.splitlines())
    salt = hashlib.sha256(data).hexdigest()[:12]
    marker = f"FARM_{tag}_{salt}".encode()
    while marker in lines:  # astronomically unlikely, but the guarantee is cheap
        marker += b"_"
    return marker


def _here(function: str, tag: str, data: bytes) -> bytes:
    """A shell function printing ``data`` verbatim: a quoted here-document expands
    nothing, neither ``$`` nor backquotes."""
    if not data.endswith(b"\n"):
        data += b"\n"
    end = _delimiter(tag, data)
    return b"%s() {\n    cat <<'%s'\n%s%s\n}\n\n" % (function.encode(), end, data, end)


def _assign(name: str, value: str) -> bytes:
    return f"{name}={shlex.quote(value)}\n".encode()


def script(repro: Reproducer) -> bytes:
    load = repro.load
    parts = [
        _HEAD.encode(),
        _assign("BASE", repro.base_commit),
        _assign("PATCHES", " ".join(str(i) for i, _ in repro.patches)),
        _assign("LOAD", load.name),
        b': "${FARM_SECONDS:=%d}"\n' % max(1, int(load.seconds)),
        _assign("BINARIES", " ".join(load.binaries)),
        _assign("COUNTERS", " ".join(load.counters)),
        b"\n",
    ]
    for index, raw in repro.patches:
        parts.append(_here(f"patch_{index}", f"PATCH_{index}", raw))
    for i, source in enumerate(load.binaries.values(), 1):
        parts.append(_here(f"source_{i}", "SOURCE", source.encode()))
    parts.append(_here("kconfig", "CONFIG", repro.config.encode()))
    parts.append(_here("load_script", "LOAD", load.script.encode()))
    quiesce = "\n".join(f"    {cmd} || true" for cmd in load.quiesce) or "    :"
    parts.append(f"quiesce() {{\n{quiesce}\n}}\n\n".encode())
    parts.append(_STEPS.encode())
    return b"".join(parts)
