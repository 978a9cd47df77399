"""The real-server installer's BPF mode, run for real inside the guest:
``install --mode ebpf|auto``, ``status``, ``stats``, ``selftest``, the
boot unit's commands, ``uninstall``, and the refusals between the two
variants.

The guest shares the host's files; what the installer writes goes to
mounts that vanish afterwards: ``/etc/systemd/system``, ``/etc/lvs-toa``
and ``/usr/local/lib/lvs-toa`` are empty tmpfs.  toa.ko (which the guest
loads) is unloaded meanwhile, as an operator would before switching.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from lvs_tools import toa_bpf, toa_bpf_steps as steps
from lvs_tools.toa_facts import check_tools
from tests.kernel.test_toa_bpf import ours, skip_without_bpf_loop
from tools.kbuild import ROOT

pytestmark = pytest.mark.kernel
TRUSTED = "198.51.100.0/24,2001:db8:6::/64"      # the self-test's balancer is inside
WRITES = ("/etc/systemd/system", "/etc/lvs-toa", "/usr/local/lib/lvs-toa")


def installer(*args: str) -> subprocess.CompletedProcess[str]:
    """The command a real server runs, from the project's folder."""
    return subprocess.run([sys.executable, "-m", "lvs_tools.toa_installer", *args],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT / "tools")),
                          capture_output=True, text=True, timeout=900)


@pytest.fixture
def rs_system() -> Iterator[None]:
    """Writable, throwaway places for what install writes; toa.ko unloaded."""
    had_module = os.path.exists("/sys/module/toa")
    if had_module:
        subprocess.run(["rmmod", "toa"], check=True)
    mounted = []
    try:
        for path in WRITES:
            os.makedirs(path, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "lvs-toa-test", path], check=True)
            mounted.append(path)
        yield
    finally:
        installer("uninstall")
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", path], check=False)
        if had_module:
            subprocess.run(["modprobe", "toa"], check=True)


@pytest.fixture
def fake_lockdown(tmp_path) -> Iterator[None]:
    """The kernel's lockdown file as one booted with lockdown=integrity
    shows it, bound over the real one (which cannot be lowered again)."""
    if not os.path.ismount("/sys/kernel/security"):
        subprocess.run(["mount", "-t", "securityfs", "securityfs", "/sys/kernel/security"],
                       check=True)
    if not Path("/sys/kernel/security/lockdown").exists():
        pytest.skip("this kernel has no lockdown LSM file")
    shown = tmp_path / "lockdown"
    shown.write_text("none [integrity] confidentiality\n")
    subprocess.run(["mount", "--bind", str(shown), "/sys/kernel/security/lockdown"],
                   check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "/sys/kernel/security/lockdown"], check=False)


def test_check_names_what_is_missing(kver):
    """On every line: a loaded toa.ko, a directory outside the cgroup v2
    hierarchy and, on a kernel without bpf_loop() (5.10), the helper."""
    loaded = os.path.exists("/sys/module/toa")
    res = installer("check", "--mode", "ebpf", "--cgroup", "/tmp")
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "problem: --cgroup /tmp: not a cgroup of the v2 hierarchy" in out, out
    assert ("problem: toa.ko is loaded: the module and the BPF variant are never active "
            "together" in out) == loaded, out
    lacks = "problem: the kernel lacks helper bpf_loop() for sock_ops programs"
    assert (lacks in out) != toa_bpf.has_bpf_loop(), out
    assert "ready to install" not in out


@pytest.mark.timeout(1800)
def test_install_status_stats_reboot_uninstall(rs_system, kmsg_mark):
    skip_without_bpf_loop()
    cgroup = steps.cgroup2_root()
    res = installer("install", "--mode", "ebpf", "--trusted", TRUSTED)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    # Five checks with the balancer inside the trusted prefixes, one from outside.
    assert "self-test passed" in out and out.count("PASS ") == 6, out
    assert f"attached to {cgroup}" in out and f"TOA believed from {TRUSTED}" in out, out
    assert toa_bpf.PIN_DIR.is_dir()
    assert Path("/", steps.OBJECT_FILE).is_file()
    unit = Path("/", steps.UNIT_FILE)
    execs = steps.unit_commands(unit.read_text())
    assert json.loads(Path("/", steps.STATE_FILE).read_text()) == {
        "cgroup": str(cgroup), "trusted": TRUSTED.split(","), "object": f"/{steps.OBJECT_FILE}"}
    assert toa_bpf.attached(cgroup) == ["getpeername4", "getpeername6", "sock_ops"]

    res = installer("status")
    assert res.returncode == 0, res.stdout + res.stderr
    # (the guest has the build's toa.ko in /lib/modules: the module's lines show)
    for expected in ("loaded       no",
                     f"attached     getpeername4, getpeername6, sock_ops on {cgroup}",
                     f"at boot      yes, /{steps.UNIT_FILE}", f"trusted      {TRUSTED}"):
        assert expected in res.stdout, res.stdout
    res = installer("stats")
    assert res.returncode == 0, res.stderr
    counters = {k: int(v) for k, v in (line.split() for line in res.stdout.splitlines())}
    assert set(counters) == set(toa_bpf.STATS)
    # the maps are new: the self-test's three TOA handshakes (IPv4, IPv6,
    # IPv4 on a dual-stack socket), its data segment, its untrusted peer
    assert (counters["syn_recv_sock_toa"], counters["data_seg_toa"],
            counters["opt_untrusted"]) == (3, 1, 1), counters

    # The module waits while the BPF variant is there.
    res = installer("install", "--mode", "module", "--no-selftest")
    assert res.returncode == 1 and "the BPF variant is installed" in res.stderr, res.stderr

    # A reboot: bpffs comes back empty (the unit's cleanup after a stop takes
    # the programs away), and the unit's start, its cleanup first, in order,
    # brings TOA back.
    for argv in execs["ExecStopPost"]:
        subprocess.run(argv, capture_output=True, check=False)
    assert not toa_bpf.PIN_DIR.exists() and toa_bpf.attached(cgroup) == []
    for argv in execs["ExecStartPre"]:
        subprocess.run(argv, capture_output=True, check=False)
    for argv in execs["ExecStart"]:
        subprocess.run(argv, check=True, capture_output=True)
    res = installer("selftest")
    assert res.returncode == 0 and res.stdout.count("PASS ") == 6, res.stdout + res.stderr

    res = installer("uninstall")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert f"detached and unpinned the BPF programs ({toa_bpf.PIN_DIR})" in out
    assert f"removed /{steps.UNIT_FILE}" in out
    assert not toa_bpf.PIN_DIR.exists() and not unit.exists()
    assert not Path("/", steps.OBJECT_FILE).exists()
    assert not Path("/", steps.STATE_FILE).exists()
    assert toa_bpf.attached(cgroup) == []
    for _ in range(100):         # programs are freed once nothing holds them (RCU)
        if not ours():
            break
        time.sleep(0.1)
    assert ours() == []
    res = installer("status")
    assert res.returncode == 1 and "attached" not in res.stdout, res.stdout
    res = installer("stats")
    assert res.returncode == 1 and "no TOA is active here" in res.stderr
    assert installer("uninstall").stdout.strip() == "nothing to remove"
    assert "BUG" not in kmsg_mark() and "WARNING" not in kmsg_mark()


@pytest.mark.timeout(1800)
def test_auto_picks_ebpf_under_lockdown(rs_system, fake_lockdown):
    skip_without_bpf_loop()
    res = installer("check", "--mode", "auto")
    out = res.stdout + res.stderr
    assert "mode auto: ebpf (this kernel refuses unsigned modules (kernel lockdown is "\
        "'integrity'))" in out, out
    assert res.returncode == 0 and "ready to install the BPF variant" in out, out
    res = installer("install", "--mode", "auto")
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "mode auto: ebpf" in out, out
    assert "self-test passed" in out and out.count("PASS ") == 5, out
    assert installer("uninstall").returncode == 0


def test_auto_without_lockdown(kver):
    """Without lockdown: the module where its headers and build tools are
    here, else the BPF variant, saying why."""
    res = installer("check", "--mode", "auto")
    out = res.stdout + res.stderr
    headers = Path(f"/lib/modules/{kver}/build/Makefile").exists()
    if headers and not check_tools():
        assert "mode auto: module (the kernel loads unsigned modules" in out, out
    elif not headers:
        assert f"mode auto: ebpf (the headers of {kver} are not installed)" in out, out
    else:
        assert "mode auto: ebpf (toa.ko cannot be built here: " in out, out


@pytest.mark.timeout(1800)
def test_a_failed_install_leaves_nothing_and_a_second_replaces_the_first(rs_system, tmp_path):
    """An object the kernel refuses: the install says so and nothing of it
    stays. Two installs in a row: one set of programs attached, not two
    (multi mode would keep both)."""
    skip_without_bpf_loop()
    cgroup = steps.cgroup2_root()
    bad = tmp_path / "bad.bpf.o"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    res = installer("install", "--mode", "ebpf", "--object", str(bad), "--no-selftest")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "nothing of the BPF variant is left installed" in res.stderr, res.stderr
    for path in (toa_bpf.PIN_DIR, Path("/", steps.OBJECT_FILE), Path("/", steps.UNIT_FILE),
                 Path("/", steps.STATE_FILE)):
        assert not path.exists(), path
    for _ in range(2):
        res = installer("install", "--mode", "ebpf", "--no-selftest")
        assert res.returncode == 0, res.stdout + res.stderr
    assert "removed the previous BPF programs" in res.stdout
    shown = json.loads(subprocess.run(["bpftool", "-j", "cgroup", "show", str(cgroup)],
                                      capture_output=True, text=True, check=True).stdout)
    assert sorted(p["name"] for p in shown if p.get("name", "").startswith("toa_")) == \
        ["toa_getpeername4", "toa_getpeername6", "toa_sockops"], shown
    assert installer("uninstall").returncode == 0
    for _ in range(100):
        if not ours():
            break
        time.sleep(0.1)
    assert ours() == []
