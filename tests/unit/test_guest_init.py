"""Kernel log screening and module selection of tools/guest_init.py."""

from __future__ import annotations

from tools import guest_init

CLEAN = """\
[   14.7] IPVS: ipvs loaded (FNAT-capable, lvs-toolkit 0.1.0).
[   14.8] ip_vs: loading out-of-tree module taints kernel.
[   14.8] ip_vs: module verification failed: signature and/or required key missing - tainting kernel
[   20.1] IPVS: [rr] scheduler registered.
"""


def test_a_clean_log_has_no_problems():
    assert guest_init.kernel_log_problems(CLEAN) == []


def test_oops_warn_bug_and_leaks_are_found():
    bad = CLEAN + "\n".join([
        "[ 30.1] WARNING: CPU: 1 PID: 77 at net/netfilter/ipvs/ip_vs_conn.c:100 x+0x1/0x2",
        "[ 30.2] BUG: KASAN: use-after-free in ip_vs_conn_expire",
        "[ 30.3] BUG ip_vs_conn (Tainted: G OE): Objects remaining in ip_vs_conn on __kmem_cache_shutdown()",
        "[ 30.4] general protection fault, probably for non-canonical address",
        "[ 30.5] unregister_netdevice: waiting for lo to become free. Usage count = 2",
    ])
    assert len(guest_init.kernel_log_problems(bad)) == 5


def test_sanitizer_reports_are_problems():
    """What KASAN, lockdep, PROVE_RCU, DEBUG_ATOMIC_SLEEP, DEBUG_PREEMPT,
    DEBUG_OBJECTS, DEBUG_LIST and the stall detectors of the debug kernel
    print first (one line each, as the kernel words them)."""
    reports = [
        "[ 1.0] BUG: KASAN: slab-use-after-free in ip_vs_conn_expire+0x3c/0x2a0 [ip_vs]",
        "[ 1.1] WARNING: possible circular locking dependency detected",
        "[ 1.2] WARNING: inconsistent lock state",
        "[ 1.3] INFO: trying to register non-static key.",
        "[ 1.4] WARNING: suspicious RCU usage",
        "[ 1.5] BUG: sleeping function called from invalid context at mm/slub.c:4116",
        "[ 1.6] BUG: using smp_processor_id() in preemptible [00000000] code: python3/77",
        "[ 1.7] ODEBUG: free active (active state 0) object: 0000 object type: timer_list",
        "[ 1.8] list_add double add: new=ffff8880, prev=ffff8880, next=ffff8880.",
        "[ 1.9] rcu: INFO: rcu_preempt self-detected stall on CPU",
        "[ 2.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
        "[ 2.1] Kernel panic - not syncing: KASAN: panic_on_warn set ...",
    ]
    found = guest_init.kernel_log_problems(CLEAN + "\n".join(reports))
    assert found == reports


def test_sanitizer_boot_lines_are_not_problems():
    boot = """\
[ 0.0] kasan: KernelAddressSanitizer initialized (generic)
[ 0.1] kmemleak: Kernel memory leak detector initialized (mem pool available: 15710)
[ 0.2] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar
[ 0.3] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)
"""
    # kmemleak's count may be the base kernel's own: the objects decide
    assert guest_init.kernel_log_problems(boot) == []


def test_modules_to_load(tmp_path):
    (tmp_path / "updates/lvs-toolkit").mkdir(parents=True)
    for name in ("ip_vs", "ip_vs_rr", "toa"):
        (tmp_path / "updates/lvs-toolkit" / f"{name}.ko").write_text("")
    assert guest_init.modules_to_load(tmp_path, "all") == ["ip_vs", "ip_vs_rr", "toa"]
    assert guest_init.modules_to_load(tmp_path, "none") == []
    assert guest_init.modules_to_load(tmp_path, "ip_vs, toa") == ["ip_vs", "toa"]


def _console(crash_at: int | None, length: int = 300) -> str:
    lines = [f"[ {n}.0] line {n}" for n in range(length)]
    lines[10] = "[ 10.0] lvs-test: start tests/kernel/test_a.py::test_one[6.1]"
    lines[20] = "[ 20.0] lvs-test: start tests/kernel/test_b.py::test_two[6.1]"
    if crash_at is not None:
        lines[crash_at] = "[ 99.0] BUG: kernel NULL pointer dereference, address: 0"
    return "\n".join(lines)


def test_console_excerpt_shows_the_test_the_crash_and_the_end():
    shown = guest_init.console_excerpt(_console(crash_at=100), tail=40, report=30).splitlines()
    assert shown[0].endswith("test_b.py::test_two[6.1]")
    assert shown[1] == "[first kernel problem]"
    assert shown[2] == "[ 95.0] line 95" and "BUG: kernel NULL" in shown[7]
    assert shown[31] == "[ 124.0] line 124"
    assert shown[32] == "[end of the console]"
    assert shown[33:] == [f"[ {n}.0] line {n}" for n in range(260, 300)]


def test_console_excerpt_without_a_crash_is_the_last_test_and_the_tail():
    shown = guest_init.console_excerpt(_console(crash_at=None), tail=40).splitlines()
    assert shown[0].endswith("test_two[6.1]") and shown[1] == "[end of the console]"
    assert len(shown) == 42 and shown[-1] == "[ 299.0] line 299"


def test_console_excerpt_of_a_crash_near_the_end_is_not_repeated():
    shown = guest_init.console_excerpt(_console(crash_at=290), tail=40).splitlines()
    assert "[first kernel problem]" not in shown
    assert sum("BUG: kernel NULL" in line for line in shown) == 1
    assert guest_init.console_excerpt("") == ""


KMEMLEAK_REPORT = """\
unreferenced object 0xffff888005b1c000 (size 2048):
  comm "swapper/0", pid 1, jiffies 4294892419
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 0):
    kmemleak_alloc+0x4a/0x80
    __kmalloc_noprof+0x2a3/0x4c0
    acpi_os_allocate_zeroed+0x2c/0x40
unreferenced object 0xffff88800a3e2e00 (size 96):
  comm "python3", pid 411, jiffies 4294923101
  hex dump (first 32 bytes):
    01 00 00 00 0a 63 02 01 00 00 00 00 00 00 00 00  .....c..........
  backtrace (crc 8d6b3f21):
    kmemleak_alloc+0x4a/0x80
    __kmalloc_cache_noprof+0x21a/0x3d0
    ip_vs_laddr_add+0x8e/0x3a0 [ip_vs]
    ip_vs_genl_set_cmd+0x61c/0xa10 [ip_vs]
unreferenced object 0xffff88800a3e2f00 (size 64):
  comm "modprobe", pid 530, jiffies 4294925000
  backtrace (crc 1):
    kmemleak_alloc+0x4a/0x80
    0xffffffffc0a1f3b2
    do_init_module+0x1f2/0x6e0
"""


def test_kmemleak_records_split_and_ours_are_picked():
    records = guest_init.kmemleak_records(KMEMLEAK_REPORT)
    assert [r.splitlines()[0].split()[2] for r in records] == [
        "0xffff888005b1c000", "0xffff88800a3e2e00", "0xffff88800a3e2f00"]
    # the base kernel's own (ACPI at boot) is not ours; our module's frame,
    # or code of a module unloaded since, is
    assert [guest_init.leak_is_ours(r) for r in records] == [False, True, True]
    assert guest_init.kmemleak_records("") == []


def test_kmemleak_scan_writes_scan_twice_then_reads(tmp_path):
    fake = tmp_path / "kmemleak"
    fake.write_text(KMEMLEAK_REPORT)
    writes = []

    class Recorder(type(fake)):
        def write_text(self, text, *a, **k):
            writes.append(text)
            return len(text)

    assert guest_init.kmemleak_scan(Recorder(fake)) == KMEMLEAK_REPORT
    assert writes == ["scan", "scan"]
