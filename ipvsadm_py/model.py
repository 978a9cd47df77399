"""Plain objects of the API layer: Service, Dest, LocalAddress, Timeouts,
Daemon, Info, Stats, and their conversion to and from wire attributes.

Addresses are ``netaddr.IPAddress``; ``af`` is the socket address family
(``AF_INET`` = 2, ``AF_INET6`` = 10) as the kernel reports it.  The ``addr``
of a Service, Dest or LocalAddress is kept packed (4 or 16 bytes, see
:class:`AddressField`) and becomes a ``netaddr.IPAddress`` when read, so that
the command's listing and restore paths never import netaddr (about 50
modules).
"""

from __future__ import annotations

import dataclasses
import socket

from ipvsadm_py import wire
from ipvsadm_py.errors import InvalidInput

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import Any

    from netaddr import IPAddress

AF_INET, AF_INET6 = wire.AF_INET, wire.AF_INET6
PROTOCOLS = {"tcp": wire.IPPROTO_TCP, "udp": wire.IPPROTO_UDP, "sctp": wire.IPPROTO_SCTP}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}

# Forwarding methods: API/JSON/YAML name <-> kernel value.
FORWARD = {"masq": wire.FWD_MASQ, "local": wire.FWD_LOCALNODE, "tunnel": wire.FWD_TUNNEL,
           "route": wire.FWD_DROUTE, "bypass": wire.FWD_BYPASS, "fullnat": wire.FWD_FULLNAT}
FORWARD_NAMES = {v: k for k, v in FORWARD.items()}
FORWARD_ALIASES = {"nat": "masq", "masquerading": "masq", "dr": "route", "droute": "route",
                   "gatewaying": "route", "direct": "route", "tun": "tunnel", "ipip": "tunnel",
                   "fnat": "fullnat"}
TUN_TYPES = {"ipip": wire.TUN_TYPE_IPIP, "gue": wire.TUN_TYPE_GUE, "gre": wire.TUN_TYPE_GRE}
TUN_TYPE_NAMES = {v: k for k, v in TUN_TYPES.items()}
TUN_CSUM = {"nocsum": wire.TUN_F_NOCSUM, "csum": wire.TUN_F_CSUM, "remcsum": wire.TUN_F_REMCSUM}
TUN_CSUM_NAMES = {v: k for k, v in TUN_CSUM.items()}
SCHED_FLAG_BITS = {"flag-1": wire.SVC_F_SCHED1, "flag-2": wire.SVC_F_SCHED2,
                   "flag-3": wire.SVC_F_SCHED3}
# Scheduler-specific names of the same bits.
SCHED_FLAG_NAMES = {"sh": {"sh-fallback": wire.SVC_F_SCHED1, "sh-port": wire.SVC_F_SCHED2},
                    "mh": {"mh-fallback": wire.SVC_F_SCHED1, "mh-port": wire.SVC_F_SCHED2}}
DEFAULT_SCHEDULER = "wlc"
DEFAULT_PERSISTENCE = 360   # IPVS_SVC_PERSISTENT_TIMEOUT (6 minutes)
MAX_TIMEOUT = 86400 * 31
FULL_MASK4 = 0xFFFFFFFF


def family_of(af: int) -> int:
    """4 or 6 from a socket address family."""
    return 6 if af == AF_INET6 else 4


def af_of(version: int) -> int:
    return AF_INET6 if version == 6 else AF_INET


def ip(packed: bytes) -> IPAddress:
    """A ``netaddr.IPAddress`` from 4 (IPv4) or 16 (IPv6) packed bytes."""
    from netaddr import IPAddress

    return IPAddress(int.from_bytes(packed, "big"), 6 if len(packed) == 16 else 4)


def af_of_packed(packed: bytes) -> int:
    """The address family of 4 (IPv4) or 16 (IPv6) packed bytes."""
    return AF_INET6 if len(packed) == 16 else AF_INET


def packed_of(addr: IPAddress | bytes) -> bytes:
    """4 or 16 bytes of an address given packed or as an object with
    ``packed`` (netaddr's, or the standard library's ``ipaddress``)."""
    return addr if isinstance(addr, bytes) else addr.packed


def addr_from_wire(raw: bytes, af: int) -> bytes:
    """The packed address in the kernel's 16-byte ``union nf_inet_addr``
    (a shorter field is read as the number it holds, as before)."""
    size = 16 if af == AF_INET6 else 4
    return bytes(raw[:size]).rjust(size, b"\0")


def addr_to_wire(addr: IPAddress | bytes) -> bytes:
    return packed_of(addr).ljust(16, b"\0")


def addr_text(addr: IPAddress | bytes) -> str:
    """The address as ``inet_ntop`` writes it (what ipvsadm prints)."""
    packed = packed_of(addr)
    return socket.inet_ntop(af_of_packed(packed), packed)


def hostport(addr: IPAddress | bytes, port: int) -> str:
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


def sched_flag_names(scheduler: str, flags: int) -> list[str]:
    """The names ipvsadm prints for a service's scheduler flags."""
    table = SCHED_FLAG_NAMES.get(scheduler, SCHED_FLAG_BITS)
    return [name for name, bit in table.items() if flags & bit]


def parse_sched_flags(scheduler: str, text: str | list[str]) -> int:
    """Bits for ``flag-1,sh-port,...`` (names must suit the scheduler)."""
    words = text.split(",") if isinstance(text, str) else list(text)
    bits = 0
    for word in words:
        if word in SCHED_FLAG_BITS:
            bits |= SCHED_FLAG_BITS[word]
            continue
        for sched, table in SCHED_FLAG_NAMES.items():
            if word in table:
                if scheduler != sched:
                    raise InvalidInput(f"scheduler flag {word!r} needs scheduler {sched}, "
                                       f"not {scheduler}")
                bits |= table[word]
                break
        else:
            raise InvalidInput(f"invalid scheduler flag {word!r}: one of flag-1, flag-2, "
                               "flag-3, sh-fallback, sh-port, mh-fallback, mh-port")
    return bits


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

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> "Stats":
        data = attrs.get("stats64") or attrs.get("stats") or {}
        if isinstance(data, wire.Lazy):
            data = data.get()
        return cls(**{name: data.get(name, 0) for name in STATS_FIELDS})

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


STATS_FIELDS = tuple(f.name for f in dataclasses.fields(Stats))


@dataclasses.dataclass
class Service:
    """A virtual service: protocol+address+port, or a firewall mark."""

    protocol: int = wire.IPPROTO_TCP
    addr: IPAddress | None = AddressField()  # type: ignore[assignment]
    port: int = 0
    fwmark: int = 0
    af: int = AF_INET
    scheduler: str = DEFAULT_SCHEDULER
    flags: int = 0
    timeout: int = 0
    netmask: int = FULL_MASK4
    pe_name: str = ""
    stats: Stats | None = None

    # ------------------------------------------------------------ identity
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
        proto = PROTOCOL_NAMES.get(self.protocol, str(self.protocol)).upper()
        raw = packed(self)
        return f"{proto} {hostport(raw, self.port)}" if raw else proto

    # ------------------------------------------------------------ flags
    @property
    def persistent(self) -> bool:
        return bool(self.flags & wire.SVC_F_PERSISTENT)

    @property
    def onepacket(self) -> bool:
        return bool(self.flags & wire.SVC_F_ONEPACKET)

    @property
    def synproxy(self) -> bool:
        return bool(self.flags & wire.SVC_F_SYNPROXY)

    @property
    def sched_flags(self) -> list[str]:
        return sched_flag_names(self.scheduler, self.flags)

    @property
    def default_netmask(self) -> int:
        return 128 if self.af == AF_INET6 else FULL_MASK4

    def netmask_text(self) -> str:
        """``255.255.255.0`` (IPv4) or ``64`` (IPv6 prefix length)."""
        if self.af == AF_INET6:
            return str(self.netmask)
        return socket.inet_ntoa(self.netmask.to_bytes(4, "big"))

    # ------------------------------------------------------------ wire
    def key_attrs(self) -> wire.Attrs:
        """Only what identifies the service (for GET_DEST and friends)."""
        attrs: wire.Attrs = [("IPVS_SVC_ATTR_AF", self.af)]
        if self.fwmark:
            attrs.append(("IPVS_SVC_ATTR_FWMARK", self.fwmark))
        else:
            attrs += [("IPVS_SVC_ATTR_PROTOCOL", self.protocol),
                      ("IPVS_SVC_ATTR_ADDR", addr_to_wire(packed(self) or bytes(16))),
                      ("IPVS_SVC_ATTR_PORT", self.port)]
        return attrs

    def to_attrs(self) -> wire.Attrs:
        """Every attribute, as ipvsadm sends them (flags with a full mask)."""
        attrs = self.key_attrs()
        attrs.append(("IPVS_SVC_ATTR_SCHED_NAME", self.scheduler))
        if self.pe_name:
            attrs.append(("IPVS_SVC_ATTR_PE_NAME", self.pe_name))
        netmask = (self.netmask.to_bytes(4, "big") if self.af == AF_INET
                   else self.netmask.to_bytes(4, "little"))
        attrs += [("IPVS_SVC_ATTR_FLAGS", wire.SvcFlags(self.flags, 0xFFFFFFFF)),
                  ("IPVS_SVC_ATTR_TIMEOUT", self.timeout),
                  ("IPVS_SVC_ATTR_NETMASK", netmask)]
        return attrs

    @classmethod
    def from_attrs(cls, a: dict[str, Any]) -> "Service":
        af = a.get("af", AF_INET)
        raw_mask = a.get("netmask", b"\xff\xff\xff\xff")
        netmask = (int.from_bytes(raw_mask, "little") if af == AF_INET6
                   else int.from_bytes(raw_mask, "big"))
        flags, mask = a.get("flags", (0, 0xFFFFFFFF))
        svc = cls(protocol=a.get("protocol", 0), port=a.get("port", 0),
                  fwmark=a.get("fwmark", 0), af=af, scheduler=a.get("sched_name", ""),
                  flags=flags & mask, timeout=a.get("timeout", 0), netmask=netmask,
                  pe_name=a.get("pe_name", ""))
        if "fwmark" in a:
            svc.protocol = 0
        elif "addr" in a:
            svc.addr = addr_from_wire(a["addr"], af)
        if "stats" in a or "stats64" in a:
            svc.stats = Stats.from_attrs(a)
        return svc

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form (see docs/ipvsadm-py.md)."""
        out: dict[str, Any] = {"family": family_of(self.af)}
        if self.fwmark:
            out["fwmark"] = self.fwmark
        else:
            out["protocol"] = PROTOCOL_NAMES.get(self.protocol, str(self.protocol))
            raw = packed(self)
            out["address"] = addr_text(raw) if raw else None
            out["port"] = self.port
        out["scheduler"] = self.scheduler
        out["sched_flags"] = self.sched_flags
        out["persistent"] = self.timeout if self.persistent else None
        out["netmask"] = self.netmask_text() if self.persistent else None
        out["pe"] = self.pe_name or None
        out["ops"] = self.onepacket
        out["synproxy"] = self.synproxy
        out["flags"] = self.flags
        return out


@dataclasses.dataclass
class Dest:
    """A real server of a virtual service."""

    addr: IPAddress | None = AddressField()  # type: ignore[assignment]
    port: int = 0
    af: int = AF_INET
    forward: int = wire.FWD_DROUTE
    weight: int = 1
    u_threshold: int = 0
    l_threshold: int = 0
    tun_type: int = wire.TUN_TYPE_IPIP
    tun_port: int = 0
    tun_flags: int = wire.TUN_F_NOCSUM
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

    @property
    def forward_name(self) -> str:
        return FORWARD_NAMES.get(self.forward, str(self.forward))

    def to_attrs(self) -> wire.Attrs:
        return [("IPVS_DEST_ATTR_ADDR_FAMILY", self.af),
                ("IPVS_DEST_ATTR_ADDR", addr_to_wire(packed(self) or bytes(16))),
                ("IPVS_DEST_ATTR_PORT", self.port),
                ("IPVS_DEST_ATTR_FWD_METHOD", self.forward & wire.FWD_MASK),
                ("IPVS_DEST_ATTR_WEIGHT", self.weight),
                ("IPVS_DEST_ATTR_TUN_TYPE", self.tun_type),
                ("IPVS_DEST_ATTR_TUN_PORT", self.tun_port),
                ("IPVS_DEST_ATTR_TUN_FLAGS", self.tun_flags),
                ("IPVS_DEST_ATTR_U_THRESH", self.u_threshold),
                ("IPVS_DEST_ATTR_L_THRESH", self.l_threshold)]

    @classmethod
    def from_attrs(cls, a: dict[str, Any], svc_af: int, stats: bool = True) -> "Dest":
        af = a.get("addr_family", svc_af)
        dest = cls(addr=addr_from_wire(a["addr"], af), port=a.get("port", 0), af=af,
                   forward=a.get("fwd_method", 0) & wire.FWD_MASK,
                   weight=a.get("weight", 0), u_threshold=a.get("u_thresh", 0),
                   l_threshold=a.get("l_thresh", 0), tun_type=a.get("tun_type", 0),
                   tun_port=a.get("tun_port", 0), tun_flags=a.get("tun_flags", 0),
                   active_conns=a.get("active_conns", 0),
                   inact_conns=a.get("inact_conns", 0),
                   persist_conns=a.get("persist_conns", 0))
        if stats and ("stats" in a or "stats64" in a):
            dest.stats = Stats.from_attrs(a)
        return dest

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"family": family_of(self.af), "address": addr_text(packed(self)),
                               "port": self.port, "forward": self.forward_name,
                               "weight": self.weight, "u_threshold": self.u_threshold,
                               "l_threshold": self.l_threshold}
        if self.forward == wire.FWD_TUNNEL:
            out["tunnel"] = {"type": TUN_TYPE_NAMES.get(self.tun_type, str(self.tun_type)),
                             "port": self.tun_port,
                             "csum": TUN_CSUM_NAMES.get(self.tun_flags, str(self.tun_flags))}
        out["active_conns"] = self.active_conns
        out["inact_conns"] = self.inact_conns
        out["persist_conns"] = self.persist_conns
        return out


@dataclasses.dataclass
class LocalAddress:
    """A FULLNAT local address (LIP) of a service (extension)."""

    addr: IPAddress = AddressField(required=True)  # type: ignore[assignment]
    port_conflicts: int = 0
    conns: int = 0

    def to_attrs(self) -> wire.Attrs:
        return [("IPVS_LADDR_ATTR_ADDR", addr_to_wire(packed(self)))]

    @classmethod
    def from_attrs(cls, a: dict[str, Any], svc_af: int) -> "LocalAddress":
        return cls(addr=addr_from_wire(a["addr"], svc_af),
                   port_conflicts=a.get("port_conflict", 0), conns=a.get("conn_counts", 0))

    def to_dict(self) -> dict[str, Any]:
        return {"address": addr_text(packed(self)), "port_conflicts": self.port_conflicts,
                "conns": self.conns}


@dataclasses.dataclass
class Timeouts:
    """Connection timeouts in seconds; 0 in a request leaves a value alone."""

    tcp: int = 0
    tcp_fin: int = 0
    udp: int = 0

    def to_attrs(self) -> wire.Attrs:
        return [("IPVS_CMD_ATTR_TIMEOUT_TCP", self.tcp),
                ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", self.tcp_fin),
                ("IPVS_CMD_ATTR_TIMEOUT_UDP", self.udp)]

    @classmethod
    def from_attrs(cls, a: dict[str, Any]) -> "Timeouts":
        return cls(a.get("timeout_tcp", 0), a.get("timeout_tcp_fin", 0),
                   a.get("timeout_udp", 0))

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Daemon:
    """A connection synchronisation daemon (master or backup)."""

    state: str = "master"
    mcast_ifn: str = "eth0"
    syncid: int = 0
    sync_maxlen: int = 0
    mcast_group: IPAddress | None = None
    mcast_port: int = 0
    mcast_ttl: int = 0

    @property
    def state_bits(self) -> int:
        return wire.STATE_MASTER if self.state == "master" else wire.STATE_BACKUP

    def to_attrs(self, full: bool = True) -> wire.Attrs:
        attrs: wire.Attrs = [("IPVS_DAEMON_ATTR_STATE", self.state_bits),
                             ("IPVS_DAEMON_ATTR_MCAST_IFN", self.mcast_ifn),
                             ("IPVS_DAEMON_ATTR_SYNC_ID", self.syncid)]
        if not full:
            return attrs
        if self.sync_maxlen:
            attrs.append(("IPVS_DAEMON_ATTR_SYNC_MAXLEN", self.sync_maxlen))
        if self.mcast_port:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_PORT", self.mcast_port))
        if self.mcast_ttl:
            attrs.append(("IPVS_DAEMON_ATTR_MCAST_TTL", self.mcast_ttl))
        if self.mcast_group is not None:
            name = ("IPVS_DAEMON_ATTR_MCAST_GROUP6" if self.mcast_group.version == 6
                    else "IPVS_DAEMON_ATTR_MCAST_GROUP")
            attrs.append((name, self.mcast_group.packed))
        return attrs

    @classmethod
    def from_attrs(cls, a: dict[str, Any]) -> "Daemon":
        state = a.get("state", 0)
        group = None
        if "mcast_group" in a:
            group = ip(bytes(a["mcast_group"][:4]))
        elif "mcast_group6" in a:
            group = ip(bytes(a["mcast_group6"][:16]))
        return cls(state="master" if state & wire.STATE_MASTER else "backup",
                   mcast_ifn=a.get("mcast_ifn", ""), syncid=a.get("sync_id", 0),
                   sync_maxlen=a.get("sync_maxlen", 0), mcast_group=group,
                   mcast_port=a.get("mcast_port", 0), mcast_ttl=a.get("mcast_ttl", 0))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mcast_group"] = addr_text(self.mcast_group) if self.mcast_group else None
        return out


@dataclasses.dataclass
class Info:
    """The module's version and connection table size."""

    version: int = 0
    conn_tab_size: int = 0

    @property
    def version_text(self) -> str:
        v = self.version
        return f"{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}"

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version_text, "conn_tab_size": self.conn_tab_size}
