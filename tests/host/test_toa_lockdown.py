"""A real server that cannot load modules: a guest of the host's primary
kernel booted with ``lockdown=integrity`` (its own boot, not the suite's
guest: lockdown cannot be lowered once raised, and the suite loads
modules).  Inside it, an unsigned toa.ko is refused, and the installer's
``install --mode auto`` picks the BPF variant, whose self-test passes;
``uninstall`` removes it."""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests import guest_plugin
from tools import guest, kbuild, lines

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="boots a guest: needs root"),
    pytest.mark.skipif(guest.vng_binary() is None, reason="virtme-ng (vng) is not installed"),
]

DONE = "lvs-lockdown-check: all passed"

# Runs in the guest, from the checkout's root.
CHECK = textwrap.dedent('''
    import os, subprocess, sys
    kver, ko = sys.argv[1], sys.argv[2]
    env = dict(os.environ, PYTHONPATH="tools")

    def run(*argv):
        res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
        print(f"$ {' '.join(argv)} -> {res.returncode}\\n{res.stdout}{res.stderr}", flush=True)
        return res

    lockdown = open("/sys/kernel/security/lockdown").read()
    assert "[integrity]" in lockdown, lockdown
    # the kernel really refuses an unsigned module
    assert run("insmod", ko).returncode != 0
    assert not os.path.exists("/sys/module/toa")
    installer = [sys.executable, "-m", "lvs_tools.toa_installer"]
    res = run(*installer, "install", "--mode", "auto")
    out = res.stdout + res.stderr
    assert res.returncode == 0
    assert ("mode auto: ebpf (this kernel refuses unsigned modules (kernel lockdown is "
            "'integrity'))") in out
    assert "self-test passed" in out and out.count("PASS ") == 5
    res = run(*installer, "status")
    assert res.returncode == 0 and "sock_ops" in res.stdout
    assert "toa.ko       not installed" in res.stdout
    assert run(*installer, "uninstall").returncode == 0
    assert not os.path.exists("/sys/fs/bpf/lvs-toa")
    print("%s", flush=True)
''' % DONE)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The run's kernel of the host's primary line, if it targets one."""
    if "lockdown_kver" in metafunc.fixturenames:
        targets = guest_plugin.kernel_targets(metafunc.config)
        metafunc.parametrize("lockdown_kver", [
            k for k in kbuild.installed_kernels()
            if k in targets and kbuild.kernel_line(k) == lines.PRIMARY_HOST_LINE])


@pytest.mark.timeout(1800)
def test_auto_picks_the_bpf_variant_under_lockdown(lockdown_kver):
    kver = lockdown_kver
    ko = kbuild.ROOT / "build" / kver / "modules" / "toa.ko"
    if not ko.exists():
        pytest.skip(f"no toa.ko built for {kver}: ./inv build --kver {kver}")
    with tempfile.TemporaryDirectory(dir=kbuild.ROOT / "build") as tmp:
        script = Path(tmp) / "lockdown_check.py"
        script.write_text(CHECK)
        console = Path(tmp) / "console.log"
        cfg = guest.GuestConfig(kver, append=["lockdown=integrity"], timeout=1500)
        rc = guest.run(cfg, f"{sys.executable} {script} {kver} {ko}", load="none",
                       console=console, quiet=True)
        text = console.read_text(errors="replace")
    assert rc == 0 and DONE in text, text[-6000:]
