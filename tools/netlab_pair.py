"""A balancer pair behind a router, for VRRP fail-over tests.

::

                      10.0.1.0/24          10.0.4.0/24 (front)
    +--------+              +------------------------+
    | client |eth0 ---- eth0|        router          |
    +--------+ .2           | .1   br-front .1       |
                            |   f1 |        | f2     |
                            |      |        |        |     br-back: a switch
                            |   b1 |        | b2     |     (no address), the
                            |  br-back ---- r1 r2 .. |     real servers' L2
                            +------------------------+
                                   |        |      \\ \\
                   eth0 .11 +-----+    +-----+ eth0 .12    +-----+
                            | lb1 |    | lb2 |             | rsN | 10.0.2.1N
                   eth1 .2  +-----+    +-----+ eth1 .3     +-----+
                                 10.0.2.0/24 (back)

Both balancers run keepalived with the same virtual servers; VRRP on the
front link moves the VIP (front subnet) and the local addresses (back
subnet, on eth1) to the master.  The real servers have no route but their
own subnet: they answer the local addresses, which must follow the master.
"""

from __future__ import annotations

import dataclasses
import time

from tools import netlab

CLIENT, ROUTER_C = "10.0.1.2", "10.0.1.1"
ROUTER_F = "10.0.4.1"
VIP = "10.0.4.100"
LB_FRONT = {1: "10.0.4.11", 2: "10.0.4.12"}
LB_BACK = {1: "10.0.2.2", 2: "10.0.2.3"}
LADDRS = ("10.0.2.201", "10.0.2.202")


def rs_addr(index: int) -> str:
    return f"10.0.2.{10 + index}"


@dataclasses.dataclass
class PairTopology(netlab.Namespaces):
    """Namespaces ``client``, ``router``, ``lb1``, ``lb2``, ``rs1..rsN``."""

    n_rs: int = 2
    prefix: str = "p-"

    @property
    def client(self) -> str:
        return self.prefix + "client"

    @property
    def router(self) -> str:
        return self.prefix + "router"

    def lb(self, index: int) -> str:
        return f"{self.prefix}lb{index}"

    def rs(self, index: int) -> str:
        return f"{self.prefix}rs{index}"

    @property
    def servers(self) -> list[str]:
        return [self.rs(i) for i in range(1, self.n_rs + 1)]

    # ------------------------------------------------------------ helpers
    def addresses(self, ns: str) -> set[str]:
        """IPv4 addresses configured in ``ns``."""
        out = self.sh(ns, "ip -4 -o addr show").stdout
        return {line.split()[3].split("/")[0] for line in out.splitlines()}

    # ------------------------------------------------------------ life cycle
    def _veth(self, a: str, a_dev: str, b: str, b_dev: str) -> None:
        netlab.run(["ip", "-n", a, "link", "add", a_dev, "type", "veth", "peer", "name",
                    b_dev, "netns", b])

    def up(self) -> "PairTopology":
        for name in (self.client, self.router, self.lb(1), self.lb(2), *self.servers):
            self._add_ns(name)
        self._veth(self.client, "eth0", self.router, "eth0")
        self.ip_batch(self.client, ["link set eth0 up", f"addr add {CLIENT}/24 dev eth0",
                                    f"route add default via {ROUTER_C}"])
        netlab.run(["ip", "netns", "exec", self.router, "sysctl", "-qw",
                    "net.ipv4.ip_forward=1"])
        self.ip_batch(self.router, [
            "link set eth0 up", f"addr add {ROUTER_C}/24 dev eth0",
            "link add br-front type bridge", "link set br-front up",
            f"addr add {ROUTER_F}/24 dev br-front",
            "link add br-back type bridge", "link set br-back up"])
        for i in (1, 2):
            self._wire_lb(i)
        for i in range(1, self.n_rs + 1):
            self._veth(self.router, f"r{i}", self.rs(i), "eth0")
            self.ip_batch(self.router, [f"link set r{i} master br-back", f"link set r{i} up"])
            self.ip_batch(self.rs(i), ["link set eth0 up", f"addr add {rs_addr(i)}/24 dev eth0"])
        self.wait_reachable()
        return self

    def _wire_lb(self, i: int) -> None:
        lb = self.lb(i)
        self._veth(self.router, f"f{i}", lb, "eth0")
        self._veth(self.router, f"b{i}", lb, "eth1")
        self.ip_batch(self.router, [f"link set f{i} master br-front", f"link set f{i} up",
                                    f"link set b{i} master br-back", f"link set b{i} up"])
        netlab.run(["ip", "netns", "exec", lb, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.ip_batch(lb, ["link set eth0 up", f"addr add {LB_FRONT[i]}/24 dev eth0",
                           "link set eth1 up", f"addr add {LB_BACK[i]}/24 dev eth1",
                           f"route add default via {ROUTER_F}"])

    def wait_reachable(self, timeout: float = 30) -> None:
        targets = [(self.client, ROUTER_C)]
        targets += [(self.lb(i), ROUTER_F) for i in (1, 2)]
        targets += [(self.lb(i), rs_addr(r)) for i in (1, 2) for r in range(1, self.n_rs + 1)]
        self.ping_until(targets, timeout)

    def ping_until(self, targets: list[tuple[str, str]], timeout: float) -> None:
        """Poll until every (namespace, address) answers a ping."""
        deadline = time.monotonic() + timeout
        for ns, addr in targets:
            while self.sh(ns, f"ping -c1 -W1 {addr}", check=False).returncode:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{addr} is not reachable from {ns}")
                time.sleep(0.2)

    def cut(self, i: int) -> None:
        """Take balancer ``i``'s front link down at the router (no carrier)."""
        self.ip_batch(self.router, [f"link set f{i} down"])
