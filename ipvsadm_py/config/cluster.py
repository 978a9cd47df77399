"""The ``cluster:`` section of a configuration file: balancers side by side
behind ECMP routers, each announcing its VIPs and local-address prefix over
BGP (``lvs-cluster`` renders it for BIRD; docs/cluster.md).

::

    cluster:
      interface: lvs-vips        # dummy interface; a VIP on it is announced
      hold_time: 9               # BGP hold time (s), keepalive a third of it
      bfd: false                 # BFD on every BGP session: true (BIRD's own timers)
                                 # or {interval: 300, multiplier: 3} (ms; down after 3 missed)
      balancers:
        - name: lb1
          router_id: 10.0.4.11
          asn: 65011
          local_addresses: [10.1.1.0/24]
          vips: [10.0.0.100]     # default: every service address of the file
          peers:
            - {address: 10.0.4.1, asn: 65000}
"""

from __future__ import annotations

import re

import yaml
from netaddr import AddrFormatError, IPAddress, IPNetwork

from ipvsadm_py.config.desired import Balancer, Cluster, Peer
from ipvsadm_py.config.nodes import Checker

CLUSTER_KEYS = ("interface", "hold_time", "bfd", "balancers")
BALANCER_KEYS = ("name", "router_id", "asn", "local_addresses", "vips", "peers")
PEER_KEYS = ("address", "asn")
BFD_KEYS = ("interval", "multiplier")
BFD_INTERVAL_MS = (10, 60000)
BFD_MULTIPLIER = (1, 255)                  # RFC 5880: an 8-bit detect multiplier
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}$")
IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}$")
ASN_MAX = 4294967295
HOLD_MIN, HOLD_MAX = 3, 65535             # RFC 4271: 0 or at least 3


def _asn(c: Checker, node: yaml.Node, path: str) -> int | None:
    return c.integer_in(node, path, 1, ASN_MAX)


def _peer(c: Checker, node: yaml.Node, path: str) -> Peer | None:
    m = c.mapping(node, path, PEER_KEYS)
    for key in PEER_KEYS:
        if key not in m and isinstance(node, yaml.MappingNode):
            c.fail(node, path, f"a peer needs {key}")
    if not {"address", "asn"} <= m.keys():
        return None
    addr, asn = c.address(m["address"], f"{path}.address"), _asn(c, m["asn"], f"{path}.asn")
    return Peer(addr, asn) if addr is not None and asn is not None else None


def _prefixes(c: Checker, node: yaml.Node, path: str) -> list[str]:
    items = c.seq(node, path) if isinstance(node, yaml.SequenceNode) else [node]
    out = []
    for index, item in enumerate(items):
        value = c.scalar(item, f"{path}[{index}]")
        try:
            net = IPNetwork(str(value))
            if "/" not in str(value) or net.network != net.ip:
                raise ValueError("not a prefix (address/length, host bits zero)")
        except (AddrFormatError, ValueError, TypeError) as exc:
            c.fail(item, f"{path}[{index}]", f"bad prefix {value!r}: {exc}")
            continue
        out.append(str(net.cidr))
    return out


def _balancer(c: Checker, node: yaml.Node, path: str,
              service_vips: list[IPAddress]) -> Balancer | None:
    m = c.mapping(node, path, BALANCER_KEYS)
    missing = [k for k in ("name", "router_id", "asn", "peers") if k not in m]
    if missing and isinstance(node, yaml.MappingNode):
        c.fail(node, path, f"a balancer needs {', '.join(missing)}")
    if missing:
        return None
    name = c.scalar(m["name"], f"{path}.name")
    if not isinstance(name, str) or not NAME.match(name):
        c.fail(m["name"], f"{path}.name", f"must be a name (letters, digits, _ -), not {name!r}")
    rid = c.address(m["router_id"], f"{path}.router_id")
    if rid is not None and rid.version != 4:
        c.fail(m["router_id"], f"{path}.router_id", "a BGP router id is an IPv4 address")
    asn = _asn(c, m["asn"], f"{path}.asn")
    peers = [p for i, item in enumerate(c.seq(m["peers"], f"{path}.peers"))
             if (p := _peer(c, item, f"{path}.peers[{i}]")) is not None]
    if not peers and isinstance(m["peers"], yaml.SequenceNode):
        c.fail(m["peers"], f"{path}.peers", "at least one peer")
    if len({p.address for p in peers}) != len(peers):
        c.fail(m["peers"], f"{path}.peers", "a peer is listed twice")
    prefixes = _prefixes(c, m["local_addresses"], f"{path}.local_addresses") \
        if "local_addresses" in m else []
    if "vips" in m:
        vips = []
        for index, item in enumerate(c.seq(m["vips"], f"{path}.vips")):
            addr = c.address(item, f"{path}.vips[{index}]")
            if addr is None:
                continue
            if addr not in service_vips:
                c.fail(item, f"{path}.vips[{index}]", f"{addr} is no service's address "
                       "in this file")
            vips.append(addr)
    else:
        vips = list(service_vips)
    if name is None or rid is None or asn is None:
        return None
    return Balancer(str(name), rid, asn, peers, prefixes, vips, node.start_mark.line + 1)


def _bfd(c: Checker, node: yaml.Node, cluster: Cluster) -> None:
    """``bfd: true|false`` or ``bfd: {interval: MS, multiplier: N}`` (on)."""
    if not isinstance(node, yaml.MappingNode):
        cluster.bfd = bool(c.boolean(node, "cluster.bfd"))
        return
    m = c.mapping(node, "cluster.bfd", BFD_KEYS)
    missing = [key for key in BFD_KEYS if key not in m]
    if missing:
        c.fail(node, "cluster.bfd", f"needs {' and '.join(missing)} (or say true or false)")
        return
    interval = c.integer_in(m["interval"], "cluster.bfd.interval", *BFD_INTERVAL_MS)
    multiplier = c.integer_in(m["multiplier"], "cluster.bfd.multiplier", *BFD_MULTIPLIER)
    if interval is not None and multiplier is not None:
        cluster.bfd, cluster.bfd_timers = True, (interval, multiplier)


def read_cluster(c: Checker, node: yaml.Node, service_vips: list[IPAddress]) -> Cluster | None:
    """The cluster section; ``service_vips``: the addresses of the file's services."""
    m = c.mapping(node, "cluster", CLUSTER_KEYS)
    cluster = Cluster(balancers=[])
    if "interface" in m:
        name = c.scalar(m["interface"], "cluster.interface")
        if not isinstance(name, str) or not IFNAME.match(name):
            c.fail(m["interface"], "cluster.interface", f"not an interface name: {name!r}")
        else:
            cluster.interface = name
    if "hold_time" in m:
        hold = c.integer_in(m["hold_time"], "cluster.hold_time", HOLD_MIN, HOLD_MAX)
        cluster.hold_time = hold or cluster.hold_time
    if "bfd" in m:
        _bfd(c, m["bfd"], cluster)
    if "balancers" not in m:
        if isinstance(node, yaml.MappingNode):
            c.fail(node, "cluster", "needs balancers")
        return None
    for index, item in enumerate(c.seq(m["balancers"], "cluster.balancers")):
        bal = _balancer(c, item, f"cluster.balancers[{index}]", service_vips)
        if bal is not None:
            cluster.balancers.append(bal)
    for attr, what in (("name", "name"), ("router_id", "router id")):
        seen: dict[object, int] = {}
        for bal in cluster.balancers:
            key = getattr(bal, attr)
            if key in seen:
                c.fail(m["balancers"], "cluster.balancers",
                       f"{what} {key} on line {seen[key]} and line {bal.line}")
            seen.setdefault(key, bal.line)
    prefixes: dict[str, str] = {}
    for bal in cluster.balancers:
        for prefix in bal.local_prefixes:
            for other, owner in prefixes.items():
                if owner != bal.name and IPNetwork(prefix) in IPNetwork(other) \
                        or IPNetwork(other) in IPNetwork(prefix) and owner != bal.name:
                    c.fail(m["balancers"], "cluster.balancers", f"local addresses {prefix} "
                           f"of {bal.name} overlap {other} of {owner}: replies could not "
                           "find their balancer")
            prefixes[prefix] = bal.name
    return cluster
