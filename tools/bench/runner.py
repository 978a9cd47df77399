"""Guest side of ``./inv bench``: every measurement, in one guest.

``python -m tools.bench.runner [--quick] --out PATH`` (as root, our modules
loaded) builds its own lab of namespaces (``b-client``, ``b-lb``, ``b-rs1``;
see docs/benchmarks.md), measures, and writes one JSON document.  Every
figure is a ratio against a baseline measured in this run on this guest;
absolute values are kept for context.  A figure whose feature the running
module lacks is ``null`` with a reason in ``reasons``.

Traffic generators: the kernel's pktgen for UDP packet rates and for
filling the session table; ``tools/bench/gen.c`` (compiled on first use) for
TCP connections per second and for SYN/ACK floods.

Layout of the balancer's CPU work: the generator runs on CPU 0 and the
balancer's receive path is steered to CPU 1 with RPS (the real servers'
receive path follows it), so the generator does not share a CPU with
what is measured.  With one CPU everything shares it (and the ratio is
diluted by the generator's cost; the JSON says ``rps_cpu: null``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from netaddr import IPAddress

from tools import netlab
from tools.bench import keepalived as ka_bench
from tools.bench import haproxy_peer, nft_peer
from tools.bench.saturation import (Window, busy_share, cost_ratio, lower_bound,
                                    median_figure, paired_figure)
from tools.netlab import Topology

ROOT = Path(__file__).resolve().parents[2]
GEN_SRC = Path(__file__).with_name("gen.c")
GEN_BUILT = ROOT / "build" / "bench" / "lvs-bench-gen"

VIP = netlab.VIP4
LB_ADDR = netlab.LB_C4
UDP_NAT, UDP_FNAT = 9000, 9001          # UDP services (packet rates, sessions)
TCP_NAT, TCP_FNAT, TCP_SYNPROXY = 80, 81, 82
RS_TCP = {TCP_NAT: 8080, TCP_FNAT: 8081, TCP_SYNPROXY: 8082}
#: The local-port pool figure: one firewall-mark FULLNAT service for UDP
#: POOL_UDP (fills the pool) and TCP POOL_TCP (new connections), so both
#: take their ports from the same local addresses' port maps.
POOL_MARK, POOL_UDP, POOL_TCP = 7, 9002, 83
#: The TOA figure: a FULLNAT service of its own to rs1's ``gen serve-peer``
TCP_TOA, RS_TOA = 84, 8084
POOL_LADDR_NET = "10.0.4"
#: HAProxy on the peers' address -> rs1's ``gen echo --proxy``; FULLNAT to
#: rs1's ``gen echo`` for the same exchanges (request/response of RR_SIZE)
TCP_HAPROXY, RS_HAPROXY = 88, 8088
TCP_ECHO, RS_ECHO = 89, 8089
RR_SIZE = 64
COOKIE_PORT = 7000                      # a local listener in the balancer
DEFENDED_VIP = "10.0.0.102"             # a SYNPROXY address without UDP services
DEFENDED_UDP_PORT = 9999                # UDP there: dropped by defence_udp_drop
FILLER_BASE = int(IPAddress("172.16.0.1"))  # addresses of the many-services run
ACL_FIRST = int(IPAddress("172.20.0.0"))  # ... addresses no generator uses
FLOOD_NET = "10.96.0.0/12"              # sources of gen.c's floods
SRC_NET = "10.64.0.0/10"                # generated client addresses
#: Source /16 of each purpose's generated flows: 10.BASE.0.0/16.
BASE = {"pps_nat": 64, "pps_fnat": 65, "mem_nat": 66, "mem_fnat": 67, "big": 68,
        "udp_drop": 69, "pool": 70, "pps_nft": 71, "mem_nft": 72}

#: Target of each figure (reported, never asserted): (comparison, value).
TARGETS = {
    "fnat_vs_nat_pps_ratio": (">=", 0.95),
    "fnat_vs_nat_cps_ratio": (">=", 0.9),
    "synproxy_vs_syncookie_ratio": (">=", 1.0),
    "ackflood_drop_vs_synflood_ratio": ("~", 2.3),
    "bytes_fnat_vs_nat_ratio": ("<=", 1.2),
    "lookup_1m_vs_1k_ratio": (">=", 0.8),
    "restore_py_vs_c_ratio": ("<=", 1.0),
    "list_py_vs_c_ratio": ("<=", 1.5),
    "udp_drop_50k_vs_10_ratio": (">=", 0.9),
    "lport_full_vs_empty_cps_ratio": (">=", 0.5),
    "scrape_vs_idle_pps_ratio": (">=", 0.95),
    "scrape_every_15s_vs_idle_pps_ratio": (">=", 0.95),
    "acl_100k_vs_none_pps_ratio": (">=", 0.95),
    "acl_drop_vs_synproxy_ratio": (">=", 1.5),
    "toa_ebpf_vs_none_cps_ratio": (">=", 0.95),
    "toa_module_vs_none_cps_ratio": (">=", 0.95),
    "sync_vs_nosync_cps_ratio": (">=", 0.9),
    # against what an operator would use instead (tools/bench/nft_peer.py,
    # tools/bench/haproxy.cfg); request/response has no goal of its own
    "fnat_vs_nft_pps_ratio": (">=", 1.0),
    "fnat_vs_nft_cps_ratio": (">=", 1.0),
    "synproxy_vs_nft_synproxy_ratio": (">=", 1.0),
    "fnat_vs_haproxy_cps_ratio": (">=", 2.0),
    "fnat_vs_haproxy_pps_ratio": (">=", 1.0),
}
RATIO_KEYS = tuple(TARGETS)
#: Every key the JSON document has, besides context.
KEYS = ("fnat_vs_nat_pps_ratio", "fnat_vs_nat_cps_ratio", "synproxy_vs_syncookie_ratio",
        "ackflood_drop_vs_synflood_ratio", "bytes_per_session_fnat",
        "bytes_per_session_nat", "lookup_1m_vs_1k_ratio", "restore_py_vs_c_ratio",
        "list_py_vs_c_ratio", "udp_drop_50k_vs_10_ratio", "lport_full_vs_empty_cps_ratio",
        # lvs-exporter: one scrape of the big table (seconds), forwarding while scraped
        "exporter_scrape_seconds", "scrape_vs_idle_pps_ratio",
        "scrape_every_15s_vs_idle_pps_ratio",
        "acl_100k_vs_none_pps_ratio", "acl_drop_vs_synproxy_ratio",
        # TOA on the real server: the BPF variant and toa.ko against neither
        "toa_ebpf_vs_none_cps_ratio", "toa_module_vs_none_cps_ratio",
        # connection sync: the master's rate with its daemon on and off, bytes sent
        "sync_vs_nosync_cps_ratio", "sync_bytes_per_session",
        # the peers: nftables full NAT and synproxy, HAProxy in TCP mode
        "fnat_vs_nft_pps_ratio", "fnat_vs_nft_cps_ratio", "synproxy_vs_nft_synproxy_ratio",
        "fnat_vs_haproxy_cps_ratio", "fnat_vs_haproxy_pps_ratio",
        "bytes_per_session_nft", "bytes_per_session_haproxy",
        # keepalived (tools/bench/keepalived.py)
        "keepalived_load_vs_restore_ratio", "keepalived_check_cpu_percent")


@dataclasses.dataclass
class Params:
    repeats: int = 5
    seconds: float = 4.0          # one measuring window
    warmup: float = 1.0
    flows: int = 1000             # flows of the packet-rate runs (= live sessions)
    sessions: int = 120_000       # sessions of each bytes-per-session run
    big: int = 1_000_000          # sessions of the big-table run
    laddrs: int = 64              # FULLNAT local addresses (ports: laddrs x 60k)
    concurrency: int = 64         # connects in flight
    rules: int = 10_000           # control plane
    services: int = 1000
    max_passes: int = 8           # pktgen passes to fill a session table
    few_services: int = 10        # defence_udp_drop: table sizes compared
    many_services: int = 50_000
    pool_laddrs: int = 8          # local addresses of the port-pool figure
    pool_window: float = 1.0      # one connect run there (its sessions fit the 1 %)
    acl_entries: int = 100_000    # deny entries of the list benchmark
    scraped_services: int = 1000  # lvs-exporter: services of the scraped table,
    scraped_dests: int = 4        # each with this many real servers
    held: int = 10_000            # idle TCP connections of the proxy memory figure


FULL = Params()
QUICK = Params(repeats=1, seconds=1.0, warmup=0.5, flows=100, sessions=5000, big=20_000,
               laddrs=4, concurrency=16, rules=500, services=50, max_passes=3,
               many_services=2000, pool_laddrs=2, pool_window=0.25,
               scraped_services=50, acl_entries=5000, held=500)


# ---------------------------------------------------------------- helpers

def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def sh(cmd: str, check: bool = True, timeout: float = 600) -> str:
    return netlab.run(cmd, check=check, timeout=timeout).stdout


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return num / den


def paired_ratio(nums: list[float], dens: list[float]) -> float | None:
    """Median of the ratios of each repeat's pair (feature, then baseline, measured
    back to back): a slow drift of the shared host cancels within a pair."""
    pairs = [n / d for n, d in zip(nums, dens) if d]
    return statistics.median(pairs) if pairs else None


def gen_binary() -> str:
    """The C generator: the host-built one if current, else compiled into /tmp."""
    if GEN_BUILT.exists() and GEN_BUILT.stat().st_mtime >= GEN_SRC.stat().st_mtime:
        return str(GEN_BUILT)
    out = Path("/tmp/lvs-bench-gen")
    if not out.exists() or out.stat().st_mtime < GEN_SRC.stat().st_mtime:
        sh(f"gcc -O2 -o {out} {GEN_SRC}")
    return str(out)


def build_gen(target: Path = GEN_BUILT) -> Path:
    """Compile the generator on the host (``./inv bench`` does this first)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    netlab.run(["gcc", "-O2", "-Wall", "-o", str(target), str(GEN_SRC)])
    return target


def flow_space(n: int) -> tuple[int, int]:
    """(addresses, ports) whose product is >= n and whose sizes are coprime.

    pktgen steps the source address and the source port once per packet
    each, wrapping independently: with coprime sizes the pair runs through
    addresses x ports distinct flows before repeating.
    """
    addrs = max(1, math.ceil(n / 60000))
    ports = math.ceil(n / addrs)
    while math.gcd(addrs, ports) != 1:
        ports += 1
    return addrs, ports


# ---------------------------------------------------------------- the lab

class Lab:
    """client -> lb (IPVS) -> rs1, with NAT and FULLNAT services side by side."""

    def __init__(self, p: Params) -> None:
        self.p = p
        self.topo = Topology(n_rs=1, prefix="b-")
        self.ipvs = None
        self.procs: list[subprocess.Popen] = []
        self.rps_cpu: int | None = None
        self.gen_cpus: list[int] = [0]
        self.restore_files: dict[Path, str] = {}
        self.netlink: dict[str, Any] = {}        # namespace -> IPRoute (Lab.stats)
        self.affinity: set[int] | None = None
        self.nft_missing: str | None = None
        self.svc: dict[str, Any] = {}
        self.serving = False
        self.sync_linked = False                 # Lab.sync_link made s0

    # ------------------------------------------------------------ set up
    def __enter__(self) -> "Lab":
        self.topo.up()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for sock in self.netlink.values():
            sock.close()
        self.netlink.clear()
        try:
            if self.ipvs is not None:
                try:
                    self.ipvs.flush()
                finally:
                    self.ipvs.close()
            self.topo.down()
        finally:
            # what the lab changed outside its namespaces, back as it was
            # (the test guest's other tests follow)
            for path, value in self.restore_files.items():
                with contextlib.suppress(OSError):
                    path.write_text(value)
            if self.affinity is not None:
                os.sched_setaffinity(0, self.affinity)

    def _setup(self) -> None:
        from ipvsadm_py import IPVS, Dest, Forward, LocalAddress, Protocol, Service, Timeouts

        t = self.topo
        sh("modprobe pktgen")
        # the nftables peer's modules, now: none is loaded while measuring
        # (conntrack's hooks only run while the peer's table exists)
        # (a kernel without one of them: the peer's figures say so)
        loaded = netlab.run(["modprobe", "-a", *nft_peer.MODULES], check=False)
        if loaded.returncode != 0:
            self.nft_missing = ("the nftables peer's modules did not load: "
                                + (loaded.stderr.strip() or f"status {loaded.returncode}"))
        else:
            # conntrack sized for the sessions of the memory run, as IPVS's
            # table is (ip_vs.conn_tab_bits=20); nftables' wiki on synproxy:
            # no loose pick-up of connections conntrack has not seen start
            self.set_file(Path("/proc/sys/net/netfilter/nf_conntrack_max"),
                          4 * self.p.sessions)
            self.set_file(Path("/sys/module/nf_conntrack/parameters/hashsize"),
                          2 * self.p.sessions)
            t.sysctl(t.lb, net__netfilter__nf_conntrack_tcp_loose=0,
                     net__netfilter__nf_conntrack_udp_timeout=24 * 3600)
        t.sysctl(t.lb, net__ipv4__conf__all__rp_filter=0,
                 net__ipv4__conf__default__rp_filter=0, net__ipv4__conf__eth0__rp_filter=0)
        t.sysctl(t.client, net__ipv4__ip_local_port_range="10000 65000")
        t.ip_batch(t.lb, [f"route add {SRC_NET} via {netlab.CLIENT4}"]
                   + [f"addr add 10.0.3.{i}/32 dev vip0" for i in range(1, self.p.laddrs + 1)]
                   + [f"addr add {nft_peer.PEER_VIP}/32 dev vip0"])
        # RS: drop UDP on arrival (counted by the interface first): the
        # real server's own cost stays out of the packet rates.
        t.sh(t.rs(1), "tc qdisc add dev eth0 clsact && tc filter add dev eth0 ingress "
                      "protocol ip prio 1 u32 match ip protocol 17 0xff action drop")
        self.cpu_layout()
        self.lb_mac = self.link(t.lb, "eth0")["address"]
        # pktgen: one device on CPU 0's thread, added once (removing and
        # adding again races with the thread, which removes asynchronously)
        self._pg(["echo rem_device_all > /proc/net/pktgen/kpktgend_0"])
        netlab.wait_for(lambda: t.sh(t.client, "test -e /proc/net/pktgen/eth0",
                                     check=False).returncode != 0, timeout=30)
        self._pg(["echo add_device eth0 > /proc/net/pktgen/kpktgend_0"])

        with t.inside(t.lb):
            self.ipvs = IPVS()
        self.ipvs.set_timeouts(Timeouts(udp=24 * 3600))
        rs = IPAddress(netlab.rs_addr(1))
        laddrs = [LocalAddress(addr=IPAddress(f"10.0.3.{i}"))
                  for i in range(1, self.p.laddrs + 1)]

        def service(name: str, proto: Protocol, port: int, rport: int, fwd: Forward) -> None:
            svc = Service(protocol=proto, addr=IPAddress(VIP), port=port, scheduler="rr")
            self.ipvs.add_service(svc)
            if fwd == Forward.FULLNAT:
                for la in laddrs:
                    self.ipvs.add_laddr(svc, la)
            self.ipvs.add_dest(svc, Dest(addr=rs, port=rport, forward=fwd, weight=1))
            self.svc[name] = svc

        self.fullnat = self.ipvs.fullnat_supported()
        service("udp_nat", Protocol.UDP, UDP_NAT, UDP_NAT, Forward.MASQ)
        service("tcp_nat", Protocol.TCP, TCP_NAT, RS_TCP[TCP_NAT], Forward.MASQ)
        if self.fullnat:
            service("udp_fnat", Protocol.UDP, UDP_FNAT, UDP_FNAT, Forward.FULLNAT)
            service("tcp_fnat", Protocol.TCP, TCP_FNAT, RS_TCP[TCP_FNAT], Forward.FULLNAT)
        self.nft = nft_peer.NftPeer(t.lb, [netlab.rs_addr(1)], sources=self.p.laddrs)
        self.nft_missing = self.nft_missing or self.nft.available()

    def sync_link(self) -> str:
        """A link of the balancer (``s0``, 10.0.9.1/24, to the client's
        namespace, where nothing listens) for the sync daemon's messages;
        its name."""
        t = self.topo
        if not self.sync_linked:
            netlab.run(["ip", "-n", t.lb, "link", "add", "s0", "type", "veth", "peer", "name",
                        "s0", "netns", t.client])
            t.ip_batch(t.lb, ["link set s0 up", "addr add 10.0.9.1/24 dev s0"])
            t.ip_batch(t.client, ["link set s0 up"])
            self.sync_linked = True
        return "s0"

    def tables_for(self, name: str) -> contextlib.AbstractContextManager:
        """The nftables peer's table for a window of ``name`` (``nft``), none
        for the others'."""
        return self.nft.active() if name == "nft" else contextlib.nullcontext()

    def set_file(self, path: Path, value: object) -> None:
        """Write a global setting, to be written back when the lab closes."""
        self.restore_files.setdefault(path, path.read_text().strip())
        path.write_text(str(value))

    def cpu_layout(self) -> None:
        """The balancer's receive work (both of its sides: eth0 from the
        client, p1 from the real server) on CPU 1 with RPS; the generators
        on every other CPU.  With three CPUs or more, the client's and the
        real server's receive work and the servers go to the generators'
        CPUs too, so that CPU 1 does the balancer's work only (with two,
        they stay where the packets arrive: CPU 0 is the generator's)."""
        t = self.topo
        ncpu = os.cpu_count() or 1
        if ncpu < 2:
            return
        self.rps_cpu = 1
        self.gen_cpus = [c for c in range(ncpu) if c != self.rps_cpu]
        # this process and the commands it starts (probes, nft, ip) keep off
        # the measured CPU too; HAProxy pins itself there
        self.affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.gen_cpus)
        for dev in ("eth0", "p1"):
            t.sh(t.lb, f"echo {1 << self.rps_cpu:x} > /sys/class/net/{dev}/queues/rx-0/rps_cpus")
        if ncpu >= 3:
            mask = f"{sum(1 << c for c in self.gen_cpus):x}"
            for ns in (t.client, t.rs(1)):
                t.sh(ns, f"echo {mask} > /sys/class/net/eth0/queues/rx-0/rps_cpus")

    def on_gen_cpus(self, ns: str, *argv: str) -> list[str]:
        """A command line running ``argv`` in ``ns`` on the generators' CPUs."""
        return ["ip", "netns", "exec", ns, "taskset", "-c",
                ",".join(map(str, self.gen_cpus)), *argv]

    # ------------------------------------------------------------ counters
    def link(self, ns: str, dev: str) -> dict:
        return json.loads(sh(f"ip -n {ns} -s -j link show {dev}"))[0]

    def rx(self, ns: str, dev: str = "eth0") -> int:
        return self.stats(ns, dev)["rx_packets"]

    def stats(self, ns: str, dev: str = "eth0") -> Any:
        """The interface's counters (IFLA_STATS64) over a netlink socket of
        that namespace, opened once: half a millisecond, where ``ip -s``
        takes a process launch (a large part of a second under emulation,
        longer than some windows)."""
        if ns not in self.netlink:
            from pyroute2 import IPRoute

            with self.topo.inside(ns):
                self.netlink[ns] = IPRoute()
        return self.netlink[ns].link("get", ifname=dev)[0].get_attr("IFLA_STATS64")

    def conns(self, name: str) -> int:
        """Live sessions of a service: its real servers' active + inactive
        connection counts (exact at once; the service's own stats lag by
        up to the estimator's 2 s)."""
        return sum(d.active_conns + d.inact_conns for d in self.ipvs.dests(self.svc[name]))

    # ------------------------------------------------------------ pktgen
    def _pg(self, lines: list[str]) -> None:
        script = "set -e\n" + "\n".join(lines)
        self.topo.sh(self.topo.client, script)

    def pktgen_setup(self, port: int, nflows: int, base: int, ratep: int = 0,
                     count: int = 0, dst: str = VIP) -> None:
        """pktgen on the client's eth0: 64-byte UDP to dst:port over ``nflows``
        flows from source addresses 10.BASE.0.1 upwards (one /16 of SRC_NET
        per purpose, so each purpose has its own sessions)."""
        addrs, ports = flow_space(nflows)
        if addrs > 254:
            raise ValueError(f"{nflows} flows need more than 254 source addresses")
        dev = "/proc/net/pktgen/eth0"
        self._pg([
            f"echo 'count {count}' > {dev}",
            f"echo 'clone_skb 0' > {dev}",
            f"echo 'pkt_size 64' > {dev}",
            f"echo 'delay 0' > {dev}",                 # also undoes an earlier ratep
            *([f"echo 'ratep {ratep}' > {dev}"] if ratep else []),
            f"echo 'dst {dst}' > {dev}",
            f"echo 'dst_mac {self.lb_mac}' > {dev}",
            f"echo 'src_min 10.{base}.0.1' > {dev}",
            f"echo 'src_max 10.{base}.0.{addrs}' > {dev}",
            # udp_src_max is exclusive; min == max means one fixed port
            f"echo 'udp_src_min 1024' > {dev}",
            f"echo 'udp_src_max {1024 + ports if ports > 1 else 1024}' > {dev}",
            f"echo 'udp_dst_min {port}' > {dev}",
            f"echo 'udp_dst_max {port}' > {dev}",
        ])
        self.flows = addrs * ports

    def pktgen_start(self) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.topo.client, "sh", "-c",
                                 "echo start > /proc/net/pktgen/pgctrl"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def pktgen_stop(self, proc: subprocess.Popen) -> None:
        self.topo.sh(self.topo.client, "echo stop > /proc/net/pktgen/pgctrl", check=False)
        proc.wait(timeout=60)

    def forward_rate(self, port: int, nflows: int, base: int,
                     seconds: float, dst: str = VIP) -> dict[str, Any]:
        """Packets per second reaching the real server (and offered), and
        the window's evidence of saturation (``window``)."""
        self.pktgen_setup(port, nflows, base, dst=dst)
        proc = self.pktgen_start()
        try:
            time.sleep(self.p.warmup)
            before = self.probe()
            time.sleep(seconds)
            after = self.probe()
        finally:
            self.pktgen_stop(proc)
        w = self.window(before, after, delivered="rs_rx")
        return {"pps": w.rate, "offered_pps": w.offered, "window": w}

    # ------------------------------------------------------------ saturation
    def probe(self) -> dict[str, Any]:
        """Counters a window's evidence is made of: packets the balancer's
        eth0 took, packets the client's side of that link could not hand
        over (the balancer's receive backlog was full: veth counts them as
        the sender's tx_dropped), packets the real server and the client
        received, and the CPUs' times."""
        t = self.topo
        client = self.stats(t.client)
        return {"t": time.monotonic(), "lb_rx": self.rx(t.lb), "rs_rx": self.rx(t.rs(1)),
                "client_rx": client["rx_packets"], "backlog": client["tx_dropped"],
                "cpu": cpu_times()}

    def window(self, before: dict[str, Any], after: dict[str, Any],
               delivered: str | None = None, rate: float | None = None) -> Window:
        """The evidence between two probes: open loop when ``delivered``
        names the counter of what was delivered, closed loop (only the CPU)
        when ``rate`` is given instead."""
        dt = after["t"] - before["t"]
        cpu = f"cpu{self.rps_cpu if self.rps_cpu is not None else 0}"
        busy = busy_share(before["cpu"].get(cpu, []), after["cpu"].get(cpu, []))
        if delivered is None:
            return Window(rate=rate or 0.0, busy=busy)
        dropped = (after["backlog"] - before["backlog"]) / dt
        taken = (after["lb_rx"] - before["lb_rx"]) / dt
        return Window(rate=(after[delivered] - before[delivered]) / dt,
                      offered=taken + dropped, dropped=dropped, busy=busy)

    def fill(self, name: str, port: int, nflows: int, base: int, dst: str = VIP,
             count: Callable[[], int] | None = None) -> dict[str, float]:
        """Create nflows live UDP sessions on service ``name`` (or to ``dst``,
        counted by ``count``); returns the count."""
        count = count or (lambda: self.conns(name))
        before = count()
        self.pktgen_setup(port, nflows, base, count=nflows, dst=dst)
        started = time.monotonic()
        rate = 0
        for n in range(self.p.max_passes):
            t0 = time.monotonic()
            c0 = count()
            self.topo.sh(self.topo.client, "echo start > /proc/net/pktgen/pgctrl",
                         timeout=3600)
            made = count() - before
            rate = (count() - c0) / max(time.monotonic() - t0, 1e-3)
            log(f"  fill {name}: pass {n + 1}: {made}/{self.flows} sessions")
            if made >= self.flows * 0.999:
                break
            # the next passes at 80 % of what this one created per second
            self.pktgen_setup(port, nflows, base, count=nflows, dst=dst,
                              ratep=max(1000, int(rate * 0.8)) if rate else 0)
        return {"sessions": count() - before, "seconds": time.monotonic() - started}

    def conntrack_count(self) -> int:
        """Conntrack entries of the balancer's namespace (the nftables peer's
        sessions)."""
        return int(self.topo.sh(self.topo.lb, f"cat {nft_peer.CONNTRACK_COUNT}").stdout)

    # ------------------------------------------------------------ TCP
    def serve(self) -> None:
        """The TCP servers of rs1 (once)."""
        if self.serving:
            return
        self.start_server(self.on_gen_cpus(self.topo.rs(1), gen_binary(), "serve",
                                           *map(str, (*RS_TCP.values(), POOL_TCP))),
                          "the connection server")
        self.serving = True

    def pool_service(self, laddrs: int) -> int:
        """The port-pool service: firewall mark POOL_MARK (set by tc on the
        balancer's eth0 for UDP POOL_UDP and TCP POOL_TCP to the VIP), FULLNAT
        to rs1 on the packet's own port, with ``laddrs`` local addresses of
        its own.  Returns the size of its pool (addresses x local ports)."""
        from ipvsadm_py import Dest, Forward, LocalAddress, Service

        t = self.topo
        t.sh(t.lb, "tc qdisc add dev eth0 clsact && " + " && ".join(
            f"tc filter add dev eth0 ingress protocol ip prio {prio} u32 match ip dst "
            f"{VIP}/32 match ip protocol {proto} 0xff match ip dport {port} 0xffff "
            f"action skbedit mark {POOL_MARK}"
            for prio, proto, port in ((2, 17, POOL_UDP), (3, 6, POOL_TCP))))
        t.ip_batch(t.lb, [f"addr add {POOL_LADDR_NET}.{i}/32 dev vip0"
                          for i in range(1, laddrs + 1)])
        svc = Service(fwmark=POOL_MARK, scheduler="rr")
        self.ipvs.add_service(svc)
        for i in range(1, laddrs + 1):
            self.ipvs.add_laddr(svc, LocalAddress(addr=IPAddress(f"{POOL_LADDR_NET}.{i}")))
        self.ipvs.add_dest(svc, Dest(addr=IPAddress(netlab.rs_addr(1)), port=0,
                                     forward=Forward.FULLNAT, weight=1))
        self.svc["pool"] = svc
        low, high = (int(v) for v in (
            t.sh(t.lb, "cat /proc/sys/net/ipv4/vs/fullnat_lport_min "
                       "/proc/sys/net/ipv4/vs/fullnat_lport_max").stdout.split()))
        return laddrs * (abs(high - low) + 1)

    def toa_server(self, cgroup: Path) -> None:
        """VIP:TCP_TOA, FULLNAT to rs1's ``gen serve-peer`` on RS_TOA, which
        runs in ``cgroup`` (its sockets are that cgroup's)."""
        from ipvsadm_py import Dest, Forward, LocalAddress, Protocol, Service

        self.fnat_tcp_service("toa", TCP_TOA, RS_TOA)
        self.start_server(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec ip netns exec '
                           '"$1" "$2" serve-peer "$3"', str(cgroup), self.topo.rs(1),
                           gen_binary(), str(RS_TOA)], "the serve-peer server")

    def echo_service(self) -> None:
        """rs1's echo servers (``gen echo`` on RS_ECHO, ``gen echo --proxy``
        on RS_HAPROXY) and the FULLNAT service VIP:TCP_ECHO to the first."""
        if "echo" in self.svc:
            return
        for args in ([str(RS_ECHO)], ["--proxy", str(RS_HAPROXY)]):
            self.start_server(self.on_gen_cpus(self.topo.rs(1), gen_binary(), "echo", *args),
                              f"gen echo {' '.join(args)}")
        self.fnat_tcp_service("echo", TCP_ECHO, RS_ECHO)

    def fnat_tcp_service(self, name: str, port: int, rport: int) -> None:
        """TCP VIP:port, FULLNAT to rs1:rport with the lab's local addresses."""
        from ipvsadm_py import Dest, Forward, LocalAddress, Protocol, Service

        svc = Service(protocol=Protocol.TCP, addr=IPAddress(VIP), port=port, scheduler="rr")
        self.ipvs.add_service(svc)
        for i in range(1, self.p.laddrs + 1):
            self.ipvs.add_laddr(svc, LocalAddress(addr=IPAddress(f"10.0.3.{i}")))
        self.ipvs.add_dest(svc, Dest(addr=IPAddress(netlab.rs_addr(1)), port=rport,
                                     forward=Forward.FULLNAT, weight=1))
        self.svc[name] = svc

    def start_server(self, argv: list[str], what: str) -> None:
        """Start a server of the lab (stopped with it); returns once it said
        "ready"."""
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{what} did not start")

    def rr_rate(self, dst: str, port: int, seconds: float,
                per_connection: int = 0) -> dict[str, Any]:
        """Request/response exchanges of RR_SIZE bytes per second over
        CONCURRENCY connections (closed loop); ``per_connection`` > 0 opens
        a new connection after that many exchanges (1: a connection per
        exchange, the connection rate of a proxy, which answers a
        handshake itself before it reaches a server)."""
        rate, failed, (before, after) = self.closed_loop(
            lambda conc: ["rr", dst, str(port), str(seconds), str(conc), str(RR_SIZE),
                          str(per_connection)], seconds)
        return {"rate": rate, "failed": failed,
                "window": self.window(before, after, rate=rate)}

    def hold(self, dst: str, port: int, count: int, rs_port: int) -> subprocess.Popen:
        """``count`` idle connections to dst:port, held until :meth:`release`;
        returns once rs1 has that many established on ``rs_port`` (a proxy
        opens its server side after the client's handshake)."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.topo.client, gen_binary(), "hold",
                                 dst, str(port), str(count)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        words = proc.stdout.readline().split()
        if len(words) != 2 or not all(w.isdigit() for w in words):
            self.release(proc)
            raise RuntimeError(f"gen hold {dst}:{port} said {' '.join(words)!r}")
        proc.held = int(words[0])            # type: ignore[attr-defined]

        def established() -> int:
            out = self.topo.sh(self.topo.rs(1), "ss -Htn state established "
                               f"'( sport = :{rs_port} )' | wc -l").stdout
            return int(out)
        try:
            netlab.wait_for(lambda: established() >= proc.held,  # type: ignore[attr-defined]
                            timeout=600, interval=1)
        except TimeoutError:
            self.release(proc)
            raise RuntimeError(f"{proc.held} connections held to {dst}:{port}, "  # type: ignore
                               f"{established()} established on rs1:{rs_port} after 600 s")
        except BaseException:
            self.release(proc)
            raise
        return proc

    @staticmethod
    def release(proc: subprocess.Popen) -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()
        proc.wait(timeout=120)

    def connect_rate(self, port: int, seconds: float, dst: str = VIP) -> dict[str, Any]:
        """New connections per second (closed loop: CONCURRENCY in flight),
        with the measured CPU's busy share over the window's middle half
        (``window``)."""
        cps, failed, (before, after) = self.closed_loop(
            lambda conc: ["connect", dst, str(port), str(seconds), str(conc)], seconds)
        return {"cps": cps, "failed": failed, "window": self.window(before, after, rate=cps)}

    def closed_loop(self, args: Callable[[int], list[str]],
                    seconds: float) -> tuple[float, int, tuple[dict, dict]]:
        """One generator per generator CPU, pinned there, with ``args(its
        share of CONCURRENCY)``; each prints "timing" when its clock starts,
        then "done failed elapsed_s".  The
        summed rate, the failures, and two probes around the middle half of
        ``seconds`` (the processes' start and end, a launch under emulation,
        stay out of the CPU shares)."""
        share = max(1, self.p.concurrency // len(self.gen_cpus))
        with self.generators(lambda cpu: args(share)) as procs:
            for proc in procs:                  # each says when its clock starts
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "timing":
                    raise RuntimeError(f"gen {args(share)[0]} did not start timing")
            time.sleep(seconds / 4)
            before = self.probe()
            time.sleep(seconds / 2)
            after = self.probe()
            outs = [proc.communicate(timeout=seconds + 600)[0] for proc in procs]
        rate, failed = 0.0, 0
        for out in outs:
            done, fails, elapsed = out.split()
            rate += int(done) / float(elapsed)
            failed += int(fails)
        return rate, failed, (before, after)

    @contextlib.contextmanager
    def generators(self, args: Callable[[int], list[str]]):
        """One ``gen`` in the client per generator CPU, pinned there, with
        ``args(cpu)``; yields the processes, and checks after the block that
        each ended well (killed if the block failed)."""
        procs = [subprocess.Popen(["ip", "netns", "exec", self.topo.client, "taskset", "-c",
                                   str(cpu), gen_binary(), *args(cpu)],
                                  stdout=subprocess.PIPE, text=True) for cpu in self.gen_cpus]
        try:
            yield procs
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        bad = [proc.returncode for proc in procs if proc.returncode != 0]
        if bad:
            raise RuntimeError(f"gen {args(self.gen_cpus[0])[0]} failed with status {bad[0]}")

    def flood(self, dst: str, port: int, kind: str, seconds: float) -> dict[str, float]:
        """SYN or ACK flood from the client; rates of what the lb took and answered."""
        t = self.topo
        # drop only TCP: the balancer's ARP requests must still be answered,
        # or its neighbour entry for the client fails after ~30 s of flood
        t.sh(t.client, "tc qdisc add dev eth0 clsact && tc filter add dev eth0 ingress "
                       "protocol ip prio 1 u32 match ip protocol 6 0xff action drop")
        # the flooders run past both ends of the window: their start and
        # exit (a launch under emulation) stay out of it
        total = self.p.warmup + seconds + 0.5
        try:
            # one flooder per generator CPU, each with packets of its own (seed)
            with self.generators(lambda cpu: [
                    "flood", "eth0", self.lb_mac, FLOOD_NET, dst, str(port), kind, str(total),
                    str(1 + self.gen_cpus.index(cpu))]) as procs:
                time.sleep(self.p.warmup)
                before = self.probe()
                time.sleep(seconds)
                after = self.probe()
                outs = [proc.communicate(timeout=total + 600)[0] for proc in procs]
        finally:
            t.sh(t.client, "tc qdisc del dev eth0 clsact", check=False)
        sent = sum(int(out.split()[0]) / float(out.split()[1]) for out in outs)
        w = self.window(before, after, delivered="client_rx")
        return {"answered_pps": w.rate, "taken_pps": w.taken, "sent_pps": sent, "window": w}


    def restore(self, lines: list[str]) -> None:
        """Feed rules to C ``ipvsadm -R`` in the balancer."""
        if not lines:
            return
        path = Path("/tmp/lvs-bench-rules")
        path.write_text("\n".join(lines) + "\n")
        sh(f"ip netns exec {self.topo.lb} ipvsadm -R < {path}", timeout=3600)

    def udp_drop_rate(self, seconds: float) -> Window:
        """UDP packets/s to DEFENDED_VIP that defence_udp_drop dropped (the
        window's rate), with the evidence of saturation."""
        self.pktgen_setup(DEFENDED_UDP_PORT, self.p.flows, BASE["udp_drop"],
                          dst=DEFENDED_VIP)
        proc = self.pktgen_start()
        try:
            time.sleep(self.p.warmup)
            before = self.probe()
            before["drops"] = _ns_ext_stats(self.topo.lb).get("defence_udp_drop", 0)
            time.sleep(seconds)
            after = self.probe()
            after["drops"] = _ns_ext_stats(self.topo.lb).get("defence_udp_drop", 0)
        finally:
            self.pktgen_stop(proc)
        return self.window(before, after, delivered="drops")


def filler_rules(first: int, last: int, verb: str = "-A") -> list[str]:
    """TCP services on addresses of their own (172.16.0.1 upwards), numbers
    first..last-1: entries of the defence's address table."""
    return [f"{verb} -t {IPAddress(FILLER_BASE + i)}:80" + (" -s rr" if verb == "-A" else "")
            for i in range(first, last)]


# ---------------------------------------------------------------- slab

def _toa_ok(stats: Path) -> int:
    """toa.ko's getname_toa_ok, all CPUs (/proc/net/toa_stats)."""
    from lvs_tools.toa_state import parse_stats
    return parse_stats(stats.read_text()).get("getname_toa_ok", 0)


@contextlib.contextmanager
def _bpf_stats(switch: Path):
    """kernel.bpf_stats_enabled on meanwhile (BPF programs' run_time_ns)."""
    before = switch.read_text().strip() if switch.exists() else None
    if before is not None:
        switch.write_text("1")
    try:
        yield
    finally:
        if before is not None:
            switch.write_text(before)


def slab() -> dict[str, int]:
    """Bytes held in active objects of every slab cache."""
    out = {}
    for line in Path("/proc/slabinfo").read_text().splitlines()[2:]:
        f = line.split()
        out[f[0]] = int(f[1]) * int(f[3])
    return out


def slab_growth(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)
            if after.get(k, 0) != before.get(k, 0)}


# ---------------------------------------------------------------- support probes

def synproxy_support(lab: Lab) -> str | None:
    """None when the module does SYNPROXY, else why it does not (run-time probe:
    a service keeps flag 0x8000 and /proc/net/ip_vs_ext_stats counts synproxy_*)."""
    from ipvsadm_py import Dest, Forward, Protocol, Request, Service

    stats = _ns_ext_stats(lab.topo.lb)
    if not any(k.startswith("synproxy") for k in stats):
        return "not available yet: no synproxy_* counters in /proc/net/ip_vs_ext_stats"
    svc = Service(protocol=Protocol.TCP, addr=IPAddress(VIP), port=TCP_SYNPROXY,
                  scheduler="rr", synproxy=True)
    err = lab.ipvs.run([Request.add_service(svc)])[0]
    if err is not None:
        return f"not available yet: the kernel refused a service with flag 0x8000 ({err})"
    got = lab.ipvs.service(svc)
    if not got.synproxy:
        lab.ipvs.delete_service(svc)
        return "not available yet: the kernel dropped service flag 0x8000"
    fwd = Forward.FULLNAT if lab.fullnat else Forward.MASQ
    if lab.fullnat:
        from ipvsadm_py import LocalAddress
        for i in range(1, lab.p.laddrs + 1):
            lab.ipvs.add_laddr(svc, LocalAddress(addr=IPAddress(f"10.0.3.{i}")))
    lab.ipvs.add_dest(svc, Dest(addr=IPAddress(netlab.rs_addr(1)),
                                port=RS_TCP[TCP_SYNPROXY], forward=fwd, weight=1))
    lab.svc["tcp_synproxy"] = svc
    return None


# ---------------------------------------------------------------- measurements

class Bench:
    def __init__(self, p: Params, quick: bool, only: str | None = None,
                 mttcg: bool = False) -> None:
        self.p = p
        self.quick = quick
        self.only = only
        self.mttcg = mttcg      # the guest runs multi-threaded TCG: no module reloads
        self.result: dict[str, Any] = {k: None for k in KEYS}
        self.reasons: dict[str, str] = {}
        self.samples: dict[str, Any] = {}
        self.context: dict[str, Any] = {}
        self.fnat_pps_windows: list[Window] = []

    def null(self, key: str, reason: str) -> None:
        self.result[key] = None
        self.reasons[key] = reason

    def step(self, name: str, fn: Callable[[], None], keys: tuple[str, ...]) -> None:
        """Run one measurement; an error nulls its keys with the reason.
        With ``only``, a step whose name does not contain it is skipped
        (its keys say so)."""
        if self.only and self.only.lower() not in name.lower():
            for key in keys:
                self.null(key, f"not measured: only the steps named *{self.only}* ran")
            return
        log(f"{name} ...")
        started = time.monotonic()
        try:
            fn()
        except Exception as exc:      # reported, not hidden: the reason says what failed
            log(f"{name} failed: {exc!r}")
            for key in keys:
                if self.result.get(key) is None and key not in self.reasons:
                    self.null(key, f"measurement failed: {type(exc).__name__}: "
                                   f"{str(exc)[:300]}")
        log(f"{name} done in {time.monotonic() - started:.0f} s")

    # -------------------------------------------------------- packet rates
    def pps(self, lab: Lab) -> None:
        """UDP packets/s forwarded: NAT, FULLNAT and the nftables peer's
        full NAT, interleaved (nat, fnat, nft, nat, ...)."""
        kinds = self.measurable(lab, [("nat", VIP, UDP_NAT), ("fnat", VIP, UDP_FNAT),
                                      ("nft", nft_peer.PEER_VIP, nft_peer.UDP_PORT)],
                                ("fnat_vs_nat_pps_ratio", "fnat_vs_nft_pps_ratio"))
        for name, _, port in kinds[:2]:
            lab.fill(f"udp_{name}", port, self.p.flows, BASE[f"pps_{name}"])  # before timing
        windows: dict[str, list[Window]] = {name: [] for name, _, _ in kinds}
        for _ in range(self.p.repeats):
            for name, dst, port in kinds:
                with lab.tables_for(name):
                    r = lab.forward_rate(port, self.p.flows, BASE[f"pps_{name}"],
                                         self.p.seconds, dst=dst)
                windows[name].append(r["window"])
                log(f"  {name}: {r['window'].describe()}")
        self.windows("pps", windows)
        self.fnat_pps_windows = windows.get("fnat", [])     # the big table's baseline
        for name in windows:
            self.result[f"{name}_pps"] = median([w.rate for w in windows[name]])
        self.context["offered_pps"] = median(
            [w.offered for ws in windows.values() for w in ws if w.offered is not None])
        self.figure("fnat_vs_nat_pps_ratio", windows, "fnat", "nat")
        self.figure("fnat_vs_nft_pps_ratio", windows, "fnat", "nft")

    def measurable(self, lab: Lab, kinds: list[tuple[str, str, int]],
                   keys: tuple[str, str]) -> list[tuple[str, str, int]]:
        """Of NAT, FULLNAT and the nftables peer (``kinds``: name, address,
        port), those this guest can measure; the figures (``keys``: FULLNAT
        vs NAT, FULLNAT vs nftables) that cannot be made are null with why."""
        if not lab.fullnat:
            for key in keys:
                self.null(key, "not available yet: FULLNAT is missing")
        elif lab.nft_missing:
            self.null(keys[1], lab.nft_missing)
        return [k for k in kinds if (k[0] != "fnat" or lab.fullnat)
                and (k[0] != "nft" or (lab.fullnat and not lab.nft_missing))]

    def put(self, key: str, made: tuple[float | None, str | None]) -> None:
        """A figure from ``paired_figure``/``median_figure``: its value, or
        null with the reason."""
        value, why = made
        if value is None:
            self.null(key, why or "not measured")
        else:
            self.result[key] = value

    def windows(self, name: str, windows: dict[str, list[Window]]) -> None:
        """Every window of a step, with its evidence, in the JSON's samples."""
        self.samples[name] = {k: [w.as_json() for w in ws] for k, ws in windows.items()}

    def figure(self, key: str, windows: dict[str, list[Window]], num: str, den: str) -> None:
        """``key``: the saturated pairs' median ratio of ``num`` to ``den``,
        or null with the reason (tools/bench/saturation.py)."""
        if key in self.reasons or not windows.get(num) or not windows.get(den):
            return
        value, why = paired_figure(windows[num], windows[den])
        if all(w.offered is None for w in windows[num] + windows[den]):    # closed loop
            self.context[f"{key}_by_cpu_cost"] = cost_ratio(windows[num], windows[den])
        if value is None:
            bound = lower_bound(windows[num], windows[den])
            if bound is not None:
                self.context[f"{key}_lower_bound"] = bound
                why = (f"{why}; the {den} windows were saturated, so the {num} capacity is at "
                       f"least {bound:.2f} times theirs (context {key}_lower_bound)")
            self.null(key, why or "not measured")
        else:
            self.result[key] = value
            self.context[f"{key}_all_pairs"] = paired_ratio(
                [w.rate for w in windows[num]], [w.rate for w in windows[den]])

    # -------------------------------------------------------- connections
    def cps(self, lab: Lab) -> None:
        """New TCP connections/s: NAT, FULLNAT and the nftables peer's full
        NAT to the same server program, interleaved."""
        lab.serve()
        kinds = self.measurable(lab, [("nat", VIP, TCP_NAT), ("fnat", VIP, TCP_FNAT),
                                      ("nft", nft_peer.PEER_VIP, nft_peer.TCP_PORT)],
                                ("fnat_vs_nat_cps_ratio", "fnat_vs_nft_cps_ratio"))
        windows: dict[str, list[Window]] = {name: [] for name, _, _ in kinds}
        failed: list[int] = []
        lab.connect_rate(TCP_NAT, min(1.0, self.p.seconds))      # warm up both paths
        for _ in range(self.p.repeats):
            for name, dst, port in kinds:
                with lab.tables_for(name):
                    r = lab.connect_rate(port, self.p.seconds, dst=dst)
                windows[name].append(r["window"])
                failed.append(r["failed"])
                log(f"  {name}: {r['window'].describe()} ({r['failed']} failed)")
        self.windows("cps", windows)
        self.samples["cps"]["failed"] = failed
        for name in windows:
            self.result[f"{name}_cps"] = median([w.rate for w in windows[name]])
        self.figure("fnat_vs_nat_cps_ratio", windows, "fnat", "nat")
        self.figure("fnat_vs_nft_cps_ratio", windows, "fnat", "nft")

    # -------------------------------------------------------- HAProxy
    def haproxy(self, lab: Lab) -> None:
        """FULLNAT against HAProxy in TCP mode (tools/bench/haproxy.cfg, one
        thread pinned to the balancer's CPU, PROXY protocol v2 to the
        server), over the same echo server: new connections per second (a
        connection per 64-byte exchange), exchanges per second over kept
        connections, and the memory of idle connections."""
        keys = ("fnat_vs_haproxy_cps_ratio", "fnat_vs_haproxy_pps_ratio",
                "bytes_per_session_haproxy")
        why = haproxy_peer.available() or (
            None if lab.fullnat else "not available yet: FULLNAT is missing")
        if why is not None:
            for key in keys:
                self.null(key, why)
            return
        lab.echo_service()
        t = lab.topo
        kinds = (("fnat", VIP, TCP_ECHO), ("haproxy", nft_peer.PEER_VIP, TCP_HAPROXY))
        windows: dict[str, list[Window]] = {f"{n}_{m}": [] for n, _, _ in kinds
                                            for m in ("cps", "rr")}
        failed: list[int] = []
        hx_cpu: list[float] = []
        with haproxy_peer.Haproxy(t.lb, f"{nft_peer.PEER_VIP}:{TCP_HAPROXY}",
                                  [(netlab.rs_addr(1), RS_HAPROXY)], cpu=lab.rps_cpu) as hx:
            for _, dst, port in kinds:                              # warm up, checked
                r = lab.rr_rate(dst, port, min(1.0, self.p.seconds), per_connection=1)
                if r["rate"] <= 0 or r["failed"]:
                    raise RuntimeError(f"no exchange through {dst}:{port} ({r})")
            for _ in range(self.p.repeats):
                for mode, per_conn in (("cps", 1), ("rr", 0)):
                    for name, dst, port in kinds:
                        c0 = hx.cpu_seconds()
                        r = lab.rr_rate(dst, port, self.p.seconds, per_connection=per_conn)
                        if name == "haproxy":
                            hx_cpu.append(hx.cpu_seconds() - c0)
                        windows[f"{name}_{mode}"].append(r["window"])
                        failed.append(r["failed"])
                        log(f"  {name} {mode}: {r['window'].describe()} ({r['failed']} failed)")
            self.windows("haproxy", windows)
            self.samples["haproxy"]["failed"] = failed
            self.context["haproxy_cpu_seconds_per_window"] = hx_cpu
            for name in windows:
                self.result[f"{name}_per_s"] = median([w.rate for w in windows[name]])
            self.figure("fnat_vs_haproxy_cps_ratio", windows, "fnat_cps", "haproxy_cps")
            self.figure("fnat_vs_haproxy_pps_ratio", windows, "fnat_rr", "haproxy_rr")
            # last: a failure here leaves the rates above standing
            self.held_memory(lab, hx)

    def held_memory(self, lab: Lab, hx: haproxy_peer.Haproxy) -> None:
        """Bytes per idle TCP connection held through each balancer, beyond
        what the two endpoints' sockets cost: slab growth with ``held``
        connections straight to the server (the endpoints alone), through
        FULLNAT, and through HAProxy (plus HAProxy's resident memory)."""
        n = self.p.held
        out: dict[str, Any] = {}
        for name, dst, port, rs_port in (
                ("direct", netlab.rs_addr(1), RS_ECHO, RS_ECHO), ("fnat", VIP, TCP_ECHO, RS_ECHO),
                ("haproxy", nft_peer.PEER_VIP, TCP_HAPROXY, RS_HAPROXY)):
            s0, m0 = slab(), hx.rss_bytes()
            proc = lab.hold(dst, port, n, rs_port)
            try:
                time.sleep(1)
                s1, m1 = slab(), hx.rss_bytes()
            finally:
                lab.release(proc)
            growth = slab_growth(s0, s1)
            held = proc.held                       # type: ignore[attr-defined]
            out[name] = {"held": held, "slab_growth_bytes": sum(growth.values()),
                         "rss_growth_bytes": m1 - m0,
                         "largest_changes": dict(sorted(growth.items(),
                                                        key=lambda kv: -abs(kv[1]))[:6])}
            log(f"  {held} idle connections {name}: slab +{sum(growth.values())}, "
                f"haproxy RSS +{m1 - m0}")
            if held < n:
                raise RuntimeError(f"only {held} of {n} connections held ({name})")
            # the next run starts from the same slab: FULLNAT's reset
            # sessions gone (IPVS keeps a closed one for seconds), sockets
            # freed (RCU)
            netlab.wait_for(lambda: lab.conns("echo") == 0, timeout=120, interval=0.5)
            time.sleep(2)
        base = out["direct"]["slab_growth_bytes"]
        self.context["held_connections"] = out
        hx_bytes = (out["haproxy"]["slab_growth_bytes"] - base
                    + out["haproxy"]["rss_growth_bytes"]) / n
        fnat_bytes = (out["fnat"]["slab_growth_bytes"] - base) / n
        self.context["bytes_per_tcp_session_fnat"] = round(fnat_bytes)
        if hx_bytes <= 0:
            self.null("bytes_per_session_haproxy", f"no measurable growth ({out['haproxy']})")
        else:
            self.result["bytes_per_session_haproxy"] = round(hx_bytes)

    # -------------------------------------------------------- port pool
    def lport_pool(self, lab: Lab) -> None:
        """New FULLNAT connections/s with the local-port pool 99 % used, over
        the same with it empty: the cost of finding a free local port.

        One firewall-mark service takes UDP and TCP (Lab.pool_service), so
        UDP sessions made by pktgen (Lab.fill) fill the very port maps the
        TCP connections take their ports from.  Each connect run is short
        enough for its sessions (reset at once, gone 10 s later) to fit the
        free 1 %; the next run waits for them to go."""
        if not lab.fullnat:
            self.null("lport_full_vs_empty_cps_ratio", "not available yet: FULLNAT is missing")
            return
        lab.serve()
        size = lab.pool_service(self.p.pool_laddrs)
        window = self.p.pool_window

        # A connection that ends with FINs instead of a reset leaves its
        # session in TIME_WAIT, which IPVS keeps for 120 s: wait past that.
        drain = 180

        def runs(resting: int) -> list[Window]:
            windows = []
            for _ in range(self.p.repeats):
                netlab.wait_for(lambda: lab.conns("pool") <= resting, timeout=drain,
                                interval=0.5)
                r = lab.connect_rate(POOL_TCP, window)
                windows.append(r["window"])
                log(f"  {r['window'].describe()} ({r['failed']} failed)")
            return windows

        log(f"  pool of {size} local ports, empty:")
        empty = runs(0)
        netlab.wait_for(lambda: lab.conns("pool") == 0, timeout=drain, interval=0.5)
        made = lab.fill("pool", POOL_UDP, int(size * 0.99), BASE["pool"])
        used = lab.conns("pool")
        log(f"  pool {used}/{size} used ({made['seconds']:.0f} s to fill):")
        full = runs(used)
        self.windows("lport_pool", {"empty": empty, "full": full})
        self.context["lport_pool"] = {"size": size, "used": used,
                                      "used_fraction": used / size,
                                      "window_s": window,
                                      "fill_seconds": made["seconds"]}
        self.result["lport_empty_cps"] = median([w.rate for w in empty])
        self.result["lport_full_cps"] = median([w.rate for w in full])
        # not paired: filling the pool takes minutes
        self.put("lport_full_vs_empty_cps_ratio", median_figure(full, empty))

    # -------------------------------------------------------- connection sync
    def sync(self, lab: Lab) -> None:
        """New FULLNAT connections/s with the master sync daemon off and on,
        interleaved (each session is synced with its FULLNAT state:
        docs/fullnat.md, Connection sync), and the sync traffic's bytes per
        new connection (the sync link's transmitted bytes, once the daemon
        has sent what it queued, over the service's new connections)."""
        keys = ("sync_vs_nosync_cps_ratio", "sync_bytes_per_session")
        if not lab.fullnat:
            for key in keys:
                self.null(key, "not available yet: FULLNAT is missing")
            return
        from ipvsadm_py import Daemon, DaemonState

        lab.serve()
        link = lab.sync_link()
        daemon = Daemon(state=DaemonState.MASTER, mcast_ifn=link)
        windows: dict[str, list[Window]] = {"off": [], "on": []}
        per_session: list[float] = []
        sent_before = _ns_ext_stats(lab.topo.lb).get("sync_fullnat_sent", 0)
        for _ in range(self.p.repeats):
            for name in ("off", "on"):
                if name == "on":
                    lab.ipvs.start_daemon(daemon)
                # the service's counters fold every 2 s: read them settled
                time.sleep(2.5)
                conns = lab.ipvs.service(lab.svc["tcp_fnat"]).stats.conns
                sent = lab.stats(lab.topo.lb, link)["tx_bytes"]
                r = lab.connect_rate(TCP_FNAT, self.p.seconds)
                windows[name].append(r["window"])
                log(f"  sync {name}: {r['window'].describe()} ({r['failed']} failed)")
                if name == "on":
                    time.sleep(2.5)     # the daemon sends a partial message within 2 s
                    conns = lab.ipvs.service(lab.svc["tcp_fnat"]).stats.conns - conns
                    sent = lab.stats(lab.topo.lb, link)["tx_bytes"] - sent
                    lab.ipvs.stop_daemon(daemon)
                    if conns > 0:
                        per_session.append(sent / conns)
        self.windows("sync", windows)
        self.result["sync_bytes_per_session"] = median(per_session)
        self.context["sync_fullnat_sent"] = (_ns_ext_stats(lab.topo.lb).get("sync_fullnat_sent", 0)
                                             - sent_before)
        self.figure("sync_vs_nosync_cps_ratio", windows, "on", "off")

    # -------------------------------------------------------- floods
    def floods(self, lab: Lab) -> None:
        """SYN/ACKs per second under a spoofed SYN flood: the kernel's own
        syncookies (a listener in the balancer), our SYNPROXY, and the
        nftables peer's synproxy; and ACK-flood drops of our SYNPROXY."""
        t = lab.topo
        t.sysctl(t.lb, net__ipv4__tcp_syncookies=2)          # cookies for every SYN
        listener = None
        with t.inside(t.lb):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((LB_ADDR, COOKIE_PORT))
        listener.listen(16)
        windows: dict[str, list[Window]] = {"syncookie": [], "synproxy": [], "ackflood": [],
                                            "nft_synproxy": []}
        why = synproxy_support(lab)
        nft_why = why or lab.nft_missing or self.nft_synproxy_works(lab)
        try:
            for _ in range(self.p.repeats):
                r = lab.flood(LB_ADDR, COOKIE_PORT, "syn", self.p.seconds)
                windows["syncookie"].append(r["window"])
                log(f"  syncookie: {r['window'].describe()} SYN/ACKs")
                if why is None:
                    r = lab.flood(VIP, TCP_SYNPROXY, "syn", self.p.seconds)
                    windows["synproxy"].append(r["window"])
                    log(f"  synproxy: {r['window'].describe()} SYN/ACKs")
                if nft_why is None:
                    with lab.nft.active():
                        r = lab.flood(nft_peer.PEER_VIP, nft_peer.SYNPROXY_PORT, "syn",
                                      self.p.seconds)
                    windows["nft_synproxy"].append(r["window"])
                    log(f"  nft synproxy: {r['window'].describe()} SYN/ACKs")
                if why is None:
                    r = lab.flood(VIP, TCP_SYNPROXY, "ack", self.p.seconds)
                    w = r["window"]
                    # what it dropped: taken and not answered
                    windows["ackflood"].append(dataclasses.replace(
                        w, rate=max(r["taken_pps"] - w.rate, 0.0)))
                    log(f"  ack flood: {r['taken_pps'] - w.rate:.0f} dropped/s "
                        f"({w.describe()})")
        finally:
            listener.close()
        self.windows("floods", {k: v for k, v in windows.items() if v})
        self.result["syncookie_pps"] = median([w.rate for w in windows["syncookie"]])
        if nft_why is not None:
            self.null("synproxy_vs_nft_synproxy_ratio", nft_why)
        if why is not None:
            for key in ("synproxy_vs_syncookie_ratio", "ackflood_drop_vs_synflood_ratio"):
                self.null(key, why)
            return
        self.result["synproxy_pps"] = median([w.rate for w in windows["synproxy"]])
        self.result["nft_synproxy_pps"] = median([w.rate for w in windows["nft_synproxy"]])
        self.result["ackflood_drop_pps"] = median([w.rate for w in windows["ackflood"]])
        self.figure("synproxy_vs_syncookie_ratio", windows, "synproxy", "syncookie")
        self.figure("synproxy_vs_nft_synproxy_ratio", windows, "synproxy", "nft_synproxy")
        self.figure("ackflood_drop_vs_synflood_ratio", windows, "ackflood", "synproxy")

    def nft_synproxy_works(self, lab: Lab) -> str | None:
        """None when a real connection through the nftables peer's synproxy
        reaches the real server (its ``gen serve`` accepts and closes: the
        client reads the end of the stream, not a reset or a silence);
        else why not.  A synproxy that answers SYNs and never opens the
        server's side would otherwise be measured as a fast one."""
        lab.serve()
        with lab.nft.active():
            try:
                with lab.topo.inside(lab.topo.client):
                    sock = socket.create_connection(
                        (nft_peer.PEER_VIP, nft_peer.SYNPROXY_PORT), timeout=10)
                with sock:
                    data = sock.recv(16)
            except OSError as exc:
                return f"nftables synproxy did not reach the real server: {exc!r}"
        return None if data == b"" else f"nftables synproxy: unexpected data {data!r}"

    # -------------------------------------------------------- deny lists
    def acl(self, lab: Lab) -> None:
        """Client lists in nftables (docs/acl.md): the FULLNAT UDP packet rate
        with a deny list of 100,000 addresses on that service (none of them
        the generator's) against none; and a SYN flood whose sources are
        all denied (dropped per second) against the same flood answered by
        SYNPROXY (SYN/ACKs per second), paired run by run."""
        from ipvsadm_py.acl import Entry, Kind, make_target, parse_network
        from ipvsadm_py.nft import AccessLists, Nft

        keys = ("acl_100k_vs_none_pps_ratio", "acl_drop_vs_synproxy_ratio")
        lists = AccessLists(Nft(netns=lab.topo.lb))
        if not lists.nft.available():
            for key in keys:
                self.null(key, "not available: nft (Debian package nftables) is missing")
            return
        runs: dict[str, list[Window]] = {"none": [], "deny": [], "answered": [], "dropped": []}
        try:
            if not lab.fullnat:
                self.null(keys[0], "not available yet: FULLNAT is missing")
            else:
                self._acl_pps(lab, lists, runs)
            why = None if "tcp_synproxy" in lab.svc else synproxy_support(lab)
            if why is not None:
                self.null(keys[1], why)
                return
            flood = make_target(VIP, "tcp", TCP_SYNPROXY)
            for _ in range(self.p.repeats):
                r = lab.flood(VIP, TCP_SYNPROXY, "syn", self.p.seconds)
                runs["answered"].append(r["window"])
                lists.add(Kind.DENY, flood, [Entry(parse_network(FLOOD_NET))])
                try:
                    r = lab.flood(VIP, TCP_SYNPROXY, "syn", self.p.seconds)
                    # what it dropped: taken and not answered
                    runs["dropped"].append(dataclasses.replace(
                        r["window"], rate=max(r["taken_pps"] - r["answered_pps"], 0.0)))
                finally:
                    lists.flush(Kind.DENY, flood)
                log(f"  SYN flood: SYNPROXY answered {runs['answered'][-1].describe()}; "
                    f"denied and dropped {runs['dropped'][-1].describe()}")
            self.result["acl_drop_pps"] = median([w.rate for w in runs["dropped"]])
            self.figure(keys[1], runs, "dropped", "answered")
        finally:
            self.windows("acl", {k: v for k, v in runs.items() if v})

    def _acl_pps(self, lab: Lab, lists: Any, runs: dict[str, list[Window]]) -> None:
        """Windows with the list and without it alternate, paired: the list
        is loaded once, and for each window without it our chain is taken
        off its hook (the set stays loaded; packets pass as without a
        table) and put back after it."""
        from ipvsadm_py.acl import AccessList, Entry, Kind, make_target
        from ipvsadm_py.nft import attach_commands, detach_commands
        import ipaddress

        target = make_target(VIP, "udp", UDP_FNAT)
        entries = [Entry(ipaddress.ip_network(ACL_FIRST + i))
                   for i in range(self.p.acl_entries)]
        started = time.monotonic()
        lists.add(Kind.DENY, target, entries)
        self.context["acl_load_100k_s"] = round(time.monotonic() - started, 2)
        self.context["acl_entries"] = self.p.acl_entries
        try:
            for _ in range(self.p.repeats):
                r = lab.forward_rate(UDP_FNAT, self.p.flows, BASE["pps_fnat"],
                                     self.p.seconds)
                runs["deny"].append(r["window"])
                lists.nft.run(detach_commands())
                try:
                    r = lab.forward_rate(UDP_FNAT, self.p.flows, BASE["pps_fnat"],
                                         self.p.seconds)
                    runs["none"].append(r["window"])
                finally:
                    lists.nft.run(attach_commands([AccessList(Kind.DENY, target)]))
                log(f"  FULLNAT UDP with {self.p.acl_entries} deny entries: "
                    f"{runs['deny'][-1].describe()}; without: {runs['none'][-1].describe()}")
        finally:
            lists.remove()
        self.figure("acl_100k_vs_none_pps_ratio", runs, "deny", "none")

    # -------------------------------------------------------- defence
    def udp_drop(self, lab: Lab) -> None:
        """UDP to the address of a SYNPROXY service that no UDP service takes:
        drop rate with few services in the table against many (each on its
        own address), measured back to back in each size."""
        from ipvsadm_py import Dest, Forward, Protocol, Request, Service, Verb

        key = "udp_drop_50k_vs_10_ratio"
        if "defence_udp_drop" not in _ns_ext_stats(lab.topo.lb):
            self.null(key, "not available yet: no defence_udp_drop counter")
            return
        lab.topo.ip_batch(lab.topo.lb, [f"addr add {DEFENDED_VIP}/32 dev vip0"])
        svc = Service(protocol=Protocol.TCP, addr=IPAddress(DEFENDED_VIP), port=80,
                      scheduler="rr", synproxy=True)
        err = lab.ipvs.run([Request(Verb.ADD_SERVICE, svc)])[0]
        if err is not None or not lab.ipvs.service(svc).synproxy:
            self.null(key, f"not available yet: no SYNPROXY service ({err})")
            return
        lab.ipvs.add_dest(svc, Dest(addr=IPAddress(netlab.rs_addr(1)),
                                    port=RS_TCP[TCP_SYNPROXY], forward=Forward.MASQ))
        have = len(lab.ipvs.services())
        few = max(self.p.few_services, have)
        lab.restore(filler_rules(0, few - have))
        # Every service has a rate estimator that upstream's IPVS updates
        # every two seconds; with 50,000 of them that work takes a share of
        # the guest's two CPUs which has nothing to do with the drop path.
        # Each repeat measures with estimation off (the figure: the drop
        # path alone) and on (context: what a host with that many services
        # also pays), back to back.
        runs: dict[str, list[Window]] = {"few": [], "many": [], "few_est": [], "many_est": []}
        try:
            for size, count in (("few", few), ("many", self.p.many_services)):
                lab.restore(filler_rules(few - have, count - have))
                for _ in range(self.p.repeats):
                    for estimating, name in ((0, size), (1, f"{size}_est")):
                        lab.topo.sysctl(lab.topo.lb, net__ipv4__vs__run_estimation=estimating)
                        w = lab.udp_drop_rate(self.p.seconds)
                        runs[name].append(w)
                        log(f"  {count} services, estimation {'on' if estimating else 'off'}: "
                            f"UDP drops {w.describe()}")
        finally:
            lab.topo.sysctl(lab.topo.lb, net__ipv4__vs__run_estimation=1)
            lab.restore(filler_rules(0, self.p.many_services - have, verb="-D"))
            lab.ipvs.delete_service(svc)
        self.windows("udp_drop", runs)
        self.context["udp_drop_services"] = {"few": few, "many": self.p.many_services}
        for name in runs:
            self.result[f"udp_drop_{name}_pps"] = median([w.rate for w in runs[name]])
        self.put(key, median_figure(runs["many"], runs["few"]))
        self.context["udp_drop_50k_vs_10_ratio_estimating"] = median_figure(
            runs["many_est"], runs["few_est"])[0]

    # -------------------------------------------------------- exporter
    def exporter(self, lab: Lab) -> None:
        """lvs-exporter reading the balancer's namespace, with
        ``scraped_services`` more services of ``scraped_dests`` real servers
        each in the table: the time of one scrape (HTTP GET of /metrics, the
        kernel read and the text) and of its parts, and the FULLNAT forwarding
        rate while it is scraped, over the same without scrapes (paired
        runs), with the exporter on each CPU and every 15 s as Prometheus
        does.  Where the CPU time went is in the context (docs/benchmarks.md)."""
        n, k = self.p.scraped_services, self.p.scraped_dests
        first = self.p.many_services            # addresses no other step uses
        rules = filler_rules(first, first + n)
        rules += [f"-a -t {IPAddress(FILLER_BASE + i)}:80 -r 10.0.2.{100 + d}:80 -m"
                  for i in range(first, first + n) for d in range(k)]
        lab.restore(rules)
        scraper = Scraper(lab.topo.lb)
        port = UDP_FNAT if lab.fullnat else UDP_NAT
        base = BASE["pps_fnat" if lab.fullnat else "pps_nat"]
        ctx: dict[str, Any] = {"method": "fullnat" if lab.fullnat else "nat",
                               "dests_per_service": k, "generator_cpu": 0,
                               "balancer_softirq_cpu": lab.rps_cpu}
        try:
            times = [scraper.scrape_seconds() for _ in range(max(5, self.p.repeats))]
            ctx["services"] = services = scraper.services()
            if services < n:
                raise RuntimeError(f"the scrape shows {services} services, not {n}+")
            with lab.topo.inside(lab.topo.lb):
                ctx["scrape_parts_seconds"] = scrape_parts()
            log(f"  one scrape: {median(times):.2f} s over HTTP; parts "
                f"{ctx['scrape_parts_seconds']}")

            def window(scraping: Callable[[], Any] | None, seconds: float) -> dict:
                cpu0, exp0 = cpu_times(), scraper.cpu_seconds()
                scraper.last_run = {}     # filled by scraper.continuously only
                began = time.monotonic()
                if scraping is None:
                    r = lab.forward_rate(port, self.p.flows, base, seconds)
                    done = [0]
                else:
                    with scraping() as done:
                        r = lab.forward_rate(port, self.p.flows, base, seconds)
                shares = cpu_shares(cpu0, cpu_times())
                run = scraper.last_run
                return {"pps": r["pps"], "offered_pps": r["offered_pps"],
                        "saturation": r["window"].as_json(),
                        "scrapes": done[0], "cpu": shares,
                        "scrape_seconds": run.get("scrape_seconds"),
                        "scrape_error": run.get("error"),
                        "window_seconds": round(time.monotonic() - began, 1),
                        "exporter_cpu_seconds": round(scraper.cpu_seconds() - exp0, 2),
                        "exporter_cpus": scraper.cpus()}

            # where the exporter may run: anywhere (as installed), on the
            # balancer's softirq CPU, on the generator's CPU
            placements = {"any": None, "softirq_cpu": lab.rps_cpu, "generator_cpu": 0}
            runs: dict[str, dict[str, list]] = {}
            for name, cpu in placements.items():
                scraper.pin(cpu)
                idle, scraped = [], []
                for _ in range(self.p.repeats):
                    idle.append(window(None, self.p.seconds))
                    scraped.append(window(scraper.continuously, self.p.seconds))
                    log(f"  exporter on {name}: {idle[-1]['pps']:.0f} pps idle (offered "
                        f"{idle[-1]['offered_pps']:.0f}), {scraped[-1]['pps']:.0f} pps with "
                        f"{scraped[-1]['scrapes']} scrapes (offered "
                        f"{scraped[-1]['offered_pps']:.0f}); CPU idle {idle[-1]['cpu']}; "
                        f"CPU while scraped {scraped[-1]['cpu']}, exporter "
                        f"{scraped[-1]['exporter_cpu_seconds']} s on CPUs "
                        f"{scraped[-1]['exporter_cpus']}, scrapes of "
                        f"{scraped[-1]['scrape_seconds']} s, error {scraped[-1]['scrape_error']}")
                runs[name] = {"idle": idle, "scraped": scraped}
            # Control: a process that only burns CPU (no netlink, no /proc) on
            # the softirq CPU, as the exporter there (at its priority, and at
            # the default nice 0): if forwarding falls as far, the loss is the
            # CPU being busy, not what a scrape does.
            from ipvsadm_py.exporter.cli import DEFAULT_NICE
            for name, nice in (("busy_loop", DEFAULT_NICE), ("busy_loop_nice0", 0)):
                idle, scraped = [], []
                for _ in range(min(3, self.p.repeats)):
                    idle.append(window(None, self.p.seconds))
                    scraped.append(window(lambda: busy_loop(lab.rps_cpu, nice),
                                          self.p.seconds))
                    log(f"  busy loop (nice {nice}) on the softirq CPU: {idle[-1]['pps']:.0f} "
                        f"pps idle, {scraped[-1]['pps']:.0f} pps beside it")
                runs[name] = {"idle": idle, "scraped": scraped}
            # The figures: the exporter beside the balancer's softirq only (the
            # generator keeps its CPU; on the generator's CPU it halves the
            # offered load, "generator_cpu" in the context).
            scraper.pin(lab.rps_cpu)
            # Prometheus' usual interval: one scrape every 15 s, windows of 30 s
            long = 2 * INTERVAL
            idle, scraped = [], []
            for _ in range(0 if self.quick else min(3, self.p.repeats)):
                idle.append(window(None, long))
                scraped.append(window(lambda: scraper.continuously(INTERVAL), long))
                log(f"  every {INTERVAL:.0f} s: {idle[-1]['pps']:.0f} pps idle, "
                    f"{scraped[-1]['pps']:.0f} pps with {scraped[-1]['scrapes']} scrapes "
                    f"(seconds {scraped[-1]['scrape_seconds']}, error "
                    f"{scraped[-1]['scrape_error']}) in {scraped[-1]['window_seconds']} s; "
                    f"CPU {scraped[-1]['cpu']}")
            runs["interval"] = {"idle": idle, "scraped": scraped}
        finally:
            scraper.stop()
            lab.restore(filler_rules(first, first + n, verb="-D"))
        self.samples["exporter"] = {"scrape_seconds": times, "runs": runs}
        self.context["exporter"] = ctx

        def pair(name: str) -> tuple[float | None, str | None]:
            sides = [[Window.of(w["saturation"]) for w in runs[name][side]]
                     for side in ("scraped", "idle")]
            return paired_figure(*sides)
        ctx["ratios"] = {name: pair(name)[0] for name in runs}
        ctx["ratios_all_pairs"] = {
            name: paired_ratio([w["pps"] for w in runs[name]["scraped"]],
                               [w["pps"] for w in runs[name]["idle"]]) for name in runs}
        self.result["exporter_scrape_seconds"] = median(times)
        for key, name in (("scrape_vs_idle_pps_ratio", "softirq_cpu"),
                          ("scrape_every_15s_vs_idle_pps_ratio", "interval")):
            if self.quick and name == "interval":
                self.null(key, "quick mode: its windows take 30 s each")
            else:
                self.put(key, pair(name))

    # -------------------------------------------------------- TOA
    def toa(self, lab: Lab) -> None:
        """Accepted connections/s of a server asking for its clients'
        addresses behind FULLNAT (TOA on every handshake): toa.ko loaded,
        then neither and the BPF variant in pairs (attached to the server's
        cgroup and detached between windows).  toa.ko is loaded again at
        the end: one reload, not the loop multi-threaded TCG stumbled on."""
        from lvs_tools import toa_bpf, toa_bpf_steps

        if self.mttcg:
            for key in ("toa_ebpf_vs_none_cps_ratio", "toa_module_vs_none_cps_ratio"):
                self.null(key, "not measured under multi-threaded TCG: the step unloads and "
                               "reloads toa.ko, which only single-threaded TCG runs safely "
                               "(README, Tests)")
            return
        root = toa_bpf_steps.cgroup2_root()
        if root is None:
            raise RuntimeError("no cgroup v2 hierarchy in the guest")
        cgroup = root / "lvs-bench-toa"
        cgroup.mkdir(exist_ok=True)
        pins = Path("/sys/fs/bpf/lvs-bench-toa")
        toa_bpf_steps.mount_bpffs()
        bpf_ok = toa_bpf.has_bpf_loop()
        if bpf_ok:
            obj = toa_bpf_steps.object_source(None)[0] or \
                toa_bpf.build(Path(tempfile.mkdtemp(prefix="lvs-bench-")) / "toa.bpf.o")
            toa_bpf.unload(pins)
            toa_bpf.load(obj, pins)
        else:
            self.null("toa_ebpf_vs_none_cps_ratio",
                      "not available: this kernel has no bpf_loop() (5.17 or later)")
        module = Path("/sys/module/toa").exists()
        try:
            lab.toa_server(cgroup)
            runs: dict[str, list[Window]] = {"module": [], "none": [], "ebpf": []}
            lab.connect_rate(TCP_TOA, min(1.0, self.p.seconds))          # warm up
            stats = Path("/proc/net/toa_stats")
            before = _toa_ok(stats) if module else 0
            for _ in range(self.p.repeats if module else 0):
                runs["module"].append(lab.connect_rate(TCP_TOA, self.p.seconds)["window"])
                log(f"  toa.ko: {runs['module'][-1].describe()}")
            if module:
                self.context["toa_module_getname_toa_ok"] = _toa_ok(stats) - before
                sh("rmmod toa")
            # twice the pairs: a pair's two windows were seen 30 % apart
            # either way on the shared host
            prog_ns = window_ns = 0
            stats_switch = Path("/proc/sys/kernel/bpf_stats_enabled")
            with _bpf_stats(stats_switch):
                for _ in range(2 * self.p.repeats):
                    runs["none"].append(lab.connect_rate(TCP_TOA, self.p.seconds)["window"])
                    log(f"  neither: {runs['none'][-1].describe()}")
                    if not bpf_ok:
                        continue
                    toa_bpf.attach(cgroup, pins)
                    try:
                        ran = toa_bpf.run_time_ns(pins)
                        started = time.monotonic_ns()
                        runs["ebpf"].append(
                            lab.connect_rate(TCP_TOA, self.p.seconds)["window"])
                        window_ns += time.monotonic_ns() - started
                        prog_ns += toa_bpf.run_time_ns(pins) - ran
                    finally:
                        toa_bpf.detach(cgroup, pins)
                    log(f"  BPF variant: {runs['ebpf'][-1].describe()}")
            if window_ns:
                # the programs' own time (kernel.bpf_stats_enabled), as a share
                # of the windows' time on all CPUs
                self.context["toa_ebpf_programs_cpu_share"] = round(
                    prog_ns / (window_ns * (os.cpu_count() or 1)), 4)
            self.windows("toa_cps", runs)
            for name in runs:
                self.context[f"toa_{name}_cps"] = median([w.rate for w in runs[name]])
            if bpf_ok:
                seen = toa_bpf.stats(pins)
                self.context["toa_ebpf_counters"] = {k: v for k, v in seen.items() if v}
                if not seen["getname_toa_ok"]:
                    raise RuntimeError("the BPF variant named no client: no TOA reached "
                                       "the server, the figure would measure nothing")
                self.figure("toa_ebpf_vs_none_cps_ratio", runs, "ebpf", "none")
            if module:
                if not self.context["toa_module_getname_toa_ok"]:
                    raise RuntimeError("toa.ko named no client: no TOA reached the server")
                # not paired: toa.ko is measured before it is unloaded, once
                self.put("toa_module_vs_none_cps_ratio",
                         median_figure(runs["module"], runs["none"]))
            else:
                self.null("toa_module_vs_none_cps_ratio", "toa.ko is not loaded in this guest")
        finally:
            if bpf_ok:
                toa_bpf.detach(cgroup, pins)
                toa_bpf.unload(pins)
            if module and not Path("/sys/module/toa").exists():
                sh("modprobe toa")      # as the guest had it (tests may follow)

    def memory(self, lab: Lab) -> None:
        """Slab bytes per live UDP session: IPVS NAT, FULLNAT, and the
        nftables peer's conntrack entries (its table on while it fills)."""
        growth_by: dict[str, Any] = {}
        kinds = [("nat", VIP, UDP_NAT), ("fnat", VIP, UDP_FNAT),
                 ("nft", nft_peer.PEER_VIP, nft_peer.UDP_PORT)]
        for name, dst, port in kinds:
            key = f"bytes_per_session_{name}"
            if name == "fnat" and not lab.fullnat:
                self.null(key, "not available yet: FULLNAT is missing")
                continue
            if name == "nft" and lab.nft_missing:
                self.null(key, lab.nft_missing)
                continue
            before = slab()
            with lab.tables_for(name):
                made = lab.fill(f"udp_{name}", port, self.p.sessions, BASE[f"mem_{name}"],
                                dst=dst, count=lab.conntrack_count if name == "nft" else None)
                time.sleep(1)                  # RCU-freed objects of the fill are back
                after = slab()
            growth = slab_growth(before, after)
            count = made["sessions"]
            # Caches that grew by at least one byte per session are the
            # sessions' (ip_vs_conn or nf_conntrack, any kmalloc-N of a hash
            # entry or extension); the rest is the guest's background
            # (dentries, inodes, sk_buffs in flight).
            kept = {k: v for k, v in growth.items() if count and v >= count}
            total = sum(kept.values())
            top = dict(sorted(growth.items(), key=lambda kv: -abs(kv[1]))[:8])
            growth_by[name] = {"sessions": count, "slab_growth_bytes": total,
                               "counted_caches": kept,
                               "all_caches_growth_bytes": sum(growth.values()),
                               "largest_changes": top, "fill_seconds": made["seconds"]}
            log(f"  {name}: {count} sessions, slab +{total} bytes; top {top}")
            if count <= 0 or total <= 0:
                self.null(key, f"no measurable growth ({count} sessions, {total} bytes)")
            else:
                self.result[key] = round(total / count)
                if count < 100_000 and not self.quick:
                    self.reasons[key] = f"only {count} sessions (< 100,000) were created"
        self.context["memory"] = growth_by
        self.result["bytes_fnat_vs_nat_ratio"] = ratio(self.result["bytes_per_session_fnat"],
                                                       self.result["bytes_per_session_nat"])
        self.result["bytes_fnat_vs_nft_ratio"] = ratio(self.result["bytes_per_session_fnat"],
                                                       self.result["bytes_per_session_nft"])

    # -------------------------------------------------------- big table
    def lookup(self, lab: Lab) -> None:
        """Forwarding rate over every live session: ~1k live vs ~1M live."""
        if not lab.fullnat:
            self.null("lookup_1m_vs_1k_ratio", "not available yet: FULLNAT is missing")
            return
        made = lab.fill("udp_fnat", UDP_FNAT, self.p.big, BASE["big"])
        big: list[Window] = []
        hot: list[Window] = []
        for _ in range(self.p.repeats):
            r = lab.forward_rate(UDP_FNAT, self.p.big, BASE["big"], self.p.seconds)
            big.append(r["window"])
            log(f"  {self.p.big} flows over a table of {made['sessions']} new sessions: "
                f"{r['window'].describe()}")
            # context: the small flow set again, now beside the big table
            r = lab.forward_rate(UDP_FNAT, self.p.flows, BASE["pps_fnat"], self.p.seconds)
            hot.append(r["window"])
            log(f"  {self.p.flows} flows beside that table: {r['window'].describe()}")
        self.windows("lookup", {"big": big, "small_flows_big_table": hot})
        self.result["fnat_pps_big_table"] = median([w.rate for w in big])
        self.result["fnat_pps_small_flows_big_table"] = median([w.rate for w in hot])
        self.context["big_table_sessions"] = made["sessions"]
        self.context["big_table_fill_seconds"] = made["seconds"]
        self.context["small_table_flows"] = self.p.flows
        # the baseline: the FULLNAT windows of the packet-rate step (a small table)
        self.put("lookup_1m_vs_1k_ratio", median_figure(big, self.fnat_pps_windows))

    # -------------------------------------------------------- control plane
    def control(self, lab: Lab) -> None:
        from ipvsadm_py import bench as ctl

        r = ctl.measure(self.p.rules, self.p.services, self.p.repeats)
        self.context["control_plane"] = r
        self.result["restore_c_s"] = r["restore_c_s"]
        self.result["list_c_s"] = r["list_c_s"]
        self.result["restore_py_vs_c_ratio"] = r["restore_py_vs_c_ratio"]
        self.result["list_py_vs_c_ratio"] = r["list_py_vs_c_ratio"]

    # -------------------------------------------------------- keepalived
    def keepalived(self) -> None:
        r = ka_bench.measure(self.quick)
        self.context["keepalived"] = r.pop("context")
        self.result.update(r)

    # -------------------------------------------------------- all
    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        from tools.guest_init import kernel_log, kernel_log_problems

        with Lab(self.p) as lab:
            conn_tab = lab.ipvs.info().conn_tab_size
            self.context.update(rps_cpu=lab.rps_cpu, conn_tab_size=conn_tab,
                                fullnat=lab.fullnat, laddrs=self.p.laddrs)
            self.step("packet rates (pktgen, UDP; nftables peer)", lambda: self.pps(lab),
                      ("fnat_vs_nat_pps_ratio", "fnat_vs_nft_pps_ratio"))
            # UDP sessions never expire here (24 h timeout); the TCP ones of the
            # connection runs do (10 s after the reset), so memory comes first.
            self.step("memory per session (nftables peer)", lambda: self.memory(lab),
                      ("bytes_per_session_nat", "bytes_per_session_fnat",
                       "bytes_per_session_nft"))
            self.step("big session table", lambda: self.lookup(lab),
                      ("lookup_1m_vs_1k_ratio",))
            self.step("connections per second (nftables peer)", lambda: self.cps(lab),
                      ("fnat_vs_nat_cps_ratio", "fnat_vs_nft_cps_ratio"))
            self.step("HAProxy peer (connections, exchanges, idle memory)",
                      lambda: self.haproxy(lab),
                      ("fnat_vs_haproxy_cps_ratio", "fnat_vs_haproxy_pps_ratio",
                       "bytes_per_session_haproxy"))
            self.step("SYN/ACK floods (nftables peer)", lambda: self.floods(lab),
                      ("synproxy_vs_syncookie_ratio", "ackflood_drop_vs_synflood_ratio",
                       "synproxy_vs_nft_synproxy_ratio"))
            self.step("deny lists (nftables)", lambda: self.acl(lab),
                      ("acl_100k_vs_none_pps_ratio", "acl_drop_vs_synproxy_ratio"))
            self.step("UDP drops against the number of services", lambda: self.udp_drop(lab),
                      ("udp_drop_50k_vs_10_ratio",))
            self.step("lvs-exporter: scrape time, forwarding while scraped",
                      lambda: self.exporter(lab),
                      ("exporter_scrape_seconds", "scrape_vs_idle_pps_ratio",
                       "scrape_every_15s_vs_idle_pps_ratio"))
            self.step("connection sync: master on vs off, bytes per session",
                      lambda: self.sync(lab),
                      ("sync_vs_nosync_cps_ratio", "sync_bytes_per_session"))
            # its UDP sessions stay until the lab goes
            self.step("local port pool 99 % used vs empty", lambda: self.lport_pool(lab),
                      ("lport_full_vs_empty_cps_ratio",))
            # last: it unloads toa.ko (and loads it again at its end)
            self.step("TOA on the real server (toa.ko, BPF variant, neither)",
                      lambda: self.toa(lab),
                      ("toa_ebpf_vs_none_cps_ratio", "toa_module_vs_none_cps_ratio"))
            self.context["lb_ext_stats"] = {
                k: v for k, v in _ns_ext_stats(lab.topo.lb).items() if v}
            self.context["softnet_drops"] = softnet_drops()
        self.step("control plane (ipvsadm-py vs ipvsadm)", lambda: self.control(None),
                  ("restore_py_vs_c_ratio", "list_py_vs_c_ratio"))
        self.step("keepalived (load, health checks)", self.keepalived, ka_bench.KEYS)
        problems = kernel_log_problems(kernel_log())
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        out = {
            "kernel": os.uname().release,
            "guest_cpus": os.cpu_count(),
            "guest_memory_kb": int(mem),
            "repeats": self.p.repeats,
            "quick": self.quick,
            **self.result,
            "reasons": self.reasons,
            "targets": {k: list(v) for k, v in TARGETS.items()},
            "params": dataclasses.asdict(self.p),
            "context": self.context,
            "samples": self.samples,
            "kernel_log_problems": problems[:50],
            "seconds": round(time.monotonic() - started),
        }
        for key in KEYS:
            if out[key] is None and key not in self.reasons:
                out["reasons"][key] = "not measured"
        return out


class Scraper:
    """lvs-exporter (its own process, ``--netns``) on the guest's loopback."""

    def __init__(self, netns: str) -> None:
        netlab.run(["ip", "link", "set", "lo", "up"])
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.log_path = Path("/tmp/lvs-bench-exporter.log")
        with self.log_path.open("w") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ipvsadm_py.exporter", "--netns", netns,
                 "--listen", f"127.0.0.1:{self.port}"], cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=log_file)
        netlab.wait_for(self._ready, timeout=60)
        self._stop = threading.Event()
        self.last_run: dict[str, Any] = {}

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"lvs-exporter exited: {self.log_path.read_text()[-500:]}")
        try:
            self.get()
            return True
        except OSError:
            return False

    def get(self) -> str:
        import urllib.request

        with urllib.request.urlopen(self.url, timeout=120) as reply:
            return reply.read().decode()

    def scrape_seconds(self) -> float:
        t0 = time.monotonic()
        text = self.get()
        elapsed = time.monotonic() - t0
        if "\nlvs_up 1.0" not in text:
            raise RuntimeError("the exporter reports lvs_up 0")
        return elapsed

    def services(self) -> int:
        match = re.search(r"^lvs_services (\S+)$", self.get(), re.M)
        return int(float(match.group(1))) if match else 0

    def pin(self, cpu: int | None) -> None:
        """Run the exporter on one CPU (None: on any), all its threads."""
        cpus = set(range(os.cpu_count() or 1)) if cpu is None else {cpu}
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            os.sched_setaffinity(int(tid), cpus)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the exporter so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpus(self) -> list[int]:
        """The CPUs the exporter's threads last ran on (ps -o psr)."""
        out = []
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{self.proc.pid}/task/{tid}/stat").read_text()
                out.append(int(stat.rsplit(")", 1)[1].split()[36]))
        return sorted(set(out))

    @contextlib.contextmanager
    def continuously(self, every: float = 0.0):
        """Scrapes in a thread, back to back or one each ``every`` seconds
        (the first at once); yields [number done].  The seconds of each
        scrape and the error that ended the loop, if any, are in
        ``self.last_run`` afterwards."""
        done = [0]
        stop = threading.Event()
        self.last_run = {"scrape_seconds": [], "error": None}

        def loop() -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    self.get()
                except OSError as exc:
                    # the exporter is gone or did not answer: the count says so
                    self.last_run["error"] = repr(exc)
                    return
                self.last_run["scrape_seconds"].append(round(time.monotonic() - started, 2))
                done[0] += 1
                if every:
                    stop.wait(max(0.0, every - (time.monotonic() - started)))
        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield done
        finally:
            stop.set()
            thread.join(timeout=120)

    def stop(self) -> None:
        netlab.stop_process(self.proc)


INTERVAL = 15.0            # Prometheus' usual scrape interval (its default is 1 min)


@contextlib.contextmanager
def busy_loop(cpu: int | None, nice: int = 0):
    """A process spinning on ``cpu`` (None: any) at priority ``nice`` for the
    block; yields [0] (no scrapes: the shape of Scraper.continuously)."""
    proc = subprocess.Popen(["nice", "-n", str(nice), sys.executable, "-c", "while True: pass"])
    try:
        if cpu is not None:
            os.sched_setaffinity(proc.pid, {cpu})
        yield [0]
    finally:
        netlab.stop_process(proc)


def scrape_parts() -> dict[str, float]:
    """Seconds of each part of one scrape, read in this process (the
    caller's namespace): the netlink dumps and /proc reads, the samples, the
    text as the exporter writes it, and the client library's exposition of
    the same samples (what the exporter wrote before)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from ipvsadm_py.api import IPVS
    from ipvsadm_py.exporter import collect

    out = {}
    t0 = time.monotonic()
    with IPVS() as ipvs:
        reading = collect.read_balancer(ipvs)
    t1 = time.monotonic()
    families = collect.balancer_families(reading)
    t2 = time.monotonic()
    "".join(families.lines())
    t3 = time.monotonic()

    class Once:
        def collect(self):
            return iter(families)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Once())
    generate_latest(registry)
    t4 = time.monotonic()
    out = {"read_kernel": t1 - t0, "samples": t2 - t1, "text": t3 - t2,
           "library_text": t4 - t3}
    return {k: round(v, 3) for k, v in out.items()}


def cpu_times() -> dict[str, list[int]]:
    """Per CPU: the /proc/stat jiffies (user nice system idle iowait irq
    softirq steal), and NET_RX softirqs (/proc/softirqs)."""
    out: dict[str, list[int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            out[name] = [int(v) for v in vals[:8]]
    for line in Path("/proc/softirqs").read_text().splitlines():
        if line.strip().startswith("NET_RX:"):
            for i, v in enumerate(line.split()[1:]):
                out.setdefault(f"cpu{i}", [0] * 8).append(int(v))
    return out


def cpu_shares(before: dict[str, list[int]], after: dict[str, list[int]]) -> dict:
    """Per CPU, the share of user, system, softirq and idle time between two
    readings of :func:`cpu_times` (%), and the NET_RX softirqs run."""
    out = {}
    for cpu, new in after.items():
        old = before.get(cpu, [0] * len(new))
        d = [a - b for a, b in zip(new, old)]
        total = sum(d[:8]) or 1
        out[cpu] = {"user": round(100 * (d[0] + d[1]) / total),
                    "system": round(100 * d[2] / total),
                    "softirq": round(100 * d[6] / total),
                    "idle": round(100 * (d[3] + d[4]) / total),
                    "net_rx": d[8] if len(d) > 8 else None}
    return out


def _ns_ext_stats(ns: str) -> dict[str, int]:
    """The extended counters of namespace ``ns`` (totals over all CPUs; empty
    without the file), read in this process: /proc/thread-self/net is that
    of the namespace this thread is in (/proc/self/net is the main
    thread's), and no process is launched (a large part of a second under
    emulation, longer than a quick window)."""
    from pyroute2 import netns as pyr_netns

    from ipvsadm_py import procfs

    pyr_netns.pushns(ns)
    try:
        path = Path("/proc/thread-self/net", Path(procfs.EXT_STATS_PROC).name)
        text = path.read_text() if path.exists() else ""
    finally:
        pyr_netns.popns()
    return procfs.parse_ext_stats(text)


def softnet_drops() -> list[int]:
    """Per-CPU backlog drops (second column of /proc/net/softnet_stat)."""
    return [int(line.split()[1], 16)
            for line in Path("/proc/net/softnet_stat").read_text().splitlines()]


@contextlib.contextmanager
def fd_limit_raised():
    """As many open files as the kernel allows (fs.nr_open) for this process
    and the programs it starts meanwhile: the idle-connection figure holds
    tens of thousands of sockets in ``gen hold``, ``gen echo`` and HAProxy.
    Root in the guest may raise its hard limit; elsewhere the limits stay.
    The old limits come back after (the test guest's pytest goes on)."""
    import resource

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (nr_open, nr_open))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, before)


def run(quick: bool = False, only: str | None = None, mttcg: bool = False) -> dict[str, Any]:
    with fd_limit_raised():
        return Bench(QUICK if quick else FULL, quick, only, mttcg).run()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", metavar="WORD",
                    help="run only the steps whose name contains WORD (e.g. exporter)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--mttcg", action="store_true",
                    help="the guest runs QEMU's multi-threaded TCG: no step reloads a module")
    args = ap.parse_args(argv)
    result = run(args.quick, args.only, args.mttcg)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
