# SPDX-License-Identifier: Apache-2.0
"""Title rules for Linux oopses, as data: syzbot's title convention.

The shapes follow syzkaller's pkg/report/linux.go (Apache-2.0), which defines the titles
the kernel community uses on syzbot; they are ported from it and changed (see NOTICE).
Each `Oops` is keyed by a header substring that marks a report start; its rules (`R`)
turn the report text into a title. Pattern tokens:

- ``<PC>``   a bracketed program counter, ``[<ffffffff81234567>]``
- ``<FUNC>`` a function name followed by ``+`` or ``.``, or decoded as ``func (file.c:1)``
  (captured)
- ``<SRC>``  a ``path/file.c:123`` source position (captured)

Title templates use 1-based positional fields: ``{1}`` is the first capture of the title
(or report) pattern; the key frames a rule's stack (`S`) extracts follow the captures.
Skip lists are space-separated regexps matched against frame names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


def rx(pattern: str) -> re.Pattern[str]:
    pattern = pattern.replace("<PC>", r"\[\<?(?:0x)?[0-9a-f]+\>?\]")
    # "func+0x1/0x2", "func.isra.0+...", or decoded: "func (path/file.c:123)"
    pattern = pattern.replace("<FUNC>", r"([a-zA-Z0-9_]+)(?:\.|\+| \((?=[^()\s]+:[0-9]))")
    pattern = pattern.replace("<SRC>", r"([a-zA-Z0-9\-_/.]+\.[a-z]+:[0-9]+)")
    return re.compile(pattern)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


class _ParseStack:
    """Marker part: parse a stack trace from the current position."""


PARSE = _ParseStack()
Part = re.Pattern[str] | _ParseStack
Extractor = Callable[[list[str]], str]


@dataclass(frozen=True)
class Stack:
    """How to find the guilty frame: parts matched in order, then frames skipped."""

    parts: tuple[Part, ...]
    parts2: tuple[Part, ...] = ()  # tried when `parts` finds no frame
    skip: tuple[str, ...] = ()
    extractor: Extractor | None = None


@dataclass(frozen=True)
class Rule:
    title: re.Pattern[str]
    fmt: str
    report: re.Pattern[str] | None = None
    alt: tuple[str, ...] = ()
    stack: Stack | None = None
    no_stack_trace: bool = False  # the report legitimately has no call trace
    corrupted: bool = False  # matching this rule means the report lost its head


@dataclass(frozen=True)
class Oops:
    header: str
    rules: tuple[Rule, ...]
    suppressions: tuple[re.Pattern[str], ...] = ()


# ---------------------------------------------------------------------------------------
# Shared stack vocabulary.

RIP_FRAME = rx(
    r"(?:Krnl PSW : [0-9a-f]+ [0-9a-f]+ \(<FUNC>|"  # s390
    r"(?:IP|NIP|pc |PC is at|EIP is at):? "
    r"(?:(?:[0-9]+:)?(?:<PC> +){0,2}<FUNC>|(?:[0-9]+:)?0x[0-9a-f]+"
    r"|(?:[0-9]+:)?<PC> +\[< *\(null\)>\] +\(null\)|[0-9]+: +\(null\)))"
)
CALL_TRACE = rx(r"(?:Call (?:T|t)race:)|(?:Backtrace:)")
# x86 WARNINGs trap, so their stack starts at the RIP line; powerpc prints an interrupt.
WARNING_START = re.compile(
    f"(?:{RIP_FRAME.pattern}|--- interrupt: [0-9]+ at {rx('<FUNC>').pattern})"
)
STACK_STARTS = tuple(
    re.compile(p)
    for p in (
        r"Call (?:T|t)race",
        r"Allocated:",
        r"Allocated by task [0-9]+:",
        r"Freed:",
        r"Freed by task [0-9]+:",
        r"[^k] backtrace(?: \(crc [0-9a-fA-F]*\))?:",  # not "stack backtrace:"
        r"Backtrace:",
        r"Uninit was stored to memory at",
    )
)
FRAME_RES = (
    rx(r"^ *(?:<PC> ){0,2}<FUNC>"),
    rx(r"^ *<PC> \(([a-zA-Z0-9_.]+)\) from <PC> \(<FUNC>"),  # arm: "pc (f) from pc (g+"
)
# Fault-injection stacks interleave with reports and make them unreliable.
CORRUPTED_LINES = (rx(r"^( \[\<?(?:0x)?[0-9a-f]+\>?\])? should_fail(slab)?(\.[a-z0-9.]+)?\+0x"),)

# Frames that never name the guilty code: sanitizers, printing, locking, allocation, list
# and string helpers, generic device/workqueue plumbing.
HELPER_FRAMES = _words(
    r"""
    __sanitizer __asan kasan hwasan __msan kmsan kcsan_setup_watchpoint check_memory_region
    check_heap_object check_object read_word_at_a_time (read|write)_once_.*nocheck
    print_address_description panic invalid_op report_bug fixup_bug print_report print_usage_bug
    do_error _trap$|do_trap show_stack dump_stack walk_stack dump_backtrace warn_slowpath
    warn_alloc warn_bogus __warn alloc_page k?v?(?:m|z|c)alloc krealloc kmem_cache allocate_slab
    __alloc_frozen_pages_noprof folio_(?:alloc|unlock) filemap_alloc_folio __filemap_get_folio
    find_or_create_page do_read_cache_folio read_cache_page pagecache_get_page
    grab_cache_page_write_begin slab_ debug_object timer_is_static_object work_is_static_object
    __might_fault print_unlock imbalance_bug lockdep bh_enable bh_disable perf_trace
    lock_acquire lock_release lock_class mark_lock (reacquire|mark)_held_locks raw_spin_rq
    spin_lock spin_trylock spin_unlock read_lock read_trylock write_lock write_trylock
    read_unlock write_unlock ^down$ down_read down_write down_trylock up_read up_write ^mutex_
    ^__mutex_ ^rt_mutex_ owner_on_cpu osq_lock osq_unlock
    atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)
    (set|clear|change|test)_bit __wake_up ^refcount_ ^kref_ ref_tracker seqprop_assert memcpy
    memcmp memset memchr memmove memdup strcmp strncmp strcpy strlcpy strncpy strscpy strlen
    strstr strnstr strnlen strchr strdup strndup copy_to_user copy_from_user copy_to_iter
    copy_from_iter copy_page_to_iter copy_page_from_iter copy_folio_to_iter ^copyin$ ^copyout$
    put_user get_user might_fault might_sleep list_add list_del list_replace list_move
    list_splice ^rb_ ^__rb_ _indirect_thunk_ string pointer snprintf scnprintf kasprintf
    kvasprintf printk va_format dev_info dev_notice dev_warn dev_err dev_alert dev_crit
    dev_emerg program_check_exception program_check_common del_timer flush_work
    __cancel_work_timer cancel_work_sync try_to_grab_pending flush_workqueue drain_workqueue
    destroy_workqueue queue_work finish_wait kthread_stop kobject_ add_uevent_var
    get_device_parent device_add device_del device_unregister device_destroy device_release
    devres_release_all hwrng_unregister i2c_del_adapter __unregister_client
    device_for_each_child rollback_registered unregister_netdev sysfs_remove device_remove_file
    tty_unregister_device dummy_urb_enqueue usb_kill_urb usb_kill_anchored_urbs usb_control_msg
    usb_hcd_submit_urb usb_submit_urb ^complete$ wait_for_completion ^kv?free$ kfree_skb readb$
    readw$ readl$ readq$ writeb$ writew$ writel$ writeq$ logic_in logic_out ^crc\d+ crc_itu_t
    __might_resched assertfail ^iput$ ^iput_final$ ^ihold$ hex_dump_to_buffer print_hex_dump
    ^klist_ (trace|lockdep)_(hard|soft)irq ^(un)?lock_page stack_trace_consume_entry
    arch_stack_walk stack_trace_save insert_work __queue_delayed_work queue_delayed_work_on
    ida_free do_(kernel|translation)_fault do_mem_abort el1_abort el1h_64_sync(?:_handler)?
    print_tainted xas_(?:start|load|find) find_lock_entries truncate_inode_pages_range
    __phys_addr __fortify_report cleanup_srcu_struct rhashtable_lookup extract_(user|iter)_to_sg
    drop_nlink ^get_taint$ ^put_device$ lock_timer_base __timer_delete_sync sk_stop_timer_sync
    __mod_timer fast_dput dput
    """
)

# Syscall wrappers differ per arch and version; the bare name identifies the bug.
STRIP_FRAME_PREFIXES = _words(
    r"""
    SYSC_ SyS_ sys_ __x64_ __ia32_ __arm64_ ____sys_ ___sys_ __sys_ __se_ __se_sys_ __do_sys_
    compat_SYSC_ compat_SyS_ ksys_
    """
)

# ---------------------------------------------------------------------------------------
# Frame extractors for hangs: the top frame is a random point in a loop, so pick a
# representative one deeper down: the caller of the first dispatch point.

_STALL_ANCHORS = _words(
    r"""
    process_one_work do_syscall_ do_fast_syscall_ sysenter_dispatch tracesys_phase2
    el0_svc_handler invoke_syscall ret_fast_syscall netif_receive_skb do_softirq call_timer_fn
    _run_timers run_timer_softirq hrtimer_run run_ksoftirqd smpboot_thread_fn ^kthread$
    start_secondary cpu_startup_entry ret_from_fork vfs_write vfs_read vfs_iter_read
    vfs_iter_write do_iter_read do_iter_write call_read_iter call_write_iter new_sync_read
    new_sync_write vfs_ioctl ksys_ioctl compat_ioctl compat_sys_ioctl blkdev_driver_ioctl
    blkdev_ioctl do_iter_readv_writev ^call_mmap mmap_region do_mmap do_dentry_open vfs_open
    ^sock_sendmsg ^sock_recvmsg ^sock_release ^__sock_release ^setsockopt$ kernel_setsockopt
    sock_common_setsockopt ^listen$ kernel_listen sk_common_release ^sock_mmap ^accept$
    kernel_accept ^sock_do_ioctl ^sock_ioctl ^compat_sock_ioctl ^nfnetlink_rcv_msg
    ^rtnetlink_rcv_msg ^netlink_dump ^(sys_)?(socketpair|connect|ioctl) __do_fault do_page_fault
    ^page_fault$ __fput task_work_run exit_to_usermode smp_call_function tasklet_action
    tasklet_hi_action
    """
)


_STALL_RE = re.compile("|".join(_STALL_ANCHORS))


def stall_frame(frames: list[str]) -> str:
    """The frame just above the first dispatch point (syscall entry, workqueue, timer)."""
    prev = frames[0]
    for frame in frames:
        if _STALL_RE.search(frame):
            return "smp_call_function" if "smp_call_function" in frame else prev
        prev = frame
    return ""


# Hangs on rtnl_lock and on the synchronize_* family are one bucket each.
_HANG_BUCKETS = {
    "rtnl_lock": "",
    "synchronize_rcu": "synchronize_rcu",
    "synchronize_srcu": "synchronize_rcu",
    "synchronize_net": "synchronize_rcu",
    "synchronize_sched": "synchronize_rcu",
}
_HANG_SKIP = _words(
    r"""
    sched _lock _slowlock down rwsem completion kthread wait synchronize context_switch
    __switch_to cancel_delayed_work rcu_barrier
    """
)


def hung_task_frame(frames: list[str]) -> str:
    """The bucket anchor if any, else the first frame that is not waiting machinery."""
    for frame in frames:
        for anchor, bucket in _HANG_BUCKETS.items():
            if anchor in frame:
                return bucket or frame
    return next((f for f in frames if not any(s in f for s in _HANG_SKIP)), "")


# ---------------------------------------------------------------------------------------
# Builders for the oops table (crash_oopses.py).


def S(
    *parts: Part | str,
    parts2: tuple[Part | str, ...] = (),
    skip: str = "",
    extractor: Extractor | None = None,
) -> Stack:
    """A stack: string parts are patterns, matched line by line before PARSE."""

    def compiled(items: tuple[Part | str, ...]) -> tuple[Part, ...]:
        return tuple(rx(p) if isinstance(p, str) else p for p in items)

    return Stack(compiled(parts), compiled(parts2), _words(skip), extractor)


def W(skip: str = "") -> Stack:
    """A WARNING's stack: from the trapping RIP, else from the call trace."""
    return S(WARNING_START, PARSE, parts2=(CALL_TRACE, PARSE), skip=skip)


def R(
    title: str,
    fmt: str,
    *,
    report: str | None = None,
    alt: str | tuple[str, ...] = (),
    stack: Stack | None = None,
    no_stack_trace: bool = False,
    corrupted: bool = False,
) -> Rule:
    alts = (alt,) if isinstance(alt, str) else alt
    return Rule(
        rx(title),
        fmt,
        rx(report) if report is not None else None,
        alts,
        stack,
        no_stack_trace,
        corrupted,
    )


def oops(header: str, rules: tuple[Rule, ...], suppress: tuple[str, ...] = ()) -> Oops:
    return Oops(header, rules, tuple(rx(s) for s in suppress))


# Header lines that do not end the report they appear in: they are its consequences.
REPORT_CONTINUATIONS = tuple(
    rx(p)
    for p in (
        "invalid opcode: 0000",
        "Kernel panic - not syncing",
        "unregister_netdevice: waiting for",
        "PANIC: double fault",
        "Internal error:",
    )
)
# Messages with a stack that are not bugs; inside a report they mean interleaving.
INFO_WITH_STACK = (
    "vmalloc: allocation failure:",
    "FAULT_INJECTION: forcing a failure",
    "FAULT_FLAG_ALLOW_RETRY missing",
)

# Title normalisation: dynamic parts (pids, addresses, numbers) would split one bug.
TITLE_REPLACEMENTS = tuple(
    (re.compile(p), r)
    for p, r in (
        (r"syz-executor\.?[0-9]+((/|:)[0-9]+)?", "syz-executor"),
        (r"syzkaller[0-9]+((/|:)[0-9]+)?", "syzkaller"),
        (r"([^a-zA-Z0])(?:0x)?[0-9a-f]{6,}", r"\1ADDR"),
        (r"([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})", "IP"),
        (r"(\.\w+)(:[0-9]+)+", r"\1:LINE"),
        (r"([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+/0x[0-9a-z]+", r"\1"),
        (r"CPU#[0-9]+", "CPU"),
        (r"(\W)(\d+)(\W|$)", r"\1NUM\3"),
    )
)
# Console timestamps glued into a title mean two messages were interleaved.
CORRUPTED_TITLE = re.compile(r"\[ *[0-9]+\.[0-9]+\]")
