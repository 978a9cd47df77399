"""The entries of an IPVS table: services, real servers (``Dest``), FULLNAT
local addresses, timeouts, sync daemons, counters, the module's info, with
the defaults a new service takes.

``af`` is the socket address family (``socket.AF_INET`` or ``AF_INET6``),
``protocol`` the IP protocol number (:class:`~ipvsadm_py.model.kinds.Protocol`;
0 for a fwmark service).
"""

from __future__ import annotations

import dataclasses
import socket

from ipvsadm_py.model.addresses import AF_INET, AF_INET6, AddressField, addr_text, hostport, packed
from ipvsadm_py.model.kinds import (DaemonState, Forward, Protocol, SchedFlag, TunnelCsum,
                                    TunnelType, protocol_name, sched_flag_names)

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from netaddr import IPAddress

DEFAULT_SCHEDULER = "wlc"
DEFAULT_PERSISTENCE = 360   # seconds: the kernel's IPVS_SVC_PERSISTENT_TIMEOUT
MAX_TIMEOUT = 86400 * 31
FULL_MASK4 = 0xFFFFFFFF


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
