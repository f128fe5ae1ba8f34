# SPDX-License-Identifier: Apache-2.0
"""The oops table: which header starts a report, and how each kind is titled.

Data for farm.detect.crash, in the vocabulary of crash_rules (see its docstring for the
pattern tokens and templates). Order matters: the first header found in a line wins, and
among the rules of an oops the one matching earliest in the report wins.

Ported from syzkaller's pkg/report/linux.go (Apache-2.0, Copyright the syzkaller project
authors) and changed: rewritten as farm's Python tables (see NOTICE).
"""

from __future__ import annotations

from farm.detect.crash_rules import (
    CALL_TRACE,
    PARSE,
    RIP_FRAME,
    Oops,
    R,
    S,
    W,
    hung_task_frame,
    oops,
    stall_frame,
)

_KASAN_FREE = "BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in <FUNC>"
_USB = "usb_submit_urb usb_start_wait_urb usb_bulk_msg usb_interrupt_msg usb_control_msg"

# fmt: off
OOPSES: tuple[Oops, ...] = (
    oops("BUG:", (
        R("BUG: KASAN:", "KASAN: {1} {3} in {4}",
          report=(r"BUG: KASAN: ([a-z\-]+) in <FUNC>(?:.*\n)+?.*(Read|Write) (?:of size|at addr"
                  r") (?:[0-9a-f]+)"),
          alt="bad-access in {4}",
          stack=S(r"BUG: KASAN: (?:[a-z\-]+) in <FUNC>", CALL_TRACE, PARSE,
              skip="kernel_fault tag_check mem_abort ^el1_ ^el1h_")),
        R("BUG: KASAN:", "KASAN: invalid-free in {2}",
          report=("BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in <FU"
                  "NC>"),
          alt="invalid-free in {2}",
          stack=S(_KASAN_FREE, CALL_TRACE,
              PARSE, skip="slab_ kfree vunmap vfree")),
        R(r"BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)",
          "KASAN: {1} {2}"),
        R("BUG: KASAN: (.*)", "KASAN: {1}", corrupted=True),
        R("BUG: KMSAN: kernel-usb-infoleak", "KMSAN: kernel-usb-infoleak in {2}",
          report="BUG: KMSAN: kernel-usb-infoleak in <FUNC>", alt="KMSAN origin in {3}",
          stack=S(PARSE, "(Local variable .* created at:|Uninit was created at:)", PARSE,
              skip=("alloc_skb usb_submit_urb usb_start_wait_urb usb_bulk_msg "
                    "usb_interrupt_msg usb_control_msg")),
          no_stack_trace=True),
        R("BUG: KMSAN:", "KMSAN: {1} in {3}", report=r"BUG: KMSAN: ([a-z\-]+) in <FUNC>",
          alt="bad-access in {3}",
          stack=S(PARSE, "(Local variable .* created at:|Uninit was created at:)", PARSE,
              skip=("alloc_skb netlink_ack netlink_rcv_skb _encrypt$ "
                    "^(?:crypto|cipher|drbg|rng)_")),
          no_stack_trace=True),
        R("BUG: KCSAN:", "KCSAN: {1}", report="BUG: KCSAN: (.*)", no_stack_trace=True),
        R("BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in <FUNC>",
          "KFENCE: {1} {2} in {4}", alt="bad-access in {4}",
          stack=S(r"BUG: KFENCE: (?:[a-z\- ]+) in <FUNC>", PARSE)),
        R("BUG: KFENCE: invalid free in <FUNC>", "KFENCE: invalid free in {2}",
          alt="invalid-free in {2}", stack=S(r"BUG: KFENCE: (?:[a-z\- ]+) in <FUNC>", PARSE),
          no_stack_trace=True),
        R("BUG: KFENCE: invalid (read|write) in <FUNC>", "KFENCE: invalid {1} in {3}",
          alt="bad-access in {3}", stack=S(r"BUG: KFENCE: (?:[a-z\- ]+) in <FUNC>", PARSE)),
        R("BUG: KFENCE: memory corruption in <FUNC>", "KFENCE: memory corruption in {2}",
          stack=S(r"BUG: KFENCE: (?:[a-z\- ]+) in <FUNC>", PARSE), no_stack_trace=True),
        R(("BUG: (?:unable to handle kernel paging request|unable to handle page fault for add"
           "ress|Unable to handle kernel data access)"),
          "BUG: unable to handle kernel paging request in {1}", alt="bad-access in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
        R(("BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer deref"
           "erence|Kernel NULL pointer dereference)"),
          "BUG: unable to handle kernel NULL pointer dereference in {1}", alt="bad-access in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
        R("BUG: (?:unable to handle kernel|Unable to handle kernel)",
          "BUG: unable to handle kernel", corrupted=True),
        R(("BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion|"
           "bad magic|wrong owner|wrong CPU|trylock failure on UP)"),
          "BUG: {1} {2} in {3}", stack=S(CALL_TRACE, PARSE, skip="spin_ _lock _unlock")),
        R("BUG: soft lockup", "BUG: soft lockup in {1}", alt="stall in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE, extractor=stall_frame)),
        R("BUG: .*still has locks held!", "BUG: still has locks held in {1}",
          report=r"BUG: .*still has locks held!(?:.*\n)+?.*<PC> +<FUNC>"),
        R("BUG: scheduling while atomic", "BUG: scheduling while atomic in {1}",
          stack=S(CALL_TRACE, PARSE, skip="schedule")),
        R("BUG: lock held when returning to user space",
          "BUG: lock held when returning to user space in {1}",
          report=(r"BUG: lock held when returning to user space(?:.*\n)+?.*leaving the kernel w"
                  r"ith locks still held(?:.*\n)+?.*at: (?:<PC> +)?<FUNC>"),
          no_stack_trace=True),
        R("BUG: bad unlock balance detected!", "BUG: bad unlock balance in {1}",
          stack=S("<PC> +<FUNC>", CALL_TRACE, PARSE)),
        R("BUG: held lock freed!", "BUG: held lock freed in {1}",
          report=r"BUG: held lock freed!(?:.*\n)+?.*<PC> +<FUNC>"),
        R("BUG: Bad rss-counter state", "BUG: Bad rss-counter state", no_stack_trace=True),
        R("BUG: non-zero nr_ptes on freeing mm", "BUG: non-zero nr_ptes on freeing mm",
          no_stack_trace=True),
        R("BUG: non-zero nr_pmds on freeing mm", "BUG: non-zero nr_pmds on freeing mm",
          no_stack_trace=True),
        R("BUG: Dentry .* still in use", "BUG: Dentry still in use in {1}",
          report=r"BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]",
          alt="BUG: Dentry still in use [{1} of {2}]"),
        R("BUG: Bad page (state|cache)", "BUG: Bad page {1} in {2}",
          stack=S("page last allocated", PARSE,
              skip=("(free|put|get|update|release)_page free_unref ^_*folio "
                    "truncate_inode_pages page_frag_free alloc vmap page_owner"))),
        R("BUG: Bad page map", "BUG: Bad page map"),
        R("BUG: workqueue lockup", "BUG: workqueue lockup", no_stack_trace=True),
        R("BUG: sleeping function called from invalid context at (.*)",
          "BUG: sleeping function called from invalid context in {2}", stack=S(CALL_TRACE, PARSE)),
        R(r"BUG: using ([a-z_]+)\(\) in preemptible",
          "BUG: using {1}() in preemptible code in {2}",
          stack=S(CALL_TRACE, PARSE,
                  skip="dump_stack preemption preempt debug_ processor_id this_cpu")),
        R("BUG: workqueue leaked lock or atomic", "BUG: workqueue leaked lock or atomic in {1}",
          report=(r"BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: ([a-zA-Z0-9_"
                  r"]+)\n"),
          no_stack_trace=True),
        R("BUG: memory leak", "memory leak in {1}",
          stack=S(r"backtrace(?: \(crc [0-9a-fA-F]*\))?:", PARSE,
              skip=("kmemleak mmap kmem slab alloc create_object idr_get list_lru_init "
                    "kasprintf kvasprintf pcpu_create strdup strndup memdup"))),
        R("BUG: .*stack guard page was hit at", "BUG: stack guard page was hit in {1}",
          alt="stack-overflow in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE, extractor=stall_frame)),
        R("BUG: Invalid wait context", "WARNING: locking bug in {1}",
          stack=S(CALL_TRACE, PARSE, skip="lock_sock release_sock")),
        R(r"BUG:\s*(?:\n|$)", "BUG: corrupted", corrupted=True),
    ), suppress=(
        "ODEBUG:",
        "Boot_DEBUG:",
        "xlog_status:",
        "DEBUG:",
        "BUG: no syscalls can create resource",
    )),
    oops("WARNING:", (
        R(r"WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)",
          "WARNING: ODEBUG bug in {1}",
          stack=W("debug_ rcu hrtimer_ timer_ work_ percpu_ vunmap vfree __free_ debug_check "
                  "kobject_")),
        R(r"WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)", "WARNING: bad usercopy in {1}",
          stack=W("usercopy __check")),
        R(r"WARNING: .*lib/kobject\.c.* (?:kobject_|at)", "WARNING: kobject bug in {1}",
          stack=W("kobject_")),
        R(r"WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)",
          "WARNING: proc registration bug in {1}", stack=W("proc_")),
        R(r"WARNING: .*lib/refcount\.c.* (?:refcount_|at)", "WARNING: refcount bug in {1}",
          stack=W("refcount kobject_")),
        R(r"WARNING: .*kernel/locking/lockdep\.c.*lock_", "WARNING: locking bug in {1}",
          stack=W("lock_sock release_sock")),
        R("WARNING: .*still has locks held!", "WARNING: still has locks held in {1}",
          report=r"WARNING: .*still has locks held!(?:.*\n)+?.*at: <FUNC>"),
        R("WARNING: Nested lock was not taken", "WARNING: nested lock was not taken in {1}",
          stack=W()),
        R("WARNING: lock held when returning to user space",
          "WARNING: lock held when returning to user space in {1}",
          report=(r"WARNING: lock held when returning to user space(?:.*\n)+?.*leaving the kern"
                  r"el with locks still held(?:.*\n)+?.*at: (?:<PC> +)?<FUNC>"),
          no_stack_trace=True),
        R(r"WARNING: .*mm/.*\.c.* k?.?malloc", "WARNING: kmalloc bug in {1}",
          stack=W("kmalloc krealloc slab kmem")),
        R("WARNING: .*mm/vmalloc.c.*__vmalloc_node", "WARNING: zero-size vmalloc in {1}",
          stack=W()),
        R("WARNING: .* usb_submit_urb", "WARNING in {1}/usb_submit_urb",
          stack=W(_USB)),
        R(r"WARNING: <SRC> at 0x\d+, CPU#\d+", "WARNING in {2}", stack=W()),
        # Before 3.12: "WARNING: at file.c:123 func+0x1/0x2()", the header names the caller.
        R("WARNING: at <SRC> <FUNC>", "WARNING in {2}", no_stack_trace=True),
        R("WARNING: .* at <SRC> <FUNC>", "WARNING in {3}", stack=W()),
        R("WARNING: <SRC> at <FUNC>", "WARNING in {3}", stack=W()),
        R(r"WARNING: \[.*\] <SRC> at <FUNC>.*", "WARNING in {3}", stack=W()),
        R("WARNING: possible circular locking dependency detected", "possible deadlock in {1}",
          report=(r"WARNING: possible circular locking dependency detected(?:.*\n)+?.*is trying"
                  r" to acquire lock"),
          stack=S("at: (?:<PC> +)?<FUNC>", "at: (?:<PC> +)?<FUNC>", PARSE,
              skip="process_one_work flush_workqueue drain_workqueue destroy_workqueue")),
        R("WARNING: possible irq lock inversion dependency detected", "possible deadlock in {1}",
          report=(r"WARNING: possible irq lock inversion dependency detected(?:.*\n)+?.*just ch"
                  r"anged the state of lock(?:.*\n)+?.*at: (?:<PC> +)?<FUNC>")),
        R("WARNING: .*-safe -> .*-unsafe lock order detected", "possible deadlock in {1}",
          stack=S("which became (?:.*) at:", PARSE)),
        R("WARNING: possible recursive locking detected", "possible deadlock in {1}",
          report=(r"WARNING: possible recursive locking detected(?:.*\n)+?.*is trying to acquir"
                  r"e lock(?:.*\n)+?.*at: (?:<PC> +)?<FUNC>")),
        R("WARNING: inconsistent lock state", "inconsistent lock state in {2}",
          report=(r"WARNING: inconsistent lock state(?:.*\n)+?.*takes(?:.*\n)+?.*at: (?:<PC> +)"
                  r"?<FUNC>"),
          stack=S(CALL_TRACE, PARSE)),
        R("WARNING: suspicious RCU usage", "WARNING: suspicious RCU usage in {2}",
          report=r"WARNING: suspicious RCU usage(?:.*\n)+?.*?<SRC>",
          stack=S(CALL_TRACE, PARSE, skip="rcu kmem slab")),
        R("WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value",
          "WARNING: kernel stack regs has bad '{1}' value", no_stack_trace=True),
        R("WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value",
          "WARNING: kernel stack frame pointer has bad value", no_stack_trace=True),
        R("WARNING: bad unlock balance detected!", "WARNING: bad unlock balance in {1}",
          stack=S("<PC> +<FUNC>", CALL_TRACE, PARSE)),
        R("WARNING: held lock freed!", "WARNING: held lock freed in {1}",
          report=r"WARNING: held lock freed!(?:.*\n)+?.*at:(?: <PC>)? +<FUNC>"),
        R("WARNING: kernel stack regs .* has bad 'bp' value",
          "WARNING: kernel stack regs has bad value", no_stack_trace=True),
        R("WARNING: kernel stack frame pointer .* has bad value",
          "WARNING: kernel stack regs has bad value", no_stack_trace=True),
        R(r"WARNING:\s*(?:\n|$)", "WARNING: corrupted", corrupted=True),
    ), suppress=(
        "WARNING: /etc/ssh/moduli does not exist, using fixed modulus",
        "WARNING: workqueue cpumask: online intersect > possible intersect",
        "WARNING: [Tt]he mand mount option",
        r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1",
        "WARNING: Unprivileged eBPF is enabled with eIBRS",
        "WARNING: fbcon: Driver '(.*)' missed to adjust virtual screen size",
        "WARNING: See https.* for mitigation options.",
        "WARNING: kernel not compiled with CPU_SRSO",
        r"EXT4-[Ff][Ss](?: \(.*\))?:",
        "(?i)warning: .* uses (deprecated v2 capabilities|wireless extensions)",
        r"XFS \(\w+\): WARNING",
    )),
    oops("INFO:", (
        R("INFO: possible circular locking dependency detected", "possible deadlock in {1}",
          report=(r"INFO: possible circular locking dependency detected \](?:.*\n)+?.*is trying"
                  r" to acquire lock(?:.*\n)+?.*at: <PC> +<FUNC>")),
        R("INFO: possible irq lock inversion dependency detected", "possible deadlock in {1}",
          report=(r"INFO: possible irq lock inversion dependency detected \](?:.*\n)+?.*just ch"
                  r"anged the state of lock(?:.*\n)+?.*at: <PC> +<FUNC>")),
        R("INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", "possible deadlock in {1}",
          report=(r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \](?:.*\n)+?.*is t"
                  r"rying to acquire(?:.*\n)+?.*at: <PC> +<FUNC>")),
        R("INFO: possible recursive locking detected", "possible deadlock in {1}",
          report=(r"INFO: possible recursive locking detected \](?:.*\n)+?.*is trying to acquir"
                  r"e lock(?:.*\n)+?.*at: <PC> +<FUNC>")),
        R("INFO: inconsistent lock state", "inconsistent lock state in {1}",
          report=(r"INFO: inconsistent lock state \](?:.*\n)+?.*takes(?:.*\n)+?.*at: <PC> +<FUN"
                  r"C>")),
        R("INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected(?: expedited)? stall",
          "INFO: rcu detected stall in {1}", alt="stall in {1}",
          stack=S("apic_timer_interrupt", RIP_FRAME, PARSE,
              parts2=("(?:apic_timer_interrupt|Exception stack|el1h_64_irq)", PARSE,),
              skip="apic_timer_interrupt rcu", extractor=stall_frame)),
        R("INFO: rcu_tasks detected stalls? on tasks", "INFO: rcu detected stall in {1}",
          alt="stall in {1}",
          stack=S("(?:apic_timer_interrupt|Exception stack|el1h_64_irq)", PARSE,
                  skip="apic_timer_interrupt rcu",
              extractor=stall_frame)),
        R("INFO: trying to register non-static key",
          "INFO: trying to register non-static key in {1}",
          stack=S(CALL_TRACE, PARSE, skip="stack lock IRQ")),
        R("INFO: suspicious RCU usage", "INFO: suspicious RCU usage in {2}",
          report=r"INFO: suspicious RCU usage(?:.*\n)+?.*?<SRC>",
          stack=S(CALL_TRACE, PARSE, skip="rcu kmem slab")),
        R(r"INFO: task .*(?:\n.*)?blocked (?:.* )?for more than [0-9]+ seconds",
          "INFO: task hung in {1}", alt="hang in {1}",
          stack=S(CALL_TRACE, PARSE, extractor=hung_task_frame)),
        R("INFO: task .* can't die for more than .* seconds", "INFO: task can't die in {1}",
          alt="hang in {1}", stack=S(CALL_TRACE, PARSE, skip="schedule")),
        R("INFO: (Freed|Allocated) in (.*)", "INFO: {1} in {2}", corrupted=True),
        R(r"INFO:\s*(?:\n|$)", "INFO: corrupted", corrupted=True),
    ), suppress=(
        "INFO: lockdep is turned off",
        "INFO: Stall ended before state dump start",
        "INFO: NMI handler",
        "INFO: recovery required on readonly filesystem",
        "(handler|interrupt).*took too long",
        "INFO: sys_.* is not present in /proc/kallsyms",
        "INFO: no syscalls can create resource",
        "rmt_storage:INFO:",
        "_INFO:",
    )),
    oops("Unable to handle kernel", (
        R(("Unable to handle kernel (paging request|NULL pointer dereference|access to user me"
           "mory)"),
          "BUG: unable to handle kernel {1} in {2}", alt="bad-access in {2}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
        # s390 words a fault on a kernel address so.
        R("Unable to handle kernel pointer dereference in virtual kernel address space",
          "BUG: unable to handle kernel paging request in {1}", alt="bad-access in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
    )),
    oops("general protection fault", (
        R("general protection fault.*:", "general protection fault in {1}",
          alt="bad-access in {1}", stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
    ), suppress=(
        r"general protection fault .* error:\d+ in ",
    )),
    oops("stack segment: ", (
        R(r"stack\ segment:\ ", "stack segment fault in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
    )),
    oops("Kernel panic", (
        R("Kernel panic - not syncing: stack-protector:",
          "kernel panic: stack is corrupted in {1}",
          report=("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: "
                  "<FUNC>"),
          no_stack_trace=True),
        R("Kernel panic - not syncing: stack-protector:",
          "kernel panic: stack is corrupted in {1}",
          report=("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: "
                  "[a-f0-9]+"),
          stack=S(CALL_TRACE, PARSE, skip="stack_chk")),
        R("Kernel panic - not syncing: corrupted stack end",
          "kernel panic: corrupted stack end in {1}",
          report="Kernel panic - not syncing: corrupted stack end detected inside scheduler",
          alt="stack-overflow in {1}",
          stack=S(CALL_TRACE, PARSE, skip="schedule retint_kernel", extractor=stall_frame)),
        R("Kernel panic - not syncing: kernel stack overflow", "kernel stack overflow in {1}",
          alt="stack-overflow in {1}",
          stack=S(CALL_TRACE, PARSE, skip="bad_stack", extractor=stall_frame)),
        R("Kernel panic - not syncing: Attempted to kill init!",
          "kernel panic: Attempted to kill init!"),
        R("Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+",
          "kernel panic: Couldn't open N_TTY ldisc"),
        R("Kernel panic - not syncing: Fatal exception", "kernel panic: Fatal exception",
          corrupted=True),
        R("Kernel panic - not syncing: panic_on_warn set", "kernel panic: panic_on_warn set",
          corrupted=True),
        R("Kernel panic - not syncing: hung_task: blocked tasks",
          "kernel panic: hung_task: blocked tasks", corrupted=True),
        R("Kernel panic - not syncing: (.*)", "kernel panic: {1}"),
    )),
    oops("PANIC: double fault", (
        R(r"PANIC:\ double\ fault", "PANIC: double fault in {1}", stack=S(RIP_FRAME)),
    )),
    oops("Watchdog detected hard LOCKUP", (
        R("Watchdog detected hard LOCKUP", "BUG: hard lockup in {1}", alt="stall in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE, extractor=stall_frame)),
    )),
    oops("kernel BUG", (
        # Out-of-tree builds (make O=) print the source path relative to the
        # output directory, e.g. "kernel BUG at ../src/lib/list_debug.c:53!".
        R(r"kernel BUG at (?:\S*/)?mm/usercopy.c", "BUG: bad usercopy in {1}",
          stack=S(CALL_TRACE, PARSE, skip="usercopy __check")),
        R(r"kernel BUG at (?:\S*/)?lib/list_debug.c", "BUG: corrupted list in {1}",
          alt="bad-access in {1}",
          stack=S(CALL_TRACE, PARSE)),
        R("kernel BUG at (.*)", "kernel BUG in {2}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE, skip="^skb_")),
    )),
    oops("Kernel BUG", (
        R("Kernel BUG (.*)", "kernel BUG {1}"),
    )),
    oops("BUG kmalloc-", (
        R("BUG kmalloc-.*: Object already free", "BUG: Object already free"),
    )),
    oops("divide error:", (
        R(r"divide\ error:", "divide error in {1}", stack=S(RIP_FRAME)),
    )),
    oops("divide_error:", (
        R("divide_error:", "divide error in {1}", stack=S(RIP_FRAME)),
    )),
    oops("invalid opcode:", (
        R(r"invalid\ opcode:", "invalid opcode in {1}", stack=S(RIP_FRAME)),
    )),
    oops("UBSAN:", (
        R("UBSAN:", "UBSAN: undefined-behaviour in {1}", report="UBSAN: Undefined behaviour in",
          stack=S(CALL_TRACE, PARSE, skip="ubsan overflow")),
        R("UBSAN: array-index-out-of-bounds in", "UBSAN: array-index-out-of-bounds in {1}",
          alt="bad-access in {1}", stack=S(CALL_TRACE, PARSE, skip="ubsan overflow")),
        R("UBSAN:", "UBSAN: {1} in {2}", report="UBSAN: (.*?) in",
          stack=S(CALL_TRACE, PARSE, skip="ubsan overflow")),
    )),
    oops("Booting the kernel.", (
        R("^Booting the kernel", "unexpected kernel reboot", no_stack_trace=True),
    ), suppress=(
        "Parsing ELF|Decompressing Linux|Unknown parameter '",
    )),
    oops("unregister_netdevice: waiting for", (
        R("unregister_netdevice: waiting for (?:.*) to become free",
          "unregister_netdevice: waiting for DEV to become free", no_stack_trace=True),
    )),
    oops("VFS: Close: file count is 0", (
        R("VFS: Close: file count is 0", "VFS: Close: file count is zero (use-after-free)",
          no_stack_trace=True),
    )),
    oops("VFS: Busy inodes after unmount", (
        R("VFS: Busy inodes after unmount", "VFS: Busy inodes after unmount (use-after-free)",
          no_stack_trace=True),
    )),
    oops("Internal error:", (
        R(r"Internal\ error:", "Internal error in {1}", alt="bad-access in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
    )),
    oops("Unhandled fault:", (
        R(r"Unhandled\ fault:", "Unhandled fault in {1}", alt="bad-access in {1}",
          stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
    )),
    oops("Alignment trap:", (
        R(r"Alignment\ trap:", "Alignment trap in {1}", stack=S(RIP_FRAME, CALL_TRACE, PARSE)),
    )),
    oops("trusty: panic", (
        R("trusty: panic.* ASSERT FAILED", "trusty: ASSERT FAILED: {1}",
          report=r"trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)",
          no_stack_trace=True),
        R("trusty: panic.* ASSERT FAILED.*: *(.*)", "trusty: ASSERT FAILED: {1}", corrupted=True),
        R("trusty: panic", "trusty: panic: {1}", report=r"trusty: panic \(.*?\): (.+)",
          no_stack_trace=True),
    )),
    oops("SYZFAIL:", (
        R("SYZFAIL:(.*)", "SYZFAIL:{1}", no_stack_trace=True),
    )),
    oops("SYZFATAL:", (
        R("SYZFATAL:(.*)", "SYZFATAL:{1}", no_stack_trace=True),
    )),
    oops("panic:", (
        R("panic: Sentry detected .* stuck task", "panic: Sentry detected stuck tasks",
          no_stack_trace=True),
        R("panic:(.*)", "panic:{1}", no_stack_trace=True),
    ), suppress=(
        "_panic:",
        "xlog_status:",
        r"ddb\.onpanic:",
        "evtlog_status:",
    )),
)
# Only with report_oom=True: the OOM killer is load working as designed in most soaks.
OOM = (
    oops("invoked oom-killer:", (
        R("invoked oom-killer:", "OOM in {1}",
          stack=S(CALL_TRACE, PARSE,
                  skip="oom out_of_memory alloc pagefault page_fault reclaim charge")),
    ))
)
# fmt: on
