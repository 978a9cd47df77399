"""A lab of network namespaces: a client, a balancer and real servers.

Used by the kernel tests and by the demo.

::

                 10.0.1.0/24                         10.0.2.0/24
              2001:db8:1::/64                     2001:db8:2::/64
   +--------+               +----------------+                 +-------+
   | client |eth0 ----- eth0|       lb       |br0 --+-- eth0   |  rs1  | .11 / ::11
   +--------+ .2 / ::2      | .1 / ::1       |.1/::1 |         +-------+
                            | vip0: VIPs     |       +-- eth0  |  rs2  | .12 / ::12
                            | lo:  LADDRs    |       ...       +-------+
                            +----------------+

The client knows only its own subnet and a default route to the balancer.
Real servers sit on a bridge in the balancer's namespace (one L2 segment,
as DR needs); their routes are chosen per test: ``default`` (via the
balancer, as NAT/DR/TUNNEL need) or a list of prefixes (FULLNAT: only the
local-address subnet, so the client is unreachable from them).

Every namespace has a short name; ``Topology.sh(ns, cmd)`` runs a shell
command in one and ``Topology.inside(ns)`` creates sockets there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import threading
import time
from typing import Iterator, Sequence

from pyroute2 import netns as pyr_netns

CLIENT4, LB_C4 = "10.0.1.2", "10.0.1.1"
CLIENT6, LB_C6 = "2001:db8:1::2", "2001:db8:1::1"
LB_R4, LB_R6 = "10.0.2.1", "2001:db8:2::1"
VIP4, VIP6 = "10.0.0.100", "2001:db8:100::100"
LADDR_NET4, LADDR_NET6 = "10.0.3.0/24", "2001:db8:3::/64"


def rs_addr(index: int, family: int = 4) -> str:
    """Address of real server ``index`` (1-based)."""
    return f"10.0.2.{10 + index}" if family == 4 else f"2001:db8:2::{10 + index:x}"


def vip(family: int) -> str:
    return VIP4 if family == 4 else VIP6


def client_addr(family: int) -> str:
    return CLIENT4 if family == 4 else CLIENT6


def hostport(addr: str, port: int) -> str:
    """``10.0.0.1:80`` or ``[2001:db8::1]:80``, as ipvsadm takes them."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def hex_addr(addr: str) -> str:
    """An address as /proc/net/ip_vs_conn prints it (%08X, or %pI6)."""
    if ":" in addr:
        packed = socket.inet_pton(socket.AF_INET6, addr)
        return ":".join(packed[i:i + 2].hex() for i in range(0, 16, 2))
    return socket.inet_aton(addr).hex().upper()


def wait_for(predicate, timeout: float = 30, interval: float = 0.2, what: str = ""):
    """Poll until ``predicate()`` is truthy; returns its value or raises
    TimeoutError (naming ``what`` was awaited)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what or 'condition'} not met within {timeout} s")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not exited within ``timeout``
    seconds; returns once it is reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run(cmd: Sequence[str] | str, *, check: bool = True, input: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command (a list, or a string for the shell), capturing its output."""
    res = subprocess.run(cmd, shell=isinstance(cmd, str), text=True, capture_output=True,
                         input=input, timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    return res


@dataclasses.dataclass
class Namespaces:
    """The network namespaces of a lab: made by ``up()`` (a subclass's
    wiring), all removed by ``down()``; a ``with`` block does both."""

    created: list[str] = dataclasses.field(default_factory=list)

    def sh(self, ns: str, cmd: str, *, check: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a shell command in namespace ``ns``."""
        return run(["ip", "netns", "exec", ns, "sh", "-c", cmd], check=check,
                   timeout=timeout)

    def ip_batch(self, ns: str, lines: Sequence[str]) -> None:
        run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")

    @contextlib.contextmanager
    def inside(self, ns: str) -> Iterator[None]:
        """Sockets created in this block belong to namespace ``ns``."""
        pyr_netns.pushns(ns)
        try:
            yield
        finally:
            pyr_netns.popns()

    def _add_ns(self, name: str) -> None:
        run(["ip", "netns", "add", name])
        self.created.append(name)
        self.ip_batch(name, ["link set lo up"])

    def up(self) -> "Namespaces":
        raise NotImplementedError

    def down(self) -> None:
        for name in reversed(self.created):
            run(["ip", "netns", "del", name], check=False)
        self.created.clear()

    def __enter__(self):
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()


@dataclasses.dataclass
class Topology(Namespaces):
    """Namespaces ``client``, ``lb``, ``rs1..rsN`` wired as in the drawing."""

    n_rs: int = 2
    rs_routes: Sequence[str] | str = "default"
    client_routes: Sequence[str] | str = "default"
    prefix: str = ""

    # ------------------------------------------------------------ names
    @property
    def client(self) -> str:
        return self.prefix + "client"

    @property
    def lb(self) -> str:
        return self.prefix + "lb"

    def rs(self, index: int) -> str:
        return f"{self.prefix}rs{index}"

    @property
    def servers(self) -> list[str]:
        return [self.rs(i) for i in range(1, self.n_rs + 1)]

    # ------------------------------------------------------------ helpers
    def sysctl(self, ns: str, **values: object) -> None:
        args = [f"{k.replace('__', '.')}={v}" for k, v in values.items()]
        run(["ip", "netns", "exec", ns, "sysctl", "-qw", *args])

    def ext_stats(self) -> dict[str, int]:
        """The balancer's extended counters (/proc/net/ip_vs_ext_stats of
        its namespace, totals over all CPUs)."""
        from ipvsadm_py import IPVS   # the library's reader; imported late
        with self.inside(self.lb):
            return IPVS.ext_stats()

    def ipvsadm(self, args: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The stock ipvsadm, in the balancer's namespace."""
        return self.sh(self.lb, f"ipvsadm {args}", check=check)

    # ------------------------------------------------------------ life cycle
    def _add_ns(self, name: str) -> None:
        super()._add_ns(name)
        # Addresses must be usable at once: no duplicate address detection.
        self.sysctl(name, net__ipv6__conf__all__accept_dad=0,
                    net__ipv6__conf__default__accept_dad=0)

    def up(self) -> "Topology":
        for name in (self.client, self.lb, *self.servers):
            self._add_ns(name)
        self._wire_client()
        self._wire_lb()
        for index in range(1, self.n_rs + 1):
            self._wire_rs(index)
        self.wait_reachable()
        return self

    def _wire_client(self) -> None:
        run(["ip", "-n", self.client, "link", "add", "eth0", "type", "veth",
             "peer", "name", "eth0", "netns", self.lb])
        lines = ["link set eth0 up",
                 f"addr add {CLIENT4}/24 dev eth0",
                 f"addr add {CLIENT6}/64 dev eth0 nodad"]
        if self.client_routes == "default":
            lines += [f"route add default via {LB_C4}", f"route add ::/0 via {LB_C6}"]
        else:
            lines += [f"route add {prefix} via {LB_C6 if ':' in prefix else LB_C4}"
                      for prefix in self.client_routes]
        self.ip_batch(self.client, lines)

    def _wire_lb(self) -> None:
        self.sysctl(self.lb, net__ipv4__ip_forward=1,
                    net__ipv6__conf__all__forwarding=1)
        self.ip_batch(self.lb, [
            "link set eth0 up",
            f"addr add {LB_C4}/24 dev eth0",
            f"addr add {LB_C6}/64 dev eth0 nodad",
            "link add br0 type bridge",
            "link set br0 up",
            f"addr add {LB_R4}/24 dev br0",
            f"addr add {LB_R6}/64 dev br0 nodad",
            "link add vip0 type dummy",
            "link set vip0 up",
            f"addr add {VIP4}/32 dev vip0",
            f"addr add {VIP6}/128 dev vip0 nodad",
        ])

    def _wire_rs(self, index: int) -> None:
        name = self.rs(index)
        port = f"p{index}"
        run(["ip", "-n", name, "link", "add", "eth0", "type", "veth",
             "peer", "name", port, "netns", self.lb])
        self.ip_batch(self.lb, [f"link set {port} master br0", f"link set {port} up"])
        lines = ["link set eth0 up",
                 f"addr add {rs_addr(index, 4)}/24 dev eth0",
                 f"addr add {rs_addr(index, 6)}/64 dev eth0 nodad"]
        if self.rs_routes == "default":
            lines += [f"route add default via {LB_R4}", f"route add ::/0 via {LB_R6}"]
        else:
            lines += [f"route add {prefix} via {LB_R6 if ':' in prefix else LB_R4}"
                      for prefix in self.rs_routes]
        self.ip_batch(name, lines)

    def wait_reachable(self, timeout: float = 20) -> None:
        """Poll until the balancer reaches every server and the client (ND/ARP)."""
        targets = [(self.lb, CLIENT4), (self.lb, CLIENT6)]
        targets += [(self.lb, rs_addr(i, f)) for i in range(1, self.n_rs + 1) for f in (4, 6)]
        deadline = time.monotonic() + timeout
        for ns, addr in targets:
            while self.sh(ns, f"ping -c1 -W1 {addr}", check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{addr} is not reachable from {ns}")
                time.sleep(0.2)

    # ------------------------------------------------------------ RS setups
    def rs_for_dr(self, family: int) -> None:
        """VIP on each server's loopback, without answering ARP for it
        (again for the same family: nothing changes)."""
        for name in self.servers:
            self.sysctl(name, net__ipv4__conf__all__arp_ignore=1,
                        net__ipv4__conf__all__arp_announce=2)
            self.ip_batch(name, [f"addr replace {vip(family)}/{32 if family == 4 else 128} "
                                 f"dev lo{' nodad' if family == 6 else ''}"])

    def rs_for_tunnel(self, family: int) -> None:
        """IPIP (IPv4) or ip6ip6 (IPv6) decapsulation with the VIP on the tunnel
        (again for the same family: nothing changes)."""
        run(["modprobe", "ipip" if family == 4 else "ip6_tunnel"])
        dev = "tunl0" if family == 4 else "ip6tnl0"
        for name in self.servers:
            if family == 4:
                self.sysctl(name, net__ipv4__conf__all__rp_filter=0,
                            net__ipv4__conf__default__rp_filter=0,
                            net__ipv4__conf__tunl0__rp_filter=0)
            self.ip_batch(name, [f"link set {dev} up",
                                 f"addr replace {vip(family)}/{32 if family == 4 else 128} "
                                 f"dev {dev}{' nodad' if family == 6 else ''}"])


class Capture:
    """tcpdump in a namespace, written to a pcap file; read with scapy.

    ::

        with Capture(topo, "rs1", "eth0", "tcp port 80", path) as cap:
            ...traffic...
        packets = cap.packets()
    """

    def __init__(self, topo: Topology, ns: str, iface: str, bpf: str,
                 path: str, snaplen: int = 256) -> None:
        # --immediate-mode: hand over every packet at once, so none is
        # still in a kernel block when the capture is stopped; ``snaplen``
        # bytes of each packet (headers and some data by default)
        self.argv = ["ip", "netns", "exec", ns, "tcpdump", "--immediate-mode", "-U",
                     "-n", "-i", iface, "-s", str(snaplen), "-w", str(path), bpf]
        self.path = str(path)
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> "Capture":
        self.proc = subprocess.Popen(self.argv, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # "listening on ...": capture is armed
        if "listening" not in line:
            self.proc.kill()
            raise RuntimeError(f"tcpdump did not start: {line}")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        # tcpdump may lag behind the traffic in a slow guest, and what it
        # has not read yet is lost on SIGINT: stop once the file has
        # stopped growing (-U writes every packet as it is read)
        last, deadline = -1, time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.4)
            size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
            if size == last:
                break
            last = size
        self.proc.send_signal(2)
        self.proc.wait(timeout=30)

    def packets(self) -> list:
        from scapy.all import rdpcap  # imported late: scapy is slow to load
        return list(rdpcap(self.path))


def connect_while_servers_silent(topo: Topology, connect, port: int, pcap: str,
                                 silent_for: float = 2.5):
    """Connect (``connect()`` returns a socket) while every TCP segment the
    real servers send is lost for ``silent_for`` seconds, so that the SYNs
    toward them are sent again (ARP and neighbour discovery go on: the
    balancer need not learn the servers again afterwards).  Returns the
    socket and the SYNs the balancer sent toward the servers (scapy TCP
    layers, in order)."""
    from scapy.all import TCP
    result: dict = {}

    def attempt() -> None:
        try:
            result["sock"] = connect()
        except OSError as exc:
            result["error"] = exc

    with Capture(topo, topo.lb, "br0", f"tcp dst port {port}", pcap) as cap:
        for name in topo.servers:
            topo.sh(name, "tc qdisc add dev eth0 clsact && " + " && ".join(
                f"tc filter add dev eth0 egress protocol {proto} flower ip_proto tcp "
                f"action drop" for proto in ("ip", "ipv6")))
        try:
            thread = threading.Thread(target=attempt, daemon=True)
            thread.start()
            time.sleep(silent_for)
        finally:
            for name in topo.servers:
                topo.sh(name, "tc qdisc del dev eth0 clsact", check=False)
        thread.join(90)
    if "error" in result:
        raise result["error"]
    if "sock" not in result:
        raise TimeoutError("the connection did not complete once the servers spoke")
    return result["sock"], [p[TCP] for p in cap.packets()
                            if TCP in p and p[TCP].flags & 0x12 == 0x02]


def send_raw(topo: Topology, ns: str, packet: bytes, family: int) -> None:
    """Send a complete IP packet (header included) from namespace ``ns``."""
    if family == 4:
        with topo.inside(ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        dst = socket.inet_ntop(socket.AF_INET, packet[16:20])
    else:
        with topo.inside(ns):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        dst = socket.inet_ntop(socket.AF_INET6, packet[24:40])
    with sock:
        sock.sendto(packet, (dst, 0))


def connect(topo: Topology, ns: str, addr: str, port: int, *,
            kind: int = socket.SOCK_STREAM, timeout: float = 10) -> socket.socket:
    """A socket in ``ns`` connected to ``addr:port`` (TCP or, with kind, UDP)."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with topo.inside(ns):
        sock = socket.socket(family, kind)
    sock.settimeout(timeout)
    sock.connect((addr, port))
    return sock
