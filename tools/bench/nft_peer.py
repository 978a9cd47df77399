"""nftables as the balancer: the benchmark's in-kernel peer.

What an operator would build with the kernel's own tools instead of IPVS,
configured as nftables' documentation recommends, in one table of the
benchmark's balancer namespace (``table ip lvs_bench_peer``):

- **full NAT**: a stateful DNAT in ``prerouting`` to the real servers with a
  ``numgen inc`` map (round robin, the documented way to balance with
  nftables; the map holds every real server of the benchmark), and an SNAT
  in ``postrouting`` to a range of as many addresses as FULLNAT's local
  addresses (64; 4 in the quick run), matched on the connection's original destination, so only
  the peer's flows are translated.  Conntrack keeps the translation, as
  IPVS keeps its sessions.
- **synproxy** in front of a TCP service: SYNs to it are not tracked
  (``notrack`` at the raw priority), the ``input`` chain answers them with a
  cookie (``ct state invalid,untracked synproxy``, with the same options as
  the real server: MSS 1460, window scale 7, timestamps, SACK), and drops
  what is still invalid.  The validated connection is opened to the real
  server by the synproxy's own SYN, which leaves through ``output``: the
  same DNAT is there.  ``nf_conntrack_tcp_loose`` is 0, as synproxy needs.

The ruleset is nftables' JSON (``ruleset()``), loaded with ``nft -j``
through ``ipvsadm_py.nft.Nft`` in one transaction.  The runner adds the
table for the peer's windows only and deletes it for ours: while it
exists, conntrack's hooks run for every packet of the namespace, IPVS's
too, which would charge the peer's cost to FULLNAT.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from ipvsadm_py.nft import Nft

FAMILY = "ip"
TABLE = "lvs_bench_peer"
PEER_VIP = "10.0.0.103"                 # the peers' own address on the balancer
UDP_PORT = 9003                         # UDP full NAT -> the real servers' same port
TCP_PORT = 86                           # TCP full NAT -> RS_PORTS[TCP_PORT]
SYNPROXY_PORT = 87                      # synproxy, then full NAT -> RS_PORTS[...]
RS_PORTS = {UDP_PORT: UDP_PORT, TCP_PORT: 8081, SYNPROXY_PORT: 8082}
SNAT_NET = "10.0.5"                     # source addresses 10.0.5.1 upwards
SYNPROXY_OPTIONS = {"mss": 1460, "wscale": 7, "flags": ["timestamp", "sack-perm"]}
#: What the ruleset needs, loaded before the benchmark starts (no module is
#: loaded while it measures).
MODULES = ("nf_conntrack", "nf_nat", "nft_nat", "nft_numgen", "nft_ct", "nf_synproxy_core",
           "nft_synproxy")
CONNTRACK_COUNT = Path("/proc/sys/net/netfilter/nf_conntrack_count")

Command = dict[str, Any]


def _chain(name: str, kind: str, hook: str, prio: int) -> Command:
    return {"add": {"chain": {"family": FAMILY, "table": TABLE, "name": name, "type": kind,
                              "hook": hook, "prio": prio, "policy": "accept"}}}


def _rule(chain: str, *expr: Command) -> Command:
    return {"add": {"rule": {"family": FAMILY, "table": TABLE, "chain": chain,
                             "expr": list(expr)}}}


def _eq(left: Any, right: Any, op: str = "==") -> Command:
    return {"match": {"op": op, "left": left, "right": right}}


def _to(proto: str, port: int) -> list[Command]:
    return [_eq({"payload": {"protocol": "ip", "field": "daddr"}}, PEER_VIP),
            _eq({"payload": {"protocol": proto, "field": "dport"}}, port)]


def _dnat(servers: list[str], port: int) -> Command:
    """Round robin over ``servers`` (numgen inc, a map of index -> address)."""
    pick = {"map": {"key": {"numgen": {"mode": "inc", "mod": len(servers)}},
                    "data": {"set": [[i, addr] for i, addr in enumerate(servers)]}}}
    return {"dnat": {"addr": pick, "port": port}}


def ruleset(servers: list[str], sources: int = 64) -> list[Command]:
    """The peer's table, as commands of one nftables JSON transaction; SNAT
    to ``sources`` addresses (as many as FULLNAT's local addresses)."""
    if not 1 <= sources <= 254:
        raise ValueError(f"{sources} source addresses: 1 to 254")
    ct_state = {"ct": {"key": "state"}}
    pure_syn = _eq({"&": [{"payload": {"protocol": "tcp", "field": "flags"}},
                          ["fin", "syn", "rst", "ack"]]}, "syn")
    cmds: list[Command] = [
        {"add": {"table": {"family": FAMILY, "name": TABLE}}},
        _chain("raw_prerouting", "filter", "prerouting", -300),
        _chain("nat_prerouting", "nat", "prerouting", -100),
        _chain("nat_output", "nat", "output", -100),
        _chain("nat_postrouting", "nat", "postrouting", 100),
        _chain("filter_input", "filter", "input", 0),
        _rule("raw_prerouting", *_to("tcp", SYNPROXY_PORT), pure_syn, {"notrack": None}),
    ]
    for proto, port in (("udp", UDP_PORT), ("tcp", TCP_PORT), ("tcp", SYNPROXY_PORT)):
        cmds.append(_rule("nat_prerouting", *_to(proto, port), _dnat(servers, RS_PORTS[port])))
    cmds += [
        _rule("nat_output", *_to("tcp", SYNPROXY_PORT),
              _dnat(servers, RS_PORTS[SYNPROXY_PORT])),
        _rule("nat_postrouting",
              _eq({"ct": {"key": "ip daddr", "dir": "original"}}, PEER_VIP),
              {"snat": {"addr": {"range": [f"{SNAT_NET}.1", f"{SNAT_NET}.{sources}"]}}}),
        _rule("filter_input", *_to("tcp", SYNPROXY_PORT),
              _eq(ct_state, ["invalid", "untracked"], "in"), {"synproxy": SYNPROXY_OPTIONS}),
        _rule("filter_input", *_to("tcp", SYNPROXY_PORT), _eq(ct_state, "invalid", "in"),
              {"drop": None}),
    ]
    return cmds


class NftPeer:
    """The peer's table in namespace ``netns``: added and deleted per window."""

    def __init__(self, netns: str, servers: list[str], sources: int = 64) -> None:
        self.netns = netns
        self.servers = servers
        self.sources = sources
        self.nft = Nft(netns=netns)

    def available(self) -> str | None:
        """None when the peer can run, else why not."""
        if not self.nft.available():
            return "nft is not installed (Debian package nftables)"
        return None

    def load(self) -> None:
        self.nft.run(ruleset(self.servers, self.sources))

    def unload(self) -> None:
        self.nft.run([{"delete": {"table": {"family": FAMILY, "name": TABLE}}}])

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """The table for the block (gone after it, whatever happened)."""
        self.load()
        try:
            yield
        finally:
            self.unload()
