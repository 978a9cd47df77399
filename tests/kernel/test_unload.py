"""Unloading our modules after real traffic leaves a clean kernel."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tools import netlab, whoami
from tools.netlab import Topology
from tools.guest_init import kernel_log_problems
from tools.kbuild import ROOT

pytestmark = [pytest.mark.kernel, pytest.mark.last]


def loaded() -> set[str]:
    return {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}


def test_rmmod_after_traffic(kver, kmsg_mark):
    ours = [ko.stem for ko in (ROOT / "build" / kver / "modules").glob("*.ko")]
    with Topology(n_rs=1) as topo:
        server = whoami.TcpWhoami(whoami.listen(topo.inside, "rs1", 4,
                                                  socket.SOCK_STREAM, 80), "rs1")
        try:
            topo.ipvsadm(f"-A -t {netlab.VIP4}:80 -s wlc")
            topo.ipvsadm(f"-a -t {netlab.VIP4}:80 -r {netlab.rs_addr(1)}:80 -m")
            for _ in range(20):
                with netlab.connect(topo, topo.client, netlab.VIP4, 80) as sock:
                    assert whoami.whoami_tcp(sock)[0] == "rs1"
        finally:
            server.close()
    # The namespaces (and their IPVS state) are gone; unload everything.
    helpers = [m for m in ours if m != "ip_vs"]
    subprocess.run(["modprobe", "-r", *helpers], check=True)
    subprocess.run(["modprobe", "-r", "ip_vs"], check=True)
    assert not loaded() & set(ours)
    # Back again for whatever runs next, and a clean log in between.
    subprocess.run(["modprobe", "-a", *ours], check=True)
    assert set(ours) <= loaded()
    log = kmsg_mark()
    assert "ipvs unloaded" in log and "FNAT-capable" in log
    assert kernel_log_problems(log) == []
