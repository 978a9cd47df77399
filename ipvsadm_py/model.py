"""The vocabulary of ipvsadm_py: what an IPVS table holds, in plain terms.

Services, real servers (``Dest``), FULLNAT local addresses, timeouts, sync
daemons, counters; forwarding methods, tunnel types, checksum modes and
scheduler flags as enums; service properties (persistence, one-packet
scheduling, SYNPROXY) as booleans.  Nothing here knows the kernel's numbers:
:mod:`ipvsadm_py.codec` translates this vocabulary to netlink attributes and
back.  The enums' values are the names used by ``--json`` and the YAML
configuration.

``af`` is the socket address family (``socket.AF_INET`` or ``AF_INET6``),
``protocol`` the IP protocol number (:class:`Protocol`; 0 for a fwmark
service).  The ``addr`` of a Service, Dest or LocalAddress is kept packed (4
or 16 bytes, see :class:`AddressField`) and becomes a ``netaddr.IPAddress``
when read, so that listing and restoring never import netaddr (about 50
modules).
"""

from __future__ import annotations

import dataclasses
import enum
import socket

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import Any

    from netaddr import IPAddress

AF_INET, AF_INET6 = int(socket.AF_INET), int(socket.AF_INET6)


class Protocol(enum.IntEnum):
    """The IP protocols of a virtual service (their IANA numbers)."""

    TCP = 6
    UDP = 17
    SCTP = 132


class Forward(enum.StrEnum):
    """How a real server gets its packets (the forwarding method)."""

    MASQ = "masq"          # NAT
    LOCAL = "local"        # the balancer itself
    TUNNEL = "tunnel"      # IP-in-IP, GUE or GRE
    ROUTE = "route"        # direct routing
    BYPASS = "bypass"
    FULLNAT = "fullnat"    # both addresses rewritten (extension)
    UNKNOWN = "unknown"    # a method another tool set that has no name here


class TunnelType(enum.StrEnum):
    """The encapsulation of a tunneling real server."""

    IPIP = "ipip"
    GUE = "gue"
    GRE = "gre"
    UNKNOWN = "unknown"


class TunnelCsum(enum.StrEnum):
    """The checksum of a tunnel's outer header."""

    NOCSUM = "nocsum"
    CSUM = "csum"
    REMCSUM = "remcsum"    # remote checksum offload (GUE)
    UNKNOWN = "unknown"


class SchedFlag(enum.StrEnum):
    """Scheduler flags; some schedulers give them names of their own."""

    FLAG_1 = "flag-1"
    FLAG_2 = "flag-2"
    FLAG_3 = "flag-3"


# The names a scheduler gives its flags (ipvsadm prints these for sh and mh).
SCHED_FLAG_NAMES: dict[str, dict[SchedFlag, str]] = {
    "sh": {SchedFlag.FLAG_1: "sh-fallback", SchedFlag.FLAG_2: "sh-port"},
    "mh": {SchedFlag.FLAG_1: "mh-fallback", SchedFlag.FLAG_2: "mh-port"},
}


class DaemonState(enum.StrEnum):
    MASTER = "master"
    BACKUP = "backup"


DEFAULT_SCHEDULER = "wlc"
DEFAULT_PERSISTENCE = 360   # seconds: the kernel's IPVS_SVC_PERSISTENT_TIMEOUT
MAX_TIMEOUT = 86400 * 31
FULL_MASK4 = 0xFFFFFFFF


_GENERIC_FLAG_NAMES = {flag: flag.value for flag in SchedFlag}


def sched_flag_names(scheduler: str, flags: frozenset[SchedFlag] | set[SchedFlag]) -> list[str]:
    """The names ipvsadm prints for a service's scheduler flags (a scheduler
    with names of its own shows only those)."""
    names = SCHED_FLAG_NAMES.get(scheduler, _GENERIC_FLAG_NAMES)
    return [name for flag, name in names.items() if flag in flags]


# ---------------------------------------------------------------- addresses
def family_of(af: int) -> int:
    """4 or 6 from a socket address family."""
    return 6 if af == AF_INET6 else 4


def af_of(version: int) -> int:
    """The socket address family of IP version 4 or 6."""
    return AF_INET6 if version == 6 else AF_INET


def af_of_packed(raw: bytes) -> int:
    """The address family of 4 (IPv4) or 16 (IPv6) packed bytes."""
    return AF_INET6 if len(raw) == 16 else AF_INET


def ip(raw: bytes) -> IPAddress:
    """A ``netaddr.IPAddress`` from 4 (IPv4) or 16 (IPv6) packed bytes."""
    from netaddr import IPAddress

    return IPAddress(int.from_bytes(raw, "big"), 6 if len(raw) == 16 else 4)


def packed_of(addr: IPAddress | bytes) -> bytes:
    """4 or 16 bytes of an address given packed or as an object with
    ``packed`` (netaddr's, or the standard library's ``ipaddress``)."""
    return addr if isinstance(addr, bytes) else addr.packed


def addr_text(addr: IPAddress | bytes) -> str:
    """The address as ``inet_ntop`` writes it (what ipvsadm prints)."""
    raw = packed_of(addr)
    return socket.inet_ntop(af_of_packed(raw), raw)


def hostport(addr: IPAddress | bytes, port: int) -> str:
    """``10.0.0.1:80`` or ``[2001:db8::1]:80``."""
    text = addr_text(addr)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


class AddressField:
    """The ``addr`` attribute of Service, Dest and LocalAddress.

    Set it to a ``netaddr.IPAddress`` (or anything with ``packed``), to 4 or
    16 packed bytes, or to None; reading it gives a ``netaddr.IPAddress``
    (made on first read).  :func:`packed` reads the bytes without netaddr.
    """

    def __init__(self, required: bool = False) -> None:
        self.required = required

    def __get__(self, obj: Any, owner: type | None = None) -> IPAddress | None:
        if obj is None:     # the dataclass's default (none when required)
            if self.required:
                raise AttributeError("addr")
            return None
        value = obj.__dict__.get("_addr")
        if value is None and obj.__dict__.get("_packed") is not None:
            value = obj.__dict__["_addr"] = ip(obj.__dict__["_packed"])
        return value

    def __set__(self, obj: Any, value: IPAddress | bytes | None) -> None:
        if isinstance(value, (bytes, bytearray)):
            if len(value) not in (4, 16):
                raise ValueError(f"a packed address has 4 or 16 bytes, not {len(value)}")
            obj.__dict__["_addr"], obj.__dict__["_packed"] = None, bytes(value)
        elif value is None:
            obj.__dict__["_addr"] = obj.__dict__["_packed"] = None
        elif type(value).__module__.startswith("netaddr"):
            obj.__dict__["_addr"], obj.__dict__["_packed"] = value, value.packed
        else:   # ipaddress objects and the like: read back as netaddr's
            obj.__dict__["_addr"], obj.__dict__["_packed"] = None, bytes(value.packed)


def packed(obj: Any) -> bytes | None:
    """The packed ``addr`` of a Service, Dest or LocalAddress (None if unset)."""
    return obj.__dict__.get("_packed")


# ---------------------------------------------------------------- objects
@dataclasses.dataclass
class Stats:
    """Traffic counters and rates of a service or real server."""

    conns: int = 0
    inpkts: int = 0
    outpkts: int = 0
    inbytes: int = 0
    outbytes: int = 0
    cps: int = 0
    inpps: int = 0
    outpps: int = 0
    inbps: int = 0
    outbps: int = 0


STATS_FIELDS = tuple(f.name for f in dataclasses.fields(Stats))


@dataclasses.dataclass
class Service:
    """A virtual service: protocol+address+port, or a firewall mark."""

    protocol: int = Protocol.TCP
    addr: IPAddress | None = AddressField()  # type: ignore[assignment]
    port: int = 0
    fwmark: int = 0
    af: int = AF_INET
    scheduler: str = DEFAULT_SCHEDULER
    persistent: bool = False
    timeout: int = 0                  # persistence timeout in seconds
    netmask: int = FULL_MASK4         # persistence granularity: IPv4 mask, IPv6 prefix
    pe_name: str = ""                 # persistence engine
    onepacket: bool = False           # one-packet scheduling
    synproxy: bool = False            # SYNPROXY (extension)
    sched_flags: frozenset[SchedFlag] = frozenset()
    hashed: bool = False              # in the kernel's table (listings only; never sent)
    stats: Stats | None = None

    @property
    def key(self) -> tuple[int, int, int, int, int]:
        """What names the service in the kernel."""
        if self.fwmark:
            return (self.af, 0, 0, 0, self.fwmark)
        return (self.af, self.protocol, int.from_bytes(packed(self) or b"", "big"),
                self.port, 0)

    def describe(self) -> str:
        """``TCP 10.0.0.1:80``, ``UDP [2001:db8::1]:53``, ``FWM 7 IPv6``."""
        if self.fwmark:
            return f"FWM {self.fwmark}" + (" IPv6" if self.af == AF_INET6 else "")
        proto = protocol_name(self.protocol).upper()
        raw = packed(self)
        return f"{proto} {hostport(raw, self.port)}" if raw else proto

    def sched_flag_names(self) -> list[str]:
        return sched_flag_names(self.scheduler, self.sched_flags)

    @property
    def default_netmask(self) -> int:
        return 128 if self.af == AF_INET6 else FULL_MASK4

    def netmask_text(self) -> str:
        """``255.255.255.0`` (IPv4) or ``64`` (IPv6 prefix length)."""
        if self.af == AF_INET6:
            return str(self.netmask)
        return socket.inet_ntoa(self.netmask.to_bytes(4, "big"))


def protocol_name(number: int) -> str:
    """``tcp``, ``udp``, ``sctp``, or the number as text."""
    try:
        return Protocol(number).name.lower()
    except ValueError:
        return str(number)


@dataclasses.dataclass
class Dest:
    """A real server of a virtual service."""

    addr: IPAddress | None = AddressField()  # type: ignore[assignment]
    port: int = 0
    af: int = AF_INET
    forward: Forward = Forward.ROUTE
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: TunnelType = TunnelType.IPIP
    tun_port: int = 0                 # GUE's destination port
    tun_csum: TunnelCsum = TunnelCsum.NOCSUM
    active_conns: int = 0
    inact_conns: int = 0
    persist_conns: int = 0
    stats: Stats | None = None

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.af, int.from_bytes(packed(self) or b"", "big"), self.port)

    def describe(self) -> str:
        raw = packed(self)
        return hostport(raw, self.port) if raw else "?"


@dataclasses.dataclass
class LocalAddress:
    """A FULLNAT local address (LIP) of a service (extension)."""

    addr: IPAddress = AddressField(required=True)  # type: ignore[assignment]
    port_conflicts: int = 0
    conns: int = 0

    def describe(self) -> str:
        return addr_text(packed(self))


@dataclasses.dataclass
class Timeouts:
    """Connection timeouts in seconds; 0 in a request leaves a value alone."""

    tcp: int = 0
    tcp_fin: int = 0
    udp: int = 0


@dataclasses.dataclass
class Daemon:
    """A connection synchronisation daemon (master or backup); 0 and None
    mean the kernel's default."""

    state: DaemonState = DaemonState.MASTER
    mcast_ifn: str = "eth0"
    syncid: int = 0
    sync_maxlen: int = 0
    mcast_group: IPAddress | None = None
    mcast_port: int = 0
    mcast_ttl: int = 0


@dataclasses.dataclass
class Info:
    """The module's version and connection table size."""

    version: int = 0
    conn_tab_size: int = 0

    @property
    def version_text(self) -> str:
        v = self.version
        return f"{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}"
