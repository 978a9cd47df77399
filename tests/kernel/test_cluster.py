"""Three FULLNAT balancers side by side behind an ECMP router, each announcing
the VIP and its local-address prefix with BIRD (``lvs-cluster``), the router
running BIRD with ``merge paths on`` (tools/netlab_cluster.py has the drawing).

* 300 connections from varied source ports: all succeed, every balancer
  gets a share (the split is recorded), the real servers see the client
  (TOA);
* one balancer's real servers all go to weight 0: its ``lvs-cluster sync``
  withdraws the VIP, the router keeps the other two, connections succeed;
* a balancer is drained during a run of connections (one open at a time):
  none fails but, at most, the one open while the router changes its route
  (whose next packets go to a balancer without its session), nothing new
  reaches the drained balancer, and ``undrain`` brings it back;
* a configuration BIRD refuses changes nothing: the running BIRD keeps its
  sessions and routes.

Times (withdraw, drain) and the split are recorded, not asserted.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ipvsadm_py import IPVS
from lvs_tools.cluster.bird import Bird, BirdError
from tests.kernel.keepalived_support import toa_off, toa_on  # noqa: F401
from tools import keepalived_lab, netlab, whoami
from tools.keepalived_lab import RealServer
from tools.netlab_cluster import (CLIENT, LB_ASN, ROUTER_ASN, ROUTER_F, VIP, ClusterTopology,
                                  laddr_prefix, laddrs, lb_front, router_bird_conf, rs_addr)

pytestmark = pytest.mark.kernel

PORT = 80
N_LB, N_RS = 3, 4
HOLD = 3


def record(kver: str, name: str, values: dict) -> None:
    keepalived_lab.record(kver, name, values, file="cluster-measures.json")


def config_yaml(index: int) -> str:
    """Balancer ``index``'s file: the service with its own local addresses,
    and the cluster (every balancer)."""
    dests = "".join(f"      - {{address: {rs_addr(r)}, forward: fullnat}}\n"
                    for r in range(1, N_RS + 1))
    bals = "".join(f"    - name: lb{i}\n      router_id: {lb_front(i)}\n      asn: {LB_ASN}\n"
                   f"      local_addresses: [{laddr_prefix(i)}]\n      vips: [{VIP}]\n"
                   f"      peers:\n        - {{address: {ROUTER_F}, asn: {ROUTER_ASN}}}\n"
                   for i in range(1, N_LB + 1))
    return (f"services:\n  - protocol: tcp\n    address: {VIP}\n    port: {PORT}\n"
            f"    scheduler: rr\n    laddrs: [{', '.join(laddrs(index))}]\n    dests:\n{dests}"
            f"cluster:\n  hold_time: {HOLD}\n  balancers:\n{bals}")


@dataclasses.dataclass
class Lab:
    topo: ClusterTopology
    tmp: Path
    servers: list[RealServer]
    watchers: dict[int, subprocess.Popen] = dataclasses.field(default_factory=dict)
    converged: float = 0.0       # seconds from the last BIRD's start to the 3-way route

    def yaml(self, i: int) -> Path:
        return self.tmp / f"lb{i}.yaml"

    def bird(self, i: int) -> Bird:
        return Bird(self.tmp / f"lb{i}.conf", self.tmp / f"lb{i}.ctl")

    def cluster_args(self, i: int) -> list[str]:
        return [str(self.yaml(i)), "--node", f"lb{i}", "--conf", str(self.tmp / f"lb{i}.conf"),
                "--socket", str(self.tmp / f"lb{i}.ctl"), "--state-dir",
                str(self.tmp / f"lb{i}.state"), "--log", str(self.tmp / f"lb{i}.log")]

    def lvs_cluster(self, i: int, verb: str, *extra: str, check: bool = True):
        cmd = ["ip", "netns", "exec", self.topo.lb(i), sys.executable, "-m",
               "lvs_tools.cluster.cli", verb, *self.cluster_args(i), *extra]
        return netlab.run(cmd, check=check)

    def watch(self, i: int) -> None:
        """``lvs-cluster sync --every 0.2`` in balancer ``i``: the health glue."""
        cmd = ["ip", "netns", "exec", self.topo.lb(i), sys.executable, "-m",
               "lvs_tools.cluster.cli", "sync", *self.cluster_args(i), "--every", "0.2"]
        self.watchers[i] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)

    def weights(self, i: int, weight: int) -> None:
        with self.topo.inside(self.topo.lb(i)):
            ipvs = IPVS()
        with ipvs:
            for svc, dests in ipvs.table(stats=False):
                for dest in dests:
                    dest.weight = weight
                    ipvs.edit_dest(svc, dest)

    def conns(self) -> dict[int, int]:
        """Connections each balancer's service has scheduled (its counter)."""
        out = {}
        for i in range(1, N_LB + 1):
            with self.topo.inside(self.topo.lb(i)):
                ipvs = IPVS()
            with ipvs:
                out[i] = sum(svc.stats.conns for svc, _ in ipvs.table() if svc.stats)
        return out

    def mark(self) -> list[int]:
        return [len(server.peers) for server in self.servers]

    def balancers_since(self, mark: list[int]) -> dict[int, int]:
        """Connections the real servers accepted since ``mark``, by the
        balancer whose local address they came from (TOA off)."""
        out = {i: 0 for i in range(1, N_LB + 1)}
        for server, seen in zip(self.servers, mark):
            for addr, _ in server.peers[seen:]:
                out[next(i for i in out if addr in laddrs(i))] += 1
        return out

    def conns_after(self, before: dict[int, int], count: int) -> dict[int, int]:
        """The counters once ``count`` connections more than ``before`` are
        in them (IPVS folds its per-CPU counters in every 2 s)."""
        return netlab.wait_for(lambda: (now := self.conns()) and
                               sum(now.values()) - sum(before.values()) >= count and now,
                               timeout=30)

    def nexthops(self) -> set[str]:
        return self.topo.nexthops(VIP)


def one_connection(topo: ClusterTopology, timeout: float = 5) -> tuple[str, str]:
    """A connection to the VIP from the client: (real server, client as it saw it)."""
    with netlab.connect(topo, topo.client, VIP, PORT, timeout=timeout) as sock:
        name, peer, _ = whoami.whoami_tcp(sock)
    return name, peer


def _pids(path: Path) -> list[int]:
    try:
        return [int(path.read_text().split()[0])]
    except (OSError, ValueError, IndexError):
        return []


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if shutil.which("bird") is None:
        pytest.fail("BIRD 2 (Debian bird2) is not installed on the host (./inv bootstraps it)")
    tmp = tmp_path_factory.mktemp("cluster")
    with ClusterTopology(n_lb=N_LB, n_rs=N_RS) as topo:
        servers = [RealServer(topo, topo.rs(i), 4, PORT).start() for i in range(1, N_RS + 1)]
        lab = Lab(topo, tmp, servers)
        router_conf = tmp / "router.conf"
        router_conf.write_text(router_bird_conf(N_LB, HOLD))
        try:
            netlab.run(["ip", "netns", "exec", topo.router, "bird", "-c", str(router_conf),
                        "-s", str(tmp / "router.ctl"), "-P", str(tmp / "router.pid")])
            for i in range(1, N_LB + 1):
                lab.yaml(i).write_text(config_yaml(i))
                netlab.run(["ip", "netns", "exec", topo.lb(i),
                            str(Path(sys.executable).parent / "ipvsadm-py"), "apply",
                            str(lab.yaml(i))])
                lab.lvs_cluster(i, "apply", "--start", "--pidfile", str(tmp / f"lb{i}.pid"))
                lab.watch(i)
            t0 = time.monotonic()
            netlab.wait_for(lambda: len(lab.nexthops()) == N_LB, timeout=90)
            lab.converged = time.monotonic() - t0
            yield lab
        finally:
            for proc in lab.watchers.values():
                netlab.stop_process(proc, timeout=5)
            for pidfile in [tmp / "router.pid", *(tmp / f"lb{i}.pid" for i in range(1, N_LB + 1))]:
                for pid in _pids(pidfile):
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            for server in servers:
                server.stop()


def test_ecmp_spreads_connections_over_every_balancer(lab, toa_on, kver):
    before = lab.conns()
    results = [one_connection(lab.topo) for _ in range(300)]
    after = lab.conns_after(before, 300)
    split = {i: after[i] - before[i] for i in after}
    record(kver, "ecmp_split", {
        "connections": len(results), "ecmp_route_after_s": round(lab.converged, 2),
        "balancers": {f"lb{i}": n for i, n in split.items()},
        "real_servers": {name: sum(1 for r in results if r[0] == name)
                         for name in sorted({r[0] for r in results})}})
    assert len(results) == 300
    assert sum(split.values()) == 300
    assert all(n > 0 for n in split.values()), split
    assert {peer for _, peer in results} == {CLIENT}        # TOA: the client, not a LIP


def test_a_balancer_without_servable_service_withdraws_the_vip(lab, kver, toa_off):
    lb1 = lb_front(1)
    assert lb1 in lab.nexthops()
    t0 = time.monotonic()
    lab.weights(1, 0)
    try:
        netlab.wait_for(lambda: lb1 not in lab.nexthops(), timeout=60, interval=0.05)
        withdrawn = time.monotonic() - t0
        assert lab.nexthops() == {lb_front(i) for i in range(2, N_LB + 1)}
        # the local-address prefix stays announced: replies of old sessions
        assert lb1 in lab.topo.sh(lab.topo.router, f"ip route show {laddr_prefix(1)}").stdout
        mark = lab.mark()
        for _ in range(60):
            one_connection(lab.topo)
        split = lab.balancers_since(mark)
        assert split[1] == 0 and sum(split.values()) == 60, split
    finally:
        lab.weights(1, 1)
    t1 = time.monotonic()
    netlab.wait_for(lambda: lb1 in lab.nexthops(), timeout=60, interval=0.05)
    record(kver, "health_withdraw", {"withdrawn_at_router_s": round(withdrawn, 2),
                                     "announced_again_s": round(time.monotonic() - t1, 2),
                                     "connections_while_withdrawn": 60})


class Prober:
    """New connections to the VIP one after the other until stopped:
    (start, end, error or "") of each."""

    def __init__(self, topo: ClusterTopology) -> None:
        self.topo = topo
        self.results: list[tuple[float, float, str]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            start = time.monotonic()
            try:
                one_connection(self.topo)
                self.results.append((start, time.monotonic(), ""))
            except (OSError, ValueError) as exc:
                self.results.append((start, time.monotonic(), repr(exc)))
            self.stopping.wait(0.02)

    @property
    def ok(self) -> int:
        return sum(1 for *_, err in self.results if not err)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(60)


def test_drain_moves_new_connections_away_without_failures(lab, kver, toa_off):
    """No connection fails but one open while the router changes its route
    (the prober has one open at a time): its next packets go to another
    balancer, which has no session for it (docs/cluster.md)."""
    lb2 = lb_front(2)
    prober = Prober(lab.topo)
    windows = []                 # (command given, route changed at the router)
    try:
        netlab.wait_for(lambda: prober.ok >= 20, timeout=60)
        t0 = time.monotonic()
        res = lab.lvs_cluster(2, "drain", "--deadline", "60")
        drained_after = time.monotonic() - t0
        assert "drained lb2: 0 active" in res.stdout, res.stdout
        netlab.wait_for(lambda: lb2 not in lab.nexthops(), timeout=30, interval=0.05)
        windows.append((t0, time.monotonic()))
        # one connection begun after the change: the prober has finished the older ones
        netlab.wait_for(lambda: any(start > windows[0][1] for start, *_ in prober.results),
                        timeout=60)
        mark = lab.mark()
        at = prober.ok
        netlab.wait_for(lambda: prober.ok >= at + 40, timeout=120)
        split = lab.balancers_since(mark)
        assert split[2] == 0 and sum(split.values()) >= 40, split   # none on the drained one
        status = lab.lvs_cluster(2, "status").stdout
        assert '"drained": true' in status
        t1 = time.monotonic()
        lab.lvs_cluster(2, "undrain")
        netlab.wait_for(lambda: lb2 in lab.nexthops(), timeout=30, interval=0.05)
        windows.append((t1, time.monotonic()))
        at = prober.ok
        netlab.wait_for(lambda: prober.ok >= at + 20, timeout=120)
    finally:
        prober.stop()
    failed = [(start, end, err) for start, end, err in prober.results if err]
    outside = [f for f in failed if not any(f[0] <= w_end and f[1] >= w_start
                                            for w_start, w_end in windows)]
    record(kver, "drain", {"connections": len(prober.results), "failed": len(failed),
                           "failed_outside_route_changes": len(outside),
                           "failures": [err for *_, err in failed][:5],
                           "drain_returned_s": round(drained_after, 2),
                           "withdrawn_at_router_s": round(windows[0][1] - windows[0][0], 2),
                           "announced_again_s": round(windows[1][1] - windows[1][0], 2),
                           "report": res.stdout.strip().splitlines()[-1]})
    assert outside == []
    assert len(failed) <= len(windows)       # at most the one open connection per change


def test_a_configuration_bird_refuses_changes_nothing(lab):
    bird = lab.bird(3)
    before = bird.conf.read_text()
    # The refused text: lvs-cluster's own output with a broken protocol.
    broken = before + "\nprotocol bgp broken {\n    neighbor as;\n}\n"
    with pytest.raises(BirdError) as err:
        bird.install(broken)
    assert "syntax error" in str(err.value).lower() or "error" in str(err.value).lower()
    assert bird.conf.read_text() == before
    protocols = bird.protocols()
    assert "broken" not in protocols
    assert protocols[f"peer_{ROUTER_F.replace('.', '_')}"].startswith("up Established")
    assert lb_front(3) in lab.nexthops()
