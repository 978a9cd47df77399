"""The test guests' multi-queue NIC (tools/guest_nic.py) and how QEMU options
reach virtme-ng, and what reaches the kernel command line (tools/guest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tools import guest, guest_nic, kbuild


def test_qemu_args_describe_a_multiqueue_virtio_nic_on_a_tap():
    args = guest_nic.qemu_args("lvsmq42", queues=4)
    assert args[0] == "-netdev" and args[2] == "-device"
    netdev = dict(kv.partition("=")[::2] for kv in args[1].split(",")[1:])
    assert args[1].startswith("tap,")
    assert netdev == {"id": "lvsmq", "ifname": "lvsmq42", "script": "no",
                      "downscript": "no", "vhost": "off", "queues": "4"}
    device = dict(kv.partition("=")[::2] for kv in args[3].split(",")[1:])
    assert args[3].startswith("virtio-net-pci,")
    assert device == {"netdev": "lvsmq", "mq": "on", "vectors": "10", "mac": guest_nic.MAC}


def test_tap_names_fit_ifnamsiz():
    assert guest_nic.tap_name(4194304) == "lvsmq4194304"
    assert len(guest_nic.tap_name(10**12)) <= 15


def test_qemu_options_reach_qemu_and_exec_survives():
    """vng must see each option as one --qemu-opt=VALUE: its --qemu-opts
    would swallow --exec, and a bare "-device" looks like an option."""
    kver = next(iter(kbuild.installed_kernels()), None)
    vng = guest.vng_binary()
    if kver is None or vng is None:
        pytest.skip("no installed kernel or no vng")
    cfg = guest.GuestConfig(kver, qemu_opts=guest_nic.qemu_args("lvsmqtest"))
    argv = guest.vng_command(cfg, "echo guest-command")
    cached = [f"--qemu-opt={part}" for opt in guest.CACHED_SHARE for part in opt.split("=", 1)]
    assert [a for a in argv if a.startswith("--qemu-opt")] == \
        ["--qemu-opt=-accel", "--qemu-opt=tcg,thread=single"] + cached + \
        [f"--qemu-opt={o}" for o in guest_nic.qemu_args("lvsmqtest")]
    argv.insert(argv.index("--exec"), "--dry-run")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    words = res.stdout.split()
    # the cached share of the root reaches QEMU with the tag the guest mounts
    assert f"mount_tag={guest.CACHED_TAG}" in words[words.index("-device", words.index(
        next(w for w in words if w.startswith(f"local,id={guest.CACHED_TAG},"))))
        + 1].split(",")
    netdev = words.index("-netdev")
    assert words[netdev + 1].startswith("tap,id=lvsmq,ifname=lvsmqtest,")
    assert words[netdev + 3].startswith("virtio-net-pci,netdev=lvsmq,mq=on")
    assert "virtme.exec=" in res.stdout
    # single-threaded TCG (tools/guest.py says why), and no other accelerator
    assert words[words.index("-accel") + 1] == "tcg,thread=single"
    assert "accel=kvm:tcg" not in res.stdout


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/dev/net/tun").exists(),
                    reason="needs root and /dev/net/tun")
def test_tap_is_created_down_and_removed():
    with guest_nic.multiqueue_nic() as opts, guest_nic.multiqueue_nic() as other:
        name = opts[1].split("ifname=")[1].split(",")[0]
        assert name.startswith(guest_nic.tap_name())
        assert f"ifname={name}," not in other[1]     # one tap per guest
        link = subprocess.run(["ip", "-d", "link", "show", name], capture_output=True,
                              text=True, check=True).stdout
        assert "multi_queue" in link and "state DOWN" in link and ",UP" not in link
        addrs = subprocess.run(["ip", "addr", "show", name], capture_output=True,
                               text=True, check=True).stdout
        assert "inet" not in addrs
    assert subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0


def test_the_guest_binds_the_python_trees_from_the_cached_share():
    script = guest.cached_python_mounts()
    assert f"cache=loose {guest.CACHED_TAG} {guest.CACHED_ROOT}" in script
    for tree in guest.PYTHON_TREES:
        if tree.is_dir():
            assert f"mount --bind {guest.CACHED_ROOT}{tree} {tree}" in script
    # a failed mount leaves the uncached trees and says so; the command goes on
    assert script.endswith("|| echo 'lvs-guest: Python trees stay uncached' >&2; }")


#: x86's COMMAND_LINE_SIZE: a longer kernel command line panics 6.12's
#: FORTIFY_SOURCE at boot (and is cut short by older kernels)
COMMAND_LINE_SIZE = 2048


def test_the_guest_command_stays_off_the_kernel_command_line(tmp_path):
    """A suite guest's command (the checkout's path a dozen times over, the
    cached mounts, pytest's arguments) went to the kernel command line in
    base64 and, from a checkout with a longer path, passed 2048 bytes: the
    6.12 guest panicked before init.  Only the script's path goes there."""
    kver = next(iter(kbuild.installed_kernels()), None)
    vng = guest.vng_binary()
    if kver is None or vng is None:
        pytest.skip("no installed kernel or no vng")
    command = f"{guest.cached_python_mounts()}; {sys.executable} -m pytest " + \
        " ".join(f"{guest.ROOT}/tests/kernel/test_{n}.py" for n in range(60))
    exec_ = guest.guest_script(tmp_path, command)
    assert (tmp_path / "guest-command.sh").read_text() == f"#!/bin/sh\n{command}\n"
    assert exec_ == f"sh {tmp_path / 'guest-command.sh'}"
    cfg = guest.GuestConfig(kver, rwdirs=[tmp_path])
    argv = guest.vng_command(cfg, exec_)
    argv.insert(argv.index("--exec"), "--dry-run")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    res = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    cmdline = res.stdout.split("-append '", 1)[1].split("'", 1)[0]
    assert "virtme.exec=" in cmdline
    # room left for a checkout path several times longer than any seen
    assert len(cmdline) < COMMAND_LINE_SIZE // 2, cmdline



@pytest.mark.parametrize("line", ["PANIC: early exception 0x06 IP 10:ffffffff886e2a5d",
                                  "[    3.1] Kernel panic - not syncing: Attempted to kill init!"])
def test_a_panicked_guest_is_ended_at_once(tmp_path, monkeypatch, line):
    """A kernel that panics early halts and QEMU waits: the guest used to
    run into its timeout (80 minutes in CI).  Its console ends it."""
    monkeypatch.setattr(guest, "PANIC_GRACE", 0.5)
    proc = subprocess.Popen(["sh", "-c", f"echo '{line}'; echo trace; exec sleep 600"],
                            stdout=subprocess.PIPE, start_new_session=True)
    panicked = threading.Event()
    log = (tmp_path / "console.log").open("w")
    pump = threading.Thread(target=guest._pump, args=(proc.stdout, log, True, panicked))
    pump.start()
    cfg = guest.GuestConfig("6.1.0-test", timeout=600)
    assert guest._wait(proc, cfg, time.monotonic(), panicked) == guest.PANIC_STATUS
    assert proc.poll() is not None
    pump.join(timeout=10)
    log.close()
    assert (tmp_path / "console.log").read_text() == f"{line}\ntrace\n"


def test_a_test_printing_the_words_is_not_a_panic():
    assert not guest.PANIC_LINE.match("tests/x.py: expected 'Kernel panic - not syncing'")
    assert guest.PANIC_LINE.match("[  12.345678] Kernel panic - not syncing: Fatal exception")


def test_a_guest_without_a_panic_keeps_its_status_and_its_timeout():
    panicked = threading.Event()
    ok = subprocess.Popen(["sh", "-c", "exit 3"], start_new_session=True)
    assert guest._wait(ok, guest.GuestConfig("6.1.0-test"), time.monotonic(), panicked) == 3
    slow = subprocess.Popen(["sleep", "600"], start_new_session=True)
    cfg = guest.GuestConfig("6.1.0-test", timeout=1.5)
    assert guest._wait(slow, cfg, time.monotonic(), panicked) == 124
    assert slow.poll() is not None
