"""The BPF TOA in the guest, on each kernel line: the host test
(tests/host/test_toa_bpf.py) run against the booted kernel, with toa.ko
unloaded meanwhile (the two variants are never active together).  bpffs
is mounted first where the guest has none."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.host import test_toa_bpf as on_host

pytestmark = [pytest.mark.kernel, *on_host.pytestmark]


@pytest.fixture(scope="module")
def bpf(tmp_path_factory):
    """The programs loaded, and toa.ko out of the way meanwhile (the guest
    loads it; it would answer getpeername() itself, from any peer)."""
    if not re.search(r" [tT] bpf_loop$", Path("/proc/kallsyms").read_text(), re.M):
        pytest.skip("this kernel has no bpf_loop() (5.17 or later): the BPF TOA needs it")
    if not os.path.ismount("/sys/fs/bpf"):
        subprocess.run(["mount", "-t", "bpf", "bpf", "/sys/fs/bpf"], check=True)
    had_module = os.path.exists("/sys/module/toa")
    if had_module:
        subprocess.run(["rmmod", "toa"], check=True)
    try:
        yield from on_host.bpf.__wrapped__(tmp_path_factory)
    finally:
        if had_module:
            subprocess.run(["modprobe", "toa"], check=True)


def test_the_client_is_named_and_malformed_options_are_not(bpf):
    on_host.test_the_client_is_named_and_malformed_options_are_not(bpf)


def test_toa_only_from_trusted_peers(bpf):
    on_host.test_toa_only_from_trusted_peers(bpf)
