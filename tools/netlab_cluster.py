"""Balancers side by side behind an ECMP router, for the cluster tests.

::

                       10.0.1.0/24            10.0.4.0/24 (front, BGP)
                       2001:db8:1::/64        2001:db8:4::/64
    +---------+             +---------------------------+
    | client  |eth0 -- eth0 |          router           |---- f1 ---- eth0 lb1 .11
    +---------+ .2          | .1   br-front .1          |---- f2 ---- eth0 lb2 .12
    +---------+             |      br-back  .1          |---- f3 ---- eth0 lb3 .13
    | client2 |eth0 -- eth1 | .1                        |
    +---------+ .2          +---------------------------+
      10.0.3.0/24,                | r1 r2 ...
      2001:db8:3::/64       rs1 .11, rs2 .12 ... (10.0.2.0/24, default via .1;
                                                  2001:db8:2::/64, ::11, ::12 ...)

The balancers have one arm (eth0, default route via the router) and their
local addresses 10.1.N.1-2 and 2001:db8:a:N::1-2 on ``lo``; each announces
10.1.N.0/24, 2001:db8:a:N::/64 and the VIPs (10.0.0.100, 2001:db8::100)
over BGP, a session per address family, so the router sends the clients'
flows to the balancers by ECMP (hashed on L4: ``fib_multipath_hash_policy=1``
for both families) and the real servers' replies (default route via the
router) to the balancer owning the local address.  The router runs BIRD
with ``merge paths on`` and, with ``bfd``, BFD on every session; the lab
only wires and writes the router's BIRD configuration.
"""

from __future__ import annotations

import dataclasses

from lvs_tools.cluster.bird import bfd_protocol
from tools import netlab
from tools.netlab_pair import PairTopology

CLIENT, ROUTER_C = "10.0.1.2", "10.0.1.1"
ROUTER_F, ROUTER_B = "10.0.4.1", "10.0.2.1"
ROUTER_ASN, LB_ASN = 65000, 65100
VIP = "10.0.0.100"
CLIENT6, ROUTER_C6 = "2001:db8:1::2", "2001:db8:1::1"
#: the second client, on the router's eth1 (10.0.3.0/24, 2001:db8:3::/64)
CLIENT2, ROUTER_C2 = "10.0.3.2", "10.0.3.1"
CLIENT2_6, ROUTER_C2_6 = "2001:db8:3::2", "2001:db8:3::1"
ROUTER_F6, ROUTER_B6 = "2001:db8:4::1", "2001:db8:2::1"
VIP6 = "2001:db8::100"
#: BFD of the router and the balancers: 200 ms both ways, down after 5
#: missed (1 s)
BFD_TIMERS = (200, 5)


def lb_front(index: int, family: int = 4) -> str:
    return f"10.0.4.{10 + index}" if family == 4 else f"2001:db8:4::{10 + index}"


def laddrs(index: int, family: int = 4) -> list[str]:
    if family == 6:
        return [f"2001:db8:a:{index}::1", f"2001:db8:a:{index}::2"]
    return [f"10.1.{index}.1", f"10.1.{index}.2"]


def laddr_prefix(index: int, family: int = 4) -> str:
    return f"10.1.{index}.0/24" if family == 4 else f"2001:db8:a:{index}::/64"


def rs_addr(index: int, family: int = 4) -> str:
    return f"10.0.2.{10 + index}" if family == 4 else f"2001:db8:2::{10 + index}"


def router_bird_conf(n_lb: int, hold: int, bfd: bool = False) -> str:
    """The router's BIRD: a BGP session per balancer and family (BFD on each
    with ``bfd``), imported routes merged into multipath kernel routes."""
    out = [f"router id {ROUTER_F};", "protocol device { scan time 10; }"]
    for family in (4, 6):
        out += [f"protocol kernel kernel{family} {{", "    merge paths on;",
                f"    ipv{family} {{ import none; export all; }};", "}"]
    if bfd:
        out += bfd_protocol(BFD_TIMERS)
    for i in range(1, n_lb + 1):
        for family, local in ((4, ROUTER_F), (6, ROUTER_F6)):
            out += [f"protocol bgp lb{i}v{family} {{", f"    local {local} as {ROUTER_ASN};",
                    f"    neighbor {lb_front(i, family)} as {LB_ASN};",
                    f"    hold time {hold};", f"    keepalive time {max(1, hold // 3)};",
                    "    connect retry time 2;", "    error wait time 1, 10;"]
            out += ["    bfd on;"] if bfd else []
            out += [f"    ipv{family} {{ import all; export none; }};", "}"]
    return "\n".join(out) + "\n"


@dataclasses.dataclass
class ClusterTopology(PairTopology):
    """Namespaces ``client``, ``router``, ``lb1..lbN``, ``rs1..rsM``."""

    n_lb: int = 3
    prefix: str = "c-"

    def up(self) -> "ClusterTopology":
        for name in (self.client, self.client2, self.router, *self.balancers, *self.servers):
            self._add_ns(name)
        for dev, (ns, addr, addr6), (gw, gw6) in zip(("eth0", "eth1"), self.clients,
                                                     self.client_gateways):
            self._veth(ns, "eth0", self.router, dev)
            self.ip_batch(ns, ["link set eth0 up", f"addr add {addr}/24 dev eth0",
                               f"addr add {addr6}/64 dev eth0 nodad",
                               f"route add default via {gw}", f"route add default via {gw6}"])
            self.ip_batch(self.router, [f"link set {dev} up", f"addr add {gw}/24 dev {dev}",
                                        f"addr add {gw6}/64 dev {dev} nodad"])
        netlab.run(["ip", "netns", "exec", self.router, "sysctl", "-qw",
                    "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1",
                    "net.ipv6.conf.all.forwarding=1", "net.ipv6.fib_multipath_hash_policy=1"])
        self.ip_batch(self.router, [
            "link add br-front type bridge", "link set br-front up",
            f"addr add {ROUTER_F}/24 dev br-front", f"addr add {ROUTER_F6}/64 dev br-front nodad",
            "link add br-back type bridge", "link set br-back up",
            f"addr add {ROUTER_B}/24 dev br-back", f"addr add {ROUTER_B6}/64 dev br-back nodad"])
        for i in range(1, self.n_lb + 1):
            lb = self.lb(i)
            self._veth(self.router, f"f{i}", lb, "eth0")
            self.ip_batch(self.router, [f"link set f{i} master br-front", f"link set f{i} up"])
            netlab.run(["ip", "netns", "exec", lb, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                        "net.ipv6.conf.all.forwarding=1"])
            self.ip_batch(lb, ["link set eth0 up", f"addr add {lb_front(i)}/24 dev eth0",
                               f"addr add {lb_front(i, 6)}/64 dev eth0 nodad",
                               f"route add default via {ROUTER_F}",
                               f"route add default via {ROUTER_F6}"]
                          + [f"addr add {a}/32 dev lo" for a in laddrs(i)]
                          + [f"addr add {a}/128 dev lo nodad" for a in laddrs(i, 6)])
        for i in range(1, self.n_rs + 1):
            self._veth(self.router, f"r{i}", self.rs(i), "eth0")
            self.ip_batch(self.router, [f"link set r{i} master br-back", f"link set r{i} up"])
            self.ip_batch(self.rs(i), ["link set eth0 up", f"addr add {rs_addr(i)}/24 dev eth0",
                                       f"addr add {rs_addr(i, 6)}/64 dev eth0 nodad",
                                       f"route add default via {ROUTER_B}",
                                       f"route add default via {ROUTER_B6}"])
        self.wait_reachable()
        return self

    @property
    def client2(self) -> str:
        return self.prefix + "client2"

    @property
    def clients(self) -> list[tuple[str, str, str]]:
        """(namespace, IPv4 address, IPv6 address) of each client."""
        return [(self.client, CLIENT, CLIENT6), (self.client2, CLIENT2, CLIENT2_6)]

    @property
    def client_gateways(self) -> list[tuple[str, str]]:
        """The router's (IPv4, IPv6) address on each client's link."""
        return [(ROUTER_C, ROUTER_C6), (ROUTER_C2, ROUTER_C2_6)]

    @property
    def balancers(self) -> list[str]:
        return [self.lb(i) for i in range(1, self.n_lb + 1)]

    def wait_reachable(self, timeout: float = 30) -> None:
        targets = [(ns, gw) for (ns, *_), gws in zip(self.clients, self.client_gateways)
                   for gw in gws]
        targets += [(lb, router) for lb in self.balancers for router in (ROUTER_F, ROUTER_F6)]
        targets += [(lb, rs_addr(r, family)) for lb in self.balancers
                    for r in range(1, self.n_rs + 1) for family in (4, 6)]
        self.ping_until(targets, timeout)

    def nexthops(self, dst: str = VIP) -> set[str]:
        """The gateways of the router's route to ``dst`` (empty: no route)."""
        family, plen = (6, 128) if ":" in dst else (4, 32)
        out = self.sh(self.router, f"ip -{family} route show {dst}/{plen}", check=False).stdout
        return {words[words.index("via") + 1] for line in out.splitlines()
                if "via" in (words := line.split())}
