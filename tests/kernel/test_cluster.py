"""Three FULLNAT balancers side by side behind an ECMP router, each announcing
an IPv4 and an IPv6 VIP and its local-address prefixes with BIRD
(``lvs-cluster``, BFD on), the router running BIRD with ``merge paths on``
(tools/netlab_cluster.py has the drawing).

* 300 connections (IPv4) and 120 (IPv6) from two clients, varied source
  ports: all succeed, every balancer gets a share (the split is recorded),
  the real servers see each client (TOA);
* one balancer's real servers all go to weight 0: its ``lvs-cluster sync``
  withdraws the VIP, the router keeps the other two, connections succeed;
* the same driven by keepalived: lb1's services run by our keepalived, its
  TCP checks of every real server fail, keepalived takes them out, lb1's
  watcher withdraws both VIPs; the checks pass again, lb1 is back;
* a balancer is drained during a run of connections (one open at a time):
  none fails but, at most, the one open while the router changes its route
  (whose next packets go to a balancer without its session), nothing new
  reaches the drained balancer, and ``undrain`` brings it back;
* a configuration BIRD refuses changes nothing: the running BIRD keeps its
  sessions and routes;
* a balancer whose link silently loses every packet (no carrier change) is
  taken out of the route by BFD, not by the BGP hold time, and new
  connections go to the other two; the connections the other balancers
  held are probed across the change and what became of them is recorded
  (Linux's hash-threshold multipath moves some of them);
* a balancer whose BIRD is killed is taken out of the route (its BGP
  sessions close), and comes back when BIRD starts again;
* the watchers (``lvs-cluster sync --every``) outlive an unload of IPVS:
  the VIPs stay withdrawn while it is gone, and are announced again once
  the services are back.

Times (withdraw, drain, detection) and the splits are recorded, not asserted.
"""

from __future__ import annotations

import dataclasses
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ipvsadm_py import IPVS
from lvs_tools.cluster.announce import drained_marker
from lvs_tools.cluster.bird import Bird, BirdError
from tests.kernel.keepalived_support import toa_off, toa_on  # noqa: F401
from tools import kbuild, keepalived_lab, netlab, whoami
from tests.kernel.keepalived_support import require_keepalived
from tools.keepalived_lab import Keepalived, RealServer
from tools.netlab_cluster import (BFD_TIMERS, LB_ASN, ROUTER_ASN, ROUTER_F, ROUTER_F6, VIP,
                                  VIP6, ClusterTopology, laddr_prefix, laddrs, lb_front,
                                  router_bird_conf, rs_addr)

pytestmark = pytest.mark.kernel

PORT = 80
HEALTH_PORT = 8081       # what lb1's keepalived checks: a listener of its own
N_LB, N_RS = 3, 4
HOLD = 3


def record(kver: str, name: str, values: dict) -> None:
    keepalived_lab.record(kver, name, values, file="cluster-measures.json")


def config_yaml(index: int) -> str:
    """Balancer ``index``'s file: a service per family with its own local
    addresses, and the cluster (every balancer, BFD on with the router's timers)."""
    services = ""
    for family, vip in ((4, VIP), (6, VIP6)):
        dests = "".join(f"      - {{address: {rs_addr(r, family)}, forward: fullnat}}\n"
                        for r in range(1, N_RS + 1))
        services += (f"  - protocol: tcp\n    address: {vip}\n    port: {PORT}\n"
                     f"    scheduler: rr\n    laddrs: [{', '.join(laddrs(index, family))}]\n"
                     f"    dests:\n{dests}")
    bals = "".join(f"    - name: lb{i}\n      router_id: {lb_front(i)}\n      asn: {LB_ASN}\n"
                   f"      local_addresses: [{laddr_prefix(i)}, {laddr_prefix(i, 6)}]\n"
                   f"      vips: [{VIP}, {VIP6}]\n      peers:\n"
                   f"        - {{address: {ROUTER_F}, asn: {ROUTER_ASN}}}\n"
                   f"        - {{address: {ROUTER_F6}, asn: {ROUTER_ASN}}}\n"
                   for i in range(1, N_LB + 1))
    return (f"services:\n{services}"
            f"cluster:\n  hold_time: {HOLD}\n  bfd: {{interval: {BFD_TIMERS[0]}, "
            f"multiplier: {BFD_TIMERS[1]}}}\n  balancers:\n{bals}")


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
        # a Python program starting in an emulated guest that the prober and
        # three watchers keep busy: minutes, at worst, not seconds
        return netlab.run(cmd, check=check, timeout=600)

    def watch(self, i: int) -> None:
        """``lvs-cluster sync --every 0.5`` in balancer ``i``: the health glue."""
        cmd = ["ip", "netns", "exec", self.topo.lb(i), sys.executable, "-m",
               "lvs_tools.cluster.cli", "sync", *self.cluster_args(i), "--every", "0.5"]
        with (self.tmp / f"lb{i}.watch.log").open("a") as log:
            self.watchers[i] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)

    def apply(self, i: int) -> None:
        """``ipvsadm-py apply`` of balancer ``i``'s file in its namespace."""
        netlab.run(["ip", "netns", "exec", self.topo.lb(i),
                    str(Path(sys.executable).parent / "ipvsadm-py"), "apply", str(self.yaml(i))])

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
                out[balancer_of(addr)] += 1
        return out

    def conns_after(self, before: dict[int, int], count: int) -> dict[int, int]:
        """The counters once ``count`` connections more than ``before`` are
        in them (IPVS folds its per-CPU counters in every 2 s)."""
        return netlab.wait_for(lambda: (now := self.conns()) and
                               sum(now.values()) - sum(before.values()) >= count and now,
                               timeout=30)

    def nexthops(self, vip: str = VIP) -> set[str]:
        return self.topo.nexthops(vip)

    def all_routes_back(self, timeout: float = 90) -> None:
        """Wait until the router spreads both VIPs over every balancer again."""
        for family, vip in ((4, VIP), (6, VIP6)):
            every = {lb_front(i, family) for i in range(1, N_LB + 1)}
            netlab.wait_for(lambda: self.nexthops(vip) == every, timeout=timeout,
                            interval=0.1)

    def router_bird(self, command: str) -> str:
        return netlab.run(["birdc", "-s", str(self.tmp / "router.ctl"), command]).stdout


def balancer_of(laddr: str) -> int:
    """The balancer owning a local address (as a real server sees it, TOA off)."""
    return next(i for i in range(1, N_LB + 1) if laddr in laddrs(i) + laddrs(i, 6))


def one_connection(topo: ClusterTopology, timeout: float = 5, vip: str = VIP,
                   client: str | None = None) -> tuple[str, str]:
    """A connection to the VIP from a client (default: the first): (real
    server, client as it saw it)."""
    with netlab.connect(topo, client or topo.client, vip, PORT, timeout=timeout) as sock:
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
        servers = [RealServer(topo, topo.rs(i), family, PORT).start()
                   for family in (4, 6) for i in range(1, N_RS + 1)]
        lab = Lab(topo, tmp, servers)
        router_conf = tmp / "router.conf"
        router_conf.write_text(router_bird_conf(N_LB, HOLD, bfd=True))
        try:
            netlab.run(["ip", "netns", "exec", topo.router, "bird", "-c", str(router_conf),
                        "-s", str(tmp / "router.ctl"), "-P", str(tmp / "router.pid")])
            for i in range(1, N_LB + 1):
                lab.yaml(i).write_text(config_yaml(i))
                lab.apply(i)
                lab.lvs_cluster(i, "apply", "--start", "--pidfile", str(tmp / f"lb{i}.pid"))
                lab.watch(i)
            t0 = time.monotonic()
            lab.all_routes_back()
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


@pytest.mark.parametrize("family,count", [(4, 300), (6, 120)])
def test_ecmp_spreads_connections_over_every_balancer(lab, toa_on, kver, family, count):
    """Half of the connections from each client."""
    vip = VIP if family == 4 else VIP6
    clients = lab.topo.clients
    before = lab.conns()
    results = [one_connection(lab.topo, vip=vip, client=clients[n % 2][0])
               for n in range(count)]
    after = lab.conns_after(before, count)
    split = {i: after[i] - before[i] for i in after}
    record(kver, "ecmp_split" if family == 4 else "ecmp_split_ipv6", {
        "connections": len(results), "ecmp_route_after_s": round(lab.converged, 2),
        "balancers": {f"lb{i}": n for i, n in split.items()},
        "real_servers": {name: sum(1 for r in results if r[0] == name)
                         for name in sorted({r[0] for r in results})}})
    assert len(results) == count
    assert sum(split.values()) == count
    assert all(n > 0 for n in split.values()), split
    # TOA: each client's own address, not a LIP
    assert {peer for _, peer in results} == {c[1 if family == 4 else 2] for c in clients}


def test_a_balancer_without_servable_service_withdraws_the_vip(lab, kver, toa_off):
    lb1 = lb_front(1)
    assert lb1 in lab.nexthops()
    t0 = time.monotonic()
    lab.weights(1, 0)
    try:
        netlab.wait_for(lambda: lb1 not in lab.nexthops(), timeout=60, interval=0.05)
        withdrawn = time.monotonic() - t0
        assert lab.nexthops() == {lb_front(i) for i in range(2, N_LB + 1)}
        netlab.wait_for(lambda: lab.nexthops(VIP6) == {lb_front(i, 6) for i in range(2, N_LB + 1)},
                        timeout=60)
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
    lab.all_routes_back()
    record(kver, "health_withdraw", {"withdrawn_at_router_s": round(withdrawn, 2),
                                     "announced_again_s": round(time.monotonic() - t1, 2),
                                     "connections_while_withdrawn": 60})


def keepalived_conf(index: int) -> str:
    """Balancer ``index``'s services in keepalived's words (the VIPs, real
    servers and local addresses of its YAML), each real server checked by a
    connection to HEALTH_PORT."""
    out = ""
    for family, vip in ((4, VIP), (6, VIP6)):
        rs = "".join(f"    real_server {rs_addr(r, family)} {PORT} {{\n        weight 1\n"
                     f"        TCP_CHECK {{\n            connect_port {HEALTH_PORT}\n"
                     f"            connect_timeout 3\n            retry 0\n        }}\n    }}\n"
                     for r in range(1, N_RS + 1))
        local = "".join(f"        {addr}\n" for addr in laddrs(index, family))
        out += (f"virtual_server {vip} {PORT} {{\n    delay_loop 1\n    lb_algo rr\n"
                f"    lb_kind FNAT\n    protocol TCP\n    local_address {{\n{local}    }}\n"
                f"{rs}}}\n")
    return out


def test_keepalived_health_checks_drive_the_announcement(lab, kver, tmp_path, toa_off):
    """lb1's services are keepalived's (its table cleared of the YAML's
    first): every real server fails lb1's checks, keepalived takes them out,
    lb1's watcher withdraws both VIPs and new connections go to lb2 and lb3;
    the checks pass again, keepalived puts them back, lb1 is announced."""
    require_keepalived()
    lab.all_routes_back()
    health = [RealServer(lab.topo, lab.topo.rs(r), family, HEALTH_PORT).start()
              for family in (4, 6) for r in range(1, N_RS + 1)]
    lb1 = lab.topo.lb(1)
    ka = Keepalived(lb1, tmp_path)
    try:
        lab.topo.sh(lb1, "ipvsadm -C")
        ka.start(keepalived_conf(1))
        lab.all_routes_back()                       # announced again: keepalived's services
        for server in health:
            server.stop()
        t0 = time.monotonic()
        for family, vip in ((4, VIP), (6, VIP6)):
            netlab.wait_for(lambda: lb_front(1, family) not in lab.nexthops(vip),
                            timeout=120, interval=0.05)
        withdrawn = time.monotonic() - t0
        mark = lab.mark()
        for _ in range(30):
            one_connection(lab.topo)
        split = lab.balancers_since(mark)
        assert split[1] == 0 and sum(split.values()) == 30, split
        for server in health:
            server.start()
        t1 = time.monotonic()
        lab.all_routes_back(timeout=120)
        back = time.monotonic() - t1
    finally:
        ka.stop()
        for server in health:
            server.stop()
        lab.topo.sh(lb1, "ipvsadm -C")
        lab.apply(1)
    lab.all_routes_back()
    record(kver, "keepalived_health", {"withdrawn_at_router_s": round(withdrawn, 2),
                                       "announced_again_s": round(back, 2),
                                       "connections_while_withdrawn": 30})


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
            # a pause: in an emulated guest, back-to-back connections through
            # Python take a whole vCPU, and the commands under test crawl
            self.stopping.wait(0.1)

    @property
    def ok(self) -> int:
        return sum(1 for *_, err in self.results if not err)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(60)


def test_drain_moves_new_connections_away_without_failures(lab, kver, toa_off):
    """No connection fails but one open while the router changes its route
    (the prober has one open at a time): its next packets go to another
    balancer, which has no session for it (docs/cluster.md).  Its session
    on lb2 then stays established (nothing of it reaches lb2 again): the
    drain waits out its deadline and reports it, with exit status 1."""
    lb2 = lb_front(2)
    prober = Prober(lab.topo)
    windows = []                 # (command given, route changed at the router)
    try:
        netlab.wait_for(lambda: prober.ok >= 20, timeout=60)
        t0 = time.monotonic()
        res = lab.lvs_cluster(2, "drain", "--deadline", "60", check=False)
        drained_after = time.monotonic() - t0
        left = re.search(r"drained lb2: (\d+) active", res.stdout)
        assert left and res.returncode == (0 if left.group(1) == "0" else 1), \
            (res.returncode, res.stdout, res.stderr)
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
        if drained_marker(lab.tmp / "lb2.state").exists():   # failed half-way: not for later tests
            lab.lvs_cluster(2, "undrain", check=False)
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
    # a session the drain found still active is that connection's, cut by the withdrawal
    in_withdrawal = [f for f in failed if f[0] <= windows[0][1] and f[1] >= windows[0][0]]
    assert int(left.group(1)) <= len(in_withdrawal), (res.stdout, failed)


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


class HeldFlows:
    """Connections to the VIP kept open, each knowing the balancer that holds
    its session (TOA off: the real server names the local address)."""

    def __init__(self, topo: ClusterTopology, count: int) -> None:
        self.socks: list[tuple[int, socket.socket]] = []
        for _ in range(count):
            sock = netlab.connect(topo, topo.client, VIP, PORT, timeout=10)
            _, laddr, _ = whoami.whoami_tcp(sock)
            self.socks.append((balancer_of(laddr), sock))

    def probe(self, timeout: float = 15) -> dict[int, dict[str, int]]:
        """Send a line on every connection at once, wait for the echoes:
        balancer -> {"held": answered, "broken": reset, closed or silent}."""
        waiting = {}
        out = {i: {"held": 0, "broken": 0} for i in range(1, N_LB + 1)}
        for n, (bal, sock) in enumerate(self.socks):
            line = f"probe {n}\n".encode()
            try:
                sock.sendall(line)
                waiting[sock] = (bal, line, b"")
            except OSError:
                out[bal]["broken"] += 1
        deadline = time.monotonic() + timeout
        while waiting and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(waiting), [], [], left)
            for sock in ready:
                bal, line, got = waiting[sock]
                try:
                    chunk = sock.recv(4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    out[bal]["broken"] += 1
                    del waiting[sock]
                    continue
                got += chunk
                if len(got) >= len(line):
                    out[bal]["held" if got == line else "broken"] += 1
                    del waiting[sock]
                else:
                    waiting[sock] = (bal, line, got)
        for bal, *_ in waiting.values():
            out[bal]["broken"] += 1
        return out

    def close(self) -> None:
        for _, sock in self.socks:
            sock.close()


def _silence(lab: Lab, i: int, on: bool) -> None:
    """Drop every packet between the router and balancer ``i``, both ways,
    carrier up (a failed switch port, a hung box): only BFD or the BGP hold
    time can tell.  The balancer's side goes silent first: the other way
    round, a balancer whose own BFD saw the router fall silent (the second
    tc command can take seconds under emulation) still got its BGP Cease
    out, and the router named that instead of BFD."""
    verb = "add" if on else "del"
    loss = " netem loss 100%" if on else ""
    lab.topo.sh(lab.topo.lb(i), f"tc qdisc {verb} dev eth0 root{loss}")
    lab.topo.sh(lab.topo.router, f"tc qdisc {verb} dev f{i} root{loss}")


def test_silent_loss_is_found_by_bfd_and_the_others_flows_are_counted(lab, kver, toa_off):
    """lb3's link loses every packet: BFD takes it out of the route (the
    router's BIRD names BFD as the reason, before the hold time).  The flows
    lb1 and lb2 held are probed across the change: those the router's hash
    now sends to the other survivor break, the rest go on (recorded)."""
    lab.all_routes_back()
    flows = HeldFlows(lab.topo, 90)
    try:
        before = flows.probe()
        assert all(v["broken"] == 0 for v in before.values()), before
        assert all(v["held"] > 0 for v in before.values()), before
        lb3 = lb_front(3)
        _silence(lab, 3, True)
        t0 = time.monotonic()            # the loss in place (tc takes seconds here)
        try:
            netlab.wait_for(lambda: lb3 not in lab.nexthops(), timeout=60, interval=0.05)
            detected = time.monotonic() - t0
            reason = lab.router_bird("show protocols all lb3v4")
            after = flows.probe()
            # new connections, after the detection: over lb1 and lb2 only
            mark = lab.mark()
            for _ in range(30):
                one_connection(lab.topo)
            new_split = lab.balancers_since(mark)
        finally:
            _silence(lab, 3, False)
        lab.all_routes_back()
        back = time.monotonic() - t0
    finally:
        flows.close()
    survivors = {i: after[i] for i in (1, 2)}
    moved = sum(v["broken"] for v in survivors.values())
    held = sum(v["held"] for v in survivors.values())
    record(kver, "silent_loss", {
        "flows": len(flows.socks), "detected_at_router_s": round(detected, 2),
        "bfd_timers": BFD_TIMERS, "hold_time_s": HOLD,
        "per_balancer_after": {f"lb{i}": v for i, v in after.items()},
        "survivors_held": held, "survivors_broken": moved,
        "survivors_broken_share": round(moved / max(1, held + moved), 3),
        "new_connections_after": {f"lb{i}": n for i, n in new_split.items()},
        "all_routes_back_s": round(back, 2)})
    assert "BFD session down" in reason, reason
    assert after[3]["held"] == 0, after          # its balancer is gone from the route
    assert new_split[3] == 0 and sum(new_split.values()) == 30, new_split
    assert held + moved == before[1]["held"] + before[2]["held"]
    assert held > 0, after


def test_a_killed_bird_is_withdrawn_and_comes_back(lab, kver):
    """SIGKILL to lb2's BIRD: its BGP sessions close (the kernel closes its
    sockets), the router drops lb2 from both VIPs' routes; started again,
    it is back in them."""
    lab.all_routes_back()
    pidfile = lab.tmp / "lb2.pid"
    pids = _pids(pidfile)
    assert pids, "lb2's BIRD wrote no pid file"
    t0 = time.monotonic()
    os.kill(pids[0], signal.SIGKILL)
    for family, vip in ((4, VIP), (6, VIP6)):
        netlab.wait_for(lambda: lb_front(2, family) not in lab.nexthops(vip), timeout=60,
                        interval=0.05)
    withdrawn = time.monotonic() - t0
    assert lab.nexthops() == {lb_front(1), lb_front(3)}
    for _ in range(30):
        one_connection(lab.topo)
    t1 = time.monotonic()
    lab.lvs_cluster(2, "apply", "--start", "--pidfile", str(pidfile))
    lab.all_routes_back()
    record(kver, "killed_daemon", {"withdrawn_at_router_s": round(withdrawn, 2),
                                   "announced_again_s": round(time.monotonic() - t1, 2)})


def test_the_watchers_outlive_an_unload_of_ipvs(lab, kver):
    """Every table cleared (the VIPs withdrawn), IPVS unloaded and loaded
    again, the services applied anew: the watchers that ran through it are
    still running and announce the VIPs again."""
    ours = [ko.stem for ko in (kbuild.ROOT / "build" / kver / "modules").glob("ip_vs*.ko")]
    for i in range(1, N_LB + 1):
        lab.topo.sh(lab.topo.lb(i), "ipvsadm -C")
    netlab.wait_for(lambda: not lab.nexthops() and not lab.nexthops(VIP6), timeout=60)
    loaded = {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}
    netlab.run(["modprobe", "-r", *[m for m in ours if m != "ip_vs" and m in loaded]])
    netlab.run(["modprobe", "-r", "ip_vs"])
    time.sleep(2)                       # several passes of every watcher without IPVS
    assert not lab.nexthops() and not lab.nexthops(VIP6)
    netlab.run(["modprobe", "ip_vs"])
    for i in range(1, N_LB + 1):
        lab.apply(i)
    lab.all_routes_back()
    dead = {i: proc.returncode for i, proc in lab.watchers.items() if proc.poll() is not None}
    assert dead == {}, {i: (lab.tmp / f"lb{i}.watch.log").read_text() for i in dead}
    assert one_connection(lab.topo)[0].startswith(lab.topo.prefix + "rs")
