"""Balancers side by side behind an ECMP router, for the cluster tests.

::

                       10.0.1.0/24            10.0.4.0/24 (front, BGP)
    +--------+              +---------------------------+
    | client |eth0 ---- eth0|          router           |---- f1 ---- eth0 lb1 .11
    +--------+ .2           | .1   br-front .1          |---- f2 ---- eth0 lb2 .12
                            |      br-back  .1          |---- f3 ---- eth0 lb3 .13
                            +---------------------------+
                                  | r1 r2 ...
                            rs1 .11, rs2 .12 ... (10.0.2.0/24, default via .1)

The balancers have one arm (eth0, default route via the router) and their
local addresses 10.1.N.1-2 on ``lo``; each announces 10.1.N.0/24 and the
VIP over BGP, so the router sends the client's flows to the balancers by
ECMP (hashed on L4: ``fib_multipath_hash_policy=1``) and the real servers'
replies (default route via the router) to the balancer owning the local
address.  The router runs BIRD with ``merge paths on``; the lab only wires
and writes the router's BIRD configuration.
"""

from __future__ import annotations

import dataclasses

from tools import netlab
from tools.netlab_pair import PairTopology

CLIENT, ROUTER_C = "10.0.1.2", "10.0.1.1"
ROUTER_F, ROUTER_B = "10.0.4.1", "10.0.2.1"
ROUTER_ASN, LB_ASN = 65000, 65100
VIP = "10.0.0.100"


def lb_front(index: int) -> str:
    return f"10.0.4.{10 + index}"


def laddrs(index: int) -> list[str]:
    return [f"10.1.{index}.1", f"10.1.{index}.2"]


def laddr_prefix(index: int) -> str:
    return f"10.1.{index}.0/24"


def rs_addr(index: int) -> str:
    return f"10.0.2.{10 + index}"


def router_bird_conf(n_lb: int, hold: int) -> str:
    """The router's BIRD: BGP with every balancer, imported routes merged into
    multipath kernel routes."""
    out = [f"router id {ROUTER_F};", "protocol device { scan time 10; }",
           "protocol kernel {", "    merge paths on;",
           "    ipv4 { import none; export all; };", "}"]
    for i in range(1, n_lb + 1):
        out += [f"protocol bgp lb{i} {{", f"    local {ROUTER_F} as {ROUTER_ASN};",
                f"    neighbor {lb_front(i)} as {LB_ASN};",
                f"    hold time {hold};", f"    keepalive time {max(1, hold // 3)};",
                "    connect retry time 2;", "    error wait time 1, 10;",
                "    ipv4 { import all; export none; };", "}"]
    return "\n".join(out) + "\n"


@dataclasses.dataclass
class ClusterTopology(PairTopology):
    """Namespaces ``client``, ``router``, ``lb1..lbN``, ``rs1..rsM``."""

    n_lb: int = 3
    prefix: str = "c-"

    def up(self) -> "ClusterTopology":
        for name in (self.client, self.router, *self.balancers, *self.servers):
            self._add_ns(name)
        self._veth(self.client, "eth0", self.router, "eth0")
        self.ip_batch(self.client, ["link set eth0 up", f"addr add {CLIENT}/24 dev eth0",
                                    f"route add default via {ROUTER_C}"])
        netlab.run(["ip", "netns", "exec", self.router, "sysctl", "-qw",
                    "net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1"])
        self.ip_batch(self.router, [
            "link set eth0 up", f"addr add {ROUTER_C}/24 dev eth0",
            "link add br-front type bridge", "link set br-front up",
            f"addr add {ROUTER_F}/24 dev br-front",
            "link add br-back type bridge", "link set br-back up",
            f"addr add {ROUTER_B}/24 dev br-back"])
        for i in range(1, self.n_lb + 1):
            lb = self.lb(i)
            self._veth(self.router, f"f{i}", lb, "eth0")
            self.ip_batch(self.router, [f"link set f{i} master br-front", f"link set f{i} up"])
            netlab.run(["ip", "netns", "exec", lb, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
            self.ip_batch(lb, ["link set eth0 up", f"addr add {lb_front(i)}/24 dev eth0",
                               f"route add default via {ROUTER_F}"]
                          + [f"addr add {a}/32 dev lo" for a in laddrs(i)])
        for i in range(1, self.n_rs + 1):
            self._veth(self.router, f"r{i}", self.rs(i), "eth0")
            self.ip_batch(self.router, [f"link set r{i} master br-back", f"link set r{i} up"])
            self.ip_batch(self.rs(i), ["link set eth0 up", f"addr add {rs_addr(i)}/24 dev eth0",
                                       f"route add default via {ROUTER_B}"])
        self.wait_reachable()
        return self

    @property
    def balancers(self) -> list[str]:
        return [self.lb(i) for i in range(1, self.n_lb + 1)]

    def wait_reachable(self, timeout: float = 30) -> None:
        targets = [(self.client, ROUTER_C)] + [(lb, ROUTER_F) for lb in self.balancers]
        targets += [(lb, rs_addr(r)) for lb in self.balancers for r in range(1, self.n_rs + 1)]
        self.ping_until(targets, timeout)

    def nexthops(self, dst: str = VIP) -> set[str]:
        """The gateways of the router's route to ``dst`` (empty: no route)."""
        out = self.sh(self.router, f"ip -4 route show {dst}/32", check=False).stdout
        return {words[words.index("via") + 1] for line in out.splitlines()
                if "via" in (words := line.split())}
