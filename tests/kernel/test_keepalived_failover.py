"""VRRP fail-over of a FULLNAT balancer pair: the VIP and the local addresses
move together.

::

    client --- router ===== front (VRRP, VIP 10.0.4.100) ===== lb1 (MASTER)
                  |                                             lb2 (BACKUP)
                  +======== back (real servers, local addresses 10.0.2.201-202) ====
                                                                rs1 rs2 (no routes
                                                                but their subnet)

Both balancers run our keepalived with the same FULLNAT virtual server and one
VRRP instance whose addresses are the VIP (front) and the local addresses
(back).  Then the master's keepalived is killed (SIGKILL: its kernel state
stays), or separately its front link is cut at the router.  The backup must
own the VIP and the local addresses and new connections must succeed through
it.  A prober opens a connection every 0.2 s all along; the longest time
between two successful probes is the time without service (measured and
recorded, not asserted).
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from ipvsadm_py import IPVS
from tools import whoami
from tools.keepalived_lab import Keepalived, record, services, wait_table
from tools.netlab import connect, wait_for
from tools.netlab_pair import LADDRS, VIP, PairTopology, rs_addr
from tests.kernel.keepalived_support import (explained, require_keepalived,  # noqa: F401
                                             servers, toa_on)
from tests.kernel.sync_support import echo_stream

pytestmark = pytest.mark.kernel

PORT = 80
KEY = f"tcp {VIP}:{PORT}"


def config(index: int, sync: bool = False) -> str:
    """lb``index``'s file; with ``sync``, keepalived runs IPVS's connection
    sync daemons on the back link (master on the VRRP master) and the
    service does SYNPROXY."""
    state, prio = ("MASTER", 150) if index == 1 else ("BACKUP", 100)
    rs = "".join(f"    real_server {rs_addr(i)} {PORT} {{\n        weight 1\n"
                 f"        TCP_CHECK {{\n            connect_timeout 2\n        }}\n    }}\n"
                 for i in (1, 2))
    laddr_vips = "".join(f"        {a}/32 dev eth1\n" for a in LADDRS)
    sync_defs = "    lvs_sync_daemon eth1 VI_1\n" if sync else ""
    synproxy = "    syn_proxy\n" if sync else ""
    return (f"global_defs {{\n    router_id lb{index}\n{sync_defs}}}\n"
            f"vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n"
            f"    virtual_router_id 51\n    priority {prio}\n    advert_int 1\n"
            f"    virtual_ipaddress {{\n        {VIP}/24 dev eth0\n{laddr_vips}    }}\n}}\n"
            f"virtual_server {VIP} {PORT} {{\n    delay_loop 2\n    lb_algo rr\n"
            f"    lb_kind FNAT\n    protocol TCP\n{synproxy}    local_address {{\n"
            + "".join(f"        {a}\n" for a in LADDRS) + f"    }}\n{rs}}}\n")


class Prober:
    """A new connection to the VIP every 0.2 s: (start, end, ok, server)."""

    def __init__(self, topo: PairTopology) -> None:
        self.topo = topo
        self.results: list[tuple[float, float, bool, str]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            start = time.monotonic()
            try:
                with connect(self.topo, self.topo.client, VIP, PORT, timeout=1) as sock:
                    name = whoami.whoami_tcp(sock)[0]
                self.results.append((start, time.monotonic(), True, name))
            except (OSError, ValueError):
                self.results.append((start, time.monotonic(), False, ""))
            self.stopping.wait(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(30)

    def outage(self, since: float) -> float:
        """Longest time between two successful probes around and after ``since``."""
        ends = [end for start, end, ok, _ in self.results if ok]
        before = [e for e in ends if e <= since]
        after = [e for e in ends if e > since]
        points = ([before[-1]] if before else [since]) + after
        return max((b - a for a, b in zip(points, points[1:])), default=float("inf"))

    def failures(self, since: float) -> int:
        return sum(1 for start, _, ok, _ in self.results if start >= since and not ok)

    def ok_after(self, when: float) -> int:
        return sum(1 for start, _, ok, _ in self.results if start >= when and ok)


def owns(topo: PairTopology, index: int) -> bool:
    return {VIP, *LADDRS} <= topo.addresses(topo.lb(index))


@contextlib.contextmanager
def keepalived_pair(tmp_path, sync: bool = False):
    """Our keepalived on both balancers (``config(i, sync)``), once lb1 owns
    the VIP and the local addresses and both have the table; a failure
    inside shows keepalived's logs; both stopped after."""
    require_keepalived()
    with PairTopology() as topo:
        servers(topo, 4, PORT, 2)
        lbs = {i: Keepalived(topo.lb(i), tmp_path, name=f"lb{i}") for i in (1, 2)}
        try:
            with explained(*lbs.values()):
                for i, ka in lbs.items():
                    ka.start(config(i, sync))
                wait_for(lambda: owns(topo, 1), timeout=90)
                for i in (1, 2):        # both balancers have the table; only lb1 the addresses
                    wait_table(topo.lb(i), lambda t: len(t.get(KEY, {}).get("dests", [])) == 2)
                assert not {VIP, *LADDRS} & topo.addresses(topo.lb(2))
                yield topo, lbs
        finally:
            for ka in lbs.values():
                ka.stop()


@pytest.mark.parametrize("event", ["kill", "cut"])
def test_backup_takes_over_vip_and_local_addresses(tmp_path, kver, toa_on, event):
    with keepalived_pair(tmp_path) as (topo, lbs):
        with connect(topo, topo.client, VIP, PORT) as sock:     # client seen via TOA
            assert whoami.whoami_tcp(sock)[1] == "10.0.1.2"

        prober = Prober(topo)
        wait_for(lambda: prober.ok_after(0) >= 3, timeout=60)
        t0 = time.monotonic()
        if event == "kill":
            lbs[1].kill()
        else:
            topo.cut(1)
        wait_for(lambda: owns(topo, 2), timeout=60)
        took_over = time.monotonic() - t0
        if event == "cut":
            wait_for(lambda: not ({VIP, *LADDRS} & topo.addresses(topo.lb(1))), timeout=60)
        settled = time.monotonic()
        wait_for(lambda: prober.ok_after(settled) >= 5, timeout=90)
        prober.stop()
        # IPVS folds its per-CPU counters into what it reports every
        # 2 s: the last probes may not be counted yet
        try:
            wait_for(lambda: services(topo.lb(2))[KEY]["stats"]["conns"] >= 5,
                     timeout=30)
        except TimeoutError:
            conns = services(topo.lb(2))[KEY]["stats"]["conns"]
            raise AssertionError(f"the probes after the fail-over did not pass lb2: "
                                 f"{conns} connections counted there") from None
        assert prober.failures(settled) == 0, prober.results[-20:]
        with connect(topo, topo.client, VIP, PORT) as sock:
            assert whoami.whoami_tcp(sock)[1] == "10.0.1.2"
        record(kver, f"failover {event}", {
            "backup_owns_vip_and_laddrs_after_s": round(took_over, 2),
            "time_without_service_s": round(prober.outage(t0), 2),
            "failed_probes": prober.failures(t0),
            "probe_interval_s": 0.2, "advert_int_s": 1})


def test_stream_survives_fail_over_with_lvs_sync_daemon(tmp_path, kver, toa_on):
    """keepalived's ``lvs_sync_daemon`` drives our sync unchanged: a TCP
    stream through the FULLNAT+SYNPROXY VIP, synced to lb2, goes on through
    lb2 when lb1's front link is cut (VRRP moves the VIP and the local
    addresses): every byte echoed, no reset."""
    with keepalived_pair(tmp_path, sync=True) as (topo, _):
        wait_for(lambda: {d.state for d in daemons(topo, 1)} == {"master"} and
                 {d.state for d in daemons(topo, 2)} == {"backup"}, timeout=60)
        sock = connect(topo, topo.client, VIP, PORT)
        cport = sock.getsockname()[1]
        assert whoami.whoami_tcp(sock)[1] == "10.0.1.2"

        def fail_over() -> None:
            wait_for(lambda: f" {cport:04X} " in topo.sh(
                topo.lb(2), "cat /proc/net/ip_vs_conn").stdout, timeout=60,
                what="the session on lb2")
            topo.cut(1)
            wait_for(lambda: owns(topo, 2), timeout=60)

        with sock:
            echo_stream(sock, fail_over)
        # lb2 is the master now, its daemon too
        wait_for(lambda: "master" in {d.state for d in daemons(topo, 2)}, timeout=60)


def daemons(topo: PairTopology, index: int):
    """The sync daemons running in lb``index`` (ipvsadm-py's library)."""
    with topo.inside(topo.lb(index)):
        with IPVS() as ipvs:
            return ipvs.daemons()
