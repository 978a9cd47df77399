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
