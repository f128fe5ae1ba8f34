# SPDX-License-Identifier: Apache-2.0
"""Kconfig fragments: parsing, hashing, and the check that every option survived."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.build.kconfig import config_hash, default_fragment, parse_config, read_fragment, verify
from farm.errors import UserError


def test_the_soak_fragment_asks_for_what_a_soak_needs() -> None:
    options = read_fragment(default_fragment())
    for name in (
        "SERIAL_8250_CONSOLE",
        "KALLSYMS_ALL",
        "DEBUG_LIST",
        "BUG_ON_DATA_CORRUPTION",
        "MAGIC_SYSRQ",
        "TRANSPARENT_HUGEPAGE",
        "MEMCG",
        "SWAP",
        "TMPFS",
        "PSTORE_RAM",
        "UNWINDER_ORC",
        "VIRTIO_NET",
        "DEBUG_INFO_NONE",
        "PSI",  # /proc/pressure/*, which the sampler reads
        "SLUB_DEBUG",  # /proc/slabinfo
        "USERFAULTFD",  # the mm selftests
        "MEM_SOFT_DIRTY",
        "DEBUG_FS",
    ):
        assert options[f"CONFIG_{name}"] == "y", name
    assert options["CONFIG_MODULES"] == "n"


def test_a_fragment_line_that_is_not_config_is_refused_with_its_line_number(tmp_path: Path) -> None:
    fragment = tmp_path / "bad.config"
    fragment.write_text("CONFIG_SWAP=y\nSWAP=y\n")
    with pytest.raises(UserError, match=r"bad.config:2: not a kernel config line: 'SWAP=y'"):
        read_fragment(fragment)


def test_the_config_hash_ignores_order_and_comments_but_not_values() -> None:
    one = parse_config("# swap\nCONFIG_SWAP=y\nCONFIG_MEMCG=y\n")
    same = parse_config("CONFIG_MEMCG=y\n\nCONFIG_SWAP=y\n")
    other = parse_config("CONFIG_MEMCG=y\n# CONFIG_SWAP is not set\n")
    assert config_hash(one) == config_hash(same) != config_hash(other)


def test_an_option_kconfig_dropped_is_named_with_the_dependency_that_removed_it(
    tmp_path: Path,
) -> None:
    src = tmp_path / "src"
    (src / "mm").mkdir(parents=True)
    (src / "mm" / "Kconfig").write_text(
        'config SWAP\n\tbool "Support for paging"\n\tdepends on MMU && BLOCK\n\tdefault y\n'
    )
    final = parse_config("CONFIG_MMU=y\n# CONFIG_BLOCK is not set\n")
    with pytest.raises(UserError) as caught:
        verify(final, {"CONFIG_SWAP": "y", "CONFIG_NO_SUCH_THING": "y", "CONFIG_MMU": "y"}, src)
    message = str(caught.value)
    assert "CONFIG_SWAP: asked y, got n: depends on (MMU && BLOCK); not set: BLOCK" in message
    assert "CONFIG_NO_SUCH_THING: asked y, got n: no such option in this tree" in message
    assert "CONFIG_MMU" not in message


def test_a_dependency_from_an_if_block_around_the_source_line_is_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "fs" / "pstore").mkdir(parents=True)
    (src / "fs" / "Kconfig").write_text(
        "if BLOCK\nconfig EXT2_FS\n\tbool\nendif # BLOCK\n"
        "menuconfig MISC_FILESYSTEMS\n\tbool\nif MISC_FILESYSTEMS\n"
        'source "fs/pstore/Kconfig"\nendif # MISC_FILESYSTEMS\n'
    )
    (src / "fs" / "pstore" / "Kconfig").write_text("config PSTORE\n\ttristate\n")
    with pytest.raises(
        UserError,
        match=r"CONFIG_PSTORE: .* depends on \(MISC_FILESYSTEMS\); not set: MISC_FILESYSTEMS\n",
    ):
        verify(parse_config("CONFIG_BLOCK=y\n"), {"CONFIG_PSTORE": "y"}, src)
