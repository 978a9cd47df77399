"""What makes a service, real server or local address acceptable: one copy
of each rule, for both front ends (the command line and the YAML
configuration).

The checks return :class:`Fault` values, never messages: the command line
words them as ipvsadm does, the configuration as ``FILE:LINE: path:
message``.  A front end enforces the faults it words (ipvsadm, for one, lets
the kernel judge SYNPROXY on a UDP service).  Nothing here raises.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence

from ipvsadm_py.model import (AF_INET6, MAX_TIMEOUT, SCHED_FLAG_NAMES, Dest, Forward,
                              Protocol, SchedFlag, Service, TunnelCsum, TunnelType,
                              addr_text)

INT_MAX = 2147483647

# Allowed values (inclusive) of the numbers both front ends read.
LIMITS: dict[str, tuple[int, int]] = {
    "port": (0, 65535),
    "fwmark": (1, 0xFFFFFFFF),
    "persistent": (1, MAX_TIMEOUT),         # persistence timeout, seconds
    "timeout": (0, MAX_TIMEOUT),            # connection timeouts; 0: unchanged
    "ipv6_prefix": (1, 128),                # persistence netmask of an IPv6 service
    "weight": (0, INT_MAX),
    "u_threshold": (0, INT_MAX),
    "l_threshold": (0, INT_MAX),
    "tun_port": (1, 65535),
    "syncid": (0, 255),
    "sync_maxlen": (1, 65535 - 20 - 8),     # an IPv4+UDP datagram's payload
    "mcast_port": (1, 65535),
    "mcast_ttl": (1, 255),
}


# Members read once: an enum member read from its class costs a call (3.11).
_TCP, _UDP = Protocol.TCP, Protocol.UDP
_TUNNEL, _ROUTE, _FULLNAT = Forward.TUNNEL, Forward.ROUTE, Forward.FULLNAT


def in_range(name: str, value: int) -> bool:
    low, high = LIMITS[name]
    return low <= value <= high


class Code(enum.Enum):
    """What is wrong."""

    ZERO_PORT = enum.auto()                 # port 0 without persistence
    ONEPACKET_NOT_UDP = enum.auto()         # one-packet scheduling of a TCP/SCTP service
    SYNPROXY_NOT_TCP = enum.auto()
    SCHED_FLAG_UNKNOWN = enum.auto()        # word: the flag
    SCHED_FLAG_NEEDS = enum.auto()          # word: the flag; other: the scheduler it needs
    FAMILY_MISMATCH = enum.auto()           # real server of another family, not tunneling
    TUNNEL_WITHOUT_TUNNELING = enum.auto()  # tunnel options, another forwarding method
    TUN_PORT_MISSING = enum.auto()          # GUE without a port
    TUN_PORT_ILLEGAL = enum.auto()          # a port for IPIP or GRE
    TUN_CSUM_ILLEGAL = enum.auto()          # word: a checksum mode the type lacks
    TUN_CSUM_CONFLICT = enum.auto()         # word: a second checksum mode; other: the first
    LADDR_FAMILY = enum.auto()              # word: the address
    LADDR_OF_FWMARK = enum.auto()
    FULLNAT_WITHOUT_LADDRS = enum.auto()
    NOT_MULTICAST = enum.auto()


@dataclasses.dataclass(frozen=True)
class Fault:
    code: Code
    word: str = ""
    other: str = ""


# ---------------------------------------------------------------- services
def service_faults(svc: Service) -> list[Fault]:
    """Port 0 needs persistence; one-packet scheduling is for UDP (and
    fwmark) services; SYNPROXY for TCP services."""
    out = []
    if not svc.fwmark and not svc.port and not svc.persistent:
        out.append(Fault(Code.ZERO_PORT))
    if svc.onepacket and not svc.fwmark and svc.protocol != _UDP:
        out.append(Fault(Code.ONEPACKET_NOT_UDP))
    if svc.synproxy and svc.protocol != _TCP:
        out.append(Fault(Code.SYNPROXY_NOT_TCP))
    return out


def sched_flags(scheduler: str, words: Iterable[str]) -> tuple[frozenset[SchedFlag], Fault | None]:
    """The flags named by ``flag-1``, ``sh-port``, ...; a scheduler's own
    names need that scheduler.  The first fault stops the reading."""
    flags: set[SchedFlag] = set()
    generic = {flag.value: flag for flag in SchedFlag}
    for word in words:
        if word in generic:
            flags.add(generic[word])
            continue
        owner = next(((sched, flag) for sched, names in SCHED_FLAG_NAMES.items()
                      for flag, name in names.items() if name == word), None)
        if owner is None:
            return frozenset(flags), Fault(Code.SCHED_FLAG_UNKNOWN, word)
        if owner[0] != scheduler:
            return frozenset(flags), Fault(Code.SCHED_FLAG_NEEDS, word, owner[0])
        flags.add(owner[1])
    return frozenset(flags), None


# ---------------------------------------------------------------- real servers
def fixed_port(svc: Service, forward: Forward) -> int | None:
    """The port a real server must have: its service's, for direct routing
    and tunneling (the packet keeps its destination port); None if free."""
    if (forward == _ROUTE or forward == _TUNNEL) and not svc.fwmark:
        return svc.port
    return None


def dest_faults(svc: Service, dest: Dest, tunnel_options: bool) -> list[Fault]:
    """Another address family only for tunneling; tunnel options only for
    tunneling (``tunnel_options``: some were given)."""
    out = []
    if dest.af != svc.af and dest.forward != _TUNNEL:
        out.append(Fault(Code.FAMILY_MISMATCH))
    if tunnel_options and dest.forward != _TUNNEL:
        out.append(Fault(Code.TUNNEL_WITHOUT_TUNNELING))
    return out


# Per tunnel type: whether a port is required (else illegal), and the
# checksum modes it takes (at most one).
TUNNEL_RULES: dict[TunnelType, tuple[bool, tuple[TunnelCsum, ...]]] = {
    TunnelType.IPIP: (False, ()),
    TunnelType.GUE: (True, (TunnelCsum.NOCSUM, TunnelCsum.CSUM, TunnelCsum.REMCSUM)),
    TunnelType.GRE: (False, (TunnelCsum.NOCSUM, TunnelCsum.CSUM)),
}


def tunnel_faults(tun_type: TunnelType, port_given: bool,
                  csums_given: Sequence[TunnelCsum]) -> list[Fault]:
    """The faults of a tunnel's options, in ipvsadm's order: the port, then
    each checksum mode in the order nocsum, csum, remcsum."""
    needs_port, csums = TUNNEL_RULES.get(tun_type, (False, ()))
    out = []
    if needs_port and not port_given:
        out.append(Fault(Code.TUN_PORT_MISSING))
    if not needs_port and port_given:
        out.append(Fault(Code.TUN_PORT_ILLEGAL))
    first = None
    for csum in TunnelCsum:
        if csum not in csums_given:
            continue
        if csum not in csums:
            out.append(Fault(Code.TUN_CSUM_ILLEGAL, csum.value))
        elif first is not None:
            out.append(Fault(Code.TUN_CSUM_CONFLICT, csum.value, first.value))
        else:
            first = csum
    return out


# ---------------------------------------------------------------- local addresses
def laddr_faults(svc: Service, addrs: Iterable[bytes]) -> list[Fault]:
    """Local addresses (packed) of a protocol/address service, of its family
    (the first address of another family is named)."""
    out = []
    if svc.fwmark:
        out.append(Fault(Code.LADDR_OF_FWMARK))
    want = 16 if svc.af == AF_INET6 else 4
    for raw in addrs:
        if len(raw) != want:
            out.append(Fault(Code.LADDR_FAMILY, addr_text(raw)))
            break
    return out


def fullnat_faults(dests: Iterable[Dest], has_laddrs: bool) -> list[Fault]:
    """FULLNAT real servers need local addresses to send from."""
    if not has_laddrs and any(d.forward == _FULLNAT for d in dests):
        return [Fault(Code.FULLNAT_WITHOUT_LADDRS)]
    return []


# ---------------------------------------------------------------- sync daemons
def is_multicast(raw: bytes) -> bool:
    """224.0.0.0/4 or ff00::/8 (packed address)."""
    return (raw[0] & 0xF0) == 0xE0 if len(raw) == 4 else raw[0] == 0xFF
