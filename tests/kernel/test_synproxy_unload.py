"""Unloading IPVS while a SYN flood hits a SYNPROXY VIP.

Lab as in test_synproxy.py.  A spoofed SYN flood runs non-stop against
the NAT SYNPROXY service; real clients keep sessions established through
it; other clients keep opening connections to a FULLNAT SYNPROXY service
whose real server never answers, so that at the unload there are
handshakes pending (held segments, SYN retries armed on the connection
timer).  The services are deleted (a scheduler in use keeps the modules),
the sessions are left to the unload, and every module of ours is removed
and loaded again while the flood goes on.

Afterwards the kernel log must be clean: no oops, WARN, BUG or slab leak
(ip_vs_synproxy.c WARNs itself when an unload finds handshake objects it
did not free), and SYNPROXY must work in a fresh lab.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest
from netaddr import IPAddress

from ipvsadm_py import Dest, LocalAddress, Service
from ipvsadm_py import Forward, Protocol
from tests import tiers
from tests.kernel.test_synproxy import (LADDRS, PORT, Lab, RawSender, flood_packets,
                                        make_topo)
from tools import netlab, whoami
from tools.guest_init import kernel_log_problems
from tools.kbuild import ROOT

pytestmark = [pytest.mark.kernel, pytest.mark.last]

SILENT_PORT = 81
SILENT_RS = "10.0.2.99"     # on the real servers' network, nobody there


def loaded() -> set[str]:
    return {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}


class Load:
    """The flood, the established clients and the pending handshakes."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.stop = threading.Event()
        self.sent = 0
        self.pending: list[socket.socket] = []
        self.flood = flood_packets(4, lab.vip, PORT, "S", 3000)
        self.threads = [threading.Thread(target=self._flood, daemon=True),
                        threading.Thread(target=self._pending, daemon=True)]
        for thread in self.threads:
            thread.start()

    def _flood(self) -> None:
        sender = RawSender(self.lab.topo, self.lab.topo.client, 4)
        try:
            while not self.stop.is_set():
                for raw in self.flood:
                    try:
                        sender.sock.sendto(raw, (self.lab.vip, 0))
                    except OSError:
                        pass
                    self.sent += 1
                    if self.stop.is_set():
                        break
        finally:
            sender.close()

    def _pending(self) -> None:
        # The balancer completes these handshakes; the RS's never does.
        while not self.stop.wait(0.2):
            try:
                sock = self.lab.connect(SILENT_PORT, timeout=5)
                sock.sendall(b"held until the RS answers\n")
                self.pending.append(sock)
            except OSError:
                pass            # after the unload nothing answers

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
        for sock in self.pending:
            sock.close()


def pending_handshakes(lab: Lab) -> int:
    return sum(1 for c in lab.conns()
               if len(c.split()) > 4 and c.split()[4] == f"{SILENT_PORT:04X}")


def test_unload_during_syn_flood(kver, kmsg_mark):
    ours = [ko.stem for ko in (ROOT / "build" / kver / "modules").glob("*.ko")]
    topo = make_topo()
    load = None
    established: list[socket.socket] = []
    try:
        lab = Lab(topo, 4, "nat")
        try:
            lab.sysctl(synproxy_syn_retry=6)
            silent = Service(protocol=Protocol.TCP, addr=IPAddress(lab.vip),
                             port=SILENT_PORT, af=lab.af, scheduler="rr",
                             synproxy=True, netmask=0xFFFFFFFF)
            lab.ipvs.add_service(silent)
            for laddr in LADDRS[4]:
                lab.ipvs.add_laddr(silent, LocalAddress(addr=IPAddress(laddr)))
            lab.ipvs.add_dest(silent, Dest(addr=IPAddress(SILENT_RS), port=SILENT_PORT,
                                           af=lab.af, forward=Forward.FULLNAT))
            before = lab.stats()
            load = Load(lab)
            for _ in range(10):
                sock = lab.connect()
                assert whoami.whoami_tcp(sock)[0] in ("rs1", "rs2")
                established.append(sock)
            netlab.wait_for(lambda: pending_handshakes(lab) > 0
                            and lab.stats()["synproxy_syn_retry"]
                            > before["synproxy_syn_retry"], timeout=30)
            # The flood reaches SYNPROXY in thousands before the unload; a
            # few hundred in the sanitizer tier (the debug guest's flood had
            # made 684 when Debian's guests pass 3000).
            floods = tiers.reduced(3000, 500)
            netlab.wait_for(lambda: lab.stats()["synproxy_syn_cnt"]
                            - before["synproxy_syn_cnt"] > floods, timeout=300)
            # Services go (their schedulers hold the modules); the sessions,
            # established and pending, stay for the unload to clean up.
            lab.ipvs.flush()
            lab.ipvs.close()
            assert pending_handshakes(lab) > 0
            sent_before = load.sent
            helpers = [m for m in ours if m != "ip_vs"]
            subprocess.run(["timeout", "300", "modprobe", "-r", *helpers], check=True)
            subprocess.run(["timeout", "300", "modprobe", "-r", "ip_vs"], check=True)
            assert not loaded() & set(ours)
            assert load.sent > sent_before     # the flood went on meanwhile
            subprocess.run(["modprobe", "-a", *ours], check=True)
            assert set(ours) <= loaded()
            sent_reloaded = load.sent
            netlab.wait_for(lambda: load.sent > sent_reloaded, timeout=30)
        finally:
            if load:
                load.finish()
            for sock in established:
                sock.close()
            for server in lab.servers:
                server.close()
            # Its netlink socket would keep the namespace, and with it the
            # services and their schedulers' modules, alive for as long as
            # a failure's traceback holds the lab (the unload test after
            # this one then finds ip_vs_rr in use).
            lab.ipvs.close()
    finally:
        topo.down()

    # A fresh lab on the reloaded modules: SYNPROXY works.
    topo = make_topo()
    try:
        lab = Lab(topo, 4, "nat")
        try:
            before = lab.stats()
            for _ in range(5):
                with lab.connect() as sock:
                    assert whoami.whoami_tcp(sock)[0] in ("rs1", "rs2")
            assert lab.stats()["synproxy_ok_ack"] - before.get("synproxy_ok_ack", 0) == 5
        finally:
            lab.close()
    finally:
        topo.down()

    log = kmsg_mark()
    assert "ipvs unloaded" in log and "FNAT-capable" in log
    assert kernel_log_problems(log) == []
