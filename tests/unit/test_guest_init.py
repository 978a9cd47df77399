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
