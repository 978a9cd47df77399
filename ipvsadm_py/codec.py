"""The model in netlink attributes and back: the one place where
forwarding methods, flags, tunnel types and daemon states meet their
numbers.

Attributes go out and come back under the same names (see
:mod:`ipvsadm_py.wire`).  :func:`encode_request` turns a
:class:`~ipvsadm_py.verbs.Request` into a command and its attributes.
"""

from __future__ import annotations

from ipvsadm_py import abi, wire
from ipvsadm_py.errors import InvalidInput
from ipvsadm_py.model import (AF_INET, AF_INET6, STATS_FIELDS, Daemon, DaemonState, Dest,
                              Forward, Info, LocalAddress, SchedFlag, Service, Stats,
                              Timeouts, TunnelCsum, TunnelType, ip, packed)
from ipvsadm_py.verbs import Request, Verb

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import Any

    from ipvsadm_py.wire import Attrs

FORWARD = {Forward.MASQ: abi.FWD_MASQ, Forward.LOCAL: abi.FWD_LOCALNODE,
           Forward.TUNNEL: abi.FWD_TUNNEL, Forward.ROUTE: abi.FWD_DROUTE,
           Forward.BYPASS: abi.FWD_BYPASS, Forward.FULLNAT: abi.FWD_FULLNAT}
TUN_TYPE = {TunnelType.IPIP: abi.TUN_TYPE_IPIP, TunnelType.GUE: abi.TUN_TYPE_GUE,
            TunnelType.GRE: abi.TUN_TYPE_GRE}
TUN_CSUM = {TunnelCsum.NOCSUM: abi.TUN_F_NOCSUM, TunnelCsum.CSUM: abi.TUN_F_CSUM,
            TunnelCsum.REMCSUM: abi.TUN_F_REMCSUM}
SCHED_FLAG = {SchedFlag.FLAG_1: abi.SVC_F_SCHED1, SchedFlag.FLAG_2: abi.SVC_F_SCHED2,
              SchedFlag.FLAG_3: abi.SVC_F_SCHED3}
# by method number (masked to 0-7): a tuple read by index
_FORWARD_OF = tuple({v: k for k, v in FORWARD.items()}.get(n, Forward.UNKNOWN)
                    for n in range(abi.FWD_MASK + 1))
_TUN_TYPE_OF = {v: k for k, v in TUN_TYPE.items()}
_TUN_CSUM_OF = {v: k for k, v in TUN_CSUM.items()}
_SCHED_MASK = abi.SVC_F_SCHED1 | abi.SVC_F_SCHED2 | abi.SVC_F_SCHED3
_SCHED_FLAGS_OF = {bits: frozenset(f for f, bit in SCHED_FLAG.items() if bits & bit)
                   for bits in range(0, _SCHED_MASK + 1, abi.SVC_F_SCHED1)}
_ALL_BITS = 0xFFFFFFFF
# Read once: an enum member read from its class costs a call, and these
# are read for every real server of a listing.
_NO_TUN_TYPE, _NO_TUN_CSUM = TunnelType.UNKNOWN, TunnelCsum.UNKNOWN


def _number(numbers: dict[Any, int], value: Any, what: str) -> int:
    try:
        return numbers[value]
    except KeyError:
        raise InvalidInput(f"cannot send {what} {value!r}") from None


# ---------------------------------------------------------------- addresses
def addr_to_wire(raw: bytes) -> bytes:
    """A packed address in the kernel's 16-byte ``union nf_inet_addr``."""
    return raw.ljust(16, b"\0")


def addr_from_wire(raw: bytes, af: int) -> bytes:
    """The packed address in a ``union nf_inet_addr`` of family ``af`` (a
    shorter field is read as the number it holds)."""
    size = 16 if af == AF_INET6 else 4
    return bytes(raw[:size]).rjust(size, b"\0")


# ---------------------------------------------------------------- services
def flag_word(svc: Service) -> int:
    """The service's IPVS_SVC_ATTR_FLAGS bits."""
    word = 0
    if svc.persistent:
        word |= abi.SVC_F_PERSISTENT
    if svc.hashed:
        word |= abi.SVC_F_HASHED
    if svc.onepacket:
        word |= abi.SVC_F_ONEPACKET
    if svc.synproxy:
        word |= abi.SVC_F_SYNPROXY
    for flag in svc.sched_flags:
        word |= SCHED_FLAG[flag]
    return word


def service_key(svc: Service) -> Attrs:
    """Only what names the service (for the requests about its members)."""
    if svc.fwmark:
        return [("af", svc.af), ("fwmark", svc.fwmark)]
    return [("af", svc.af), ("protocol", svc.protocol),
            ("addr", addr_to_wire(packed(svc) or bytes(16))), ("port", svc.port)]


def service_attrs(svc: Service) -> Attrs:
    """Every attribute, as ipvsadm sends them (flags with a full mask)."""
    attrs = service_key(svc)
    attrs.append(("sched_name", svc.scheduler))
    if svc.pe_name:
        attrs.append(("pe_name", svc.pe_name))
    netmask = (svc.netmask.to_bytes(4, "little") if svc.af == AF_INET6
               else svc.netmask.to_bytes(4, "big"))
    attrs += [("flags", wire.SvcFlags(flag_word(svc), _ALL_BITS)),
              ("timeout", svc.timeout),
              ("netmask", netmask)]
    return attrs


def service_from(a: dict[str, Any]) -> Service:
    af = a.get("af", AF_INET)
    raw_mask = a.get("netmask", b"\xff\xff\xff\xff")
    netmask = (int.from_bytes(raw_mask, "little") if af == AF_INET6
               else int.from_bytes(raw_mask, "big"))
    flags, mask = a.get("flags", (0, _ALL_BITS))
    word = flags & mask
    svc = Service(protocol=a.get("protocol", 0), port=a.get("port", 0),
                  fwmark=a.get("fwmark", 0), af=af, scheduler=a.get("sched_name", ""),
                  persistent=bool(word & abi.SVC_F_PERSISTENT),
                  timeout=a.get("timeout", 0), netmask=netmask,
                  pe_name=a.get("pe_name", ""),
                  onepacket=bool(word & abi.SVC_F_ONEPACKET),
                  synproxy=bool(word & abi.SVC_F_SYNPROXY),
                  sched_flags=_SCHED_FLAGS_OF[word & _SCHED_MASK],
                  hashed=bool(word & abi.SVC_F_HASHED))
    if "fwmark" in a:
        svc.protocol = 0
    elif "addr" in a:
        svc.addr = addr_from_wire(a["addr"], af)
    if "stats" in a or "stats64" in a:
        svc.stats = stats_from(a)
    return svc


def stats_from(a: dict[str, Any]) -> Stats:
    """The 64-bit counters if the kernel sent them, else the 32-bit ones."""
    data = a.get("stats64") or a.get("stats") or {}
    if isinstance(data, wire.LazyAttrs):
        data = data.get()
    return Stats(**{name: data.get(name, 0) for name in STATS_FIELDS})


# ---------------------------------------------------------------- real servers
def dest_attrs(dest: Dest) -> Attrs:
    return [("addr_family", dest.af),
            ("addr", addr_to_wire(packed(dest) or bytes(16))),
            ("port", dest.port),
            ("fwd_method", _number(FORWARD, dest.forward, "forwarding method")),
            ("weight", dest.weight),
            ("tun_type", _number(TUN_TYPE, dest.tun_type, "tunnel type")),
            ("tun_port", dest.tun_port),
            ("tun_flags", _number(TUN_CSUM, dest.tun_csum, "tunnel checksum")),
            ("u_thresh", dest.u_threshold),
            ("l_thresh", dest.l_threshold)]


def dest_from(a: dict[str, Any], svc_af: int, with_stats: bool = True) -> Dest:
    af = a.get("addr_family", svc_af)
    dest = Dest(addr=addr_from_wire(a["addr"], af), port=a.get("port", 0), af=af,
                forward=_FORWARD_OF[a.get("fwd_method", 0) & abi.FWD_MASK],
                weight=a.get("weight", 0), u_threshold=a.get("u_thresh", 0),
                l_threshold=a.get("l_thresh", 0),
                tun_type=_TUN_TYPE_OF.get(a.get("tun_type", 0), _NO_TUN_TYPE),
                tun_port=a.get("tun_port", 0),
                tun_csum=_TUN_CSUM_OF.get(a.get("tun_flags", 0), _NO_TUN_CSUM),
                active_conns=a.get("active_conns", 0),
                inact_conns=a.get("inact_conns", 0),
                persist_conns=a.get("persist_conns", 0))
    if with_stats and ("stats" in a or "stats64" in a):
        dest.stats = stats_from(a)
    return dest


# ---------------------------------------------------------------- the rest
def laddr_attrs(laddr: LocalAddress) -> Attrs:
    return [("addr", addr_to_wire(packed(laddr)))]


def laddr_from(a: dict[str, Any], svc_af: int) -> LocalAddress:
    return LocalAddress(addr=addr_from_wire(a["addr"], svc_af),
                        port_conflicts=a.get("port_conflict", 0),
                        conns=a.get("conn_counts", 0))


def timeouts_attrs(t: Timeouts) -> Attrs:
    return [("timeout_tcp", t.tcp), ("timeout_tcp_fin", t.tcp_fin), ("timeout_udp", t.udp)]


def timeouts_from(a: dict[str, Any]) -> Timeouts:
    return Timeouts(a.get("timeout_tcp", 0), a.get("timeout_tcp_fin", 0),
                    a.get("timeout_udp", 0))


def daemon_attrs(d: Daemon, full: bool = True) -> Attrs:
    """A daemon to start (``full``), or to stop (state, interface, id)."""
    state = abi.STATE_MASTER if d.state == DaemonState.MASTER else abi.STATE_BACKUP
    attrs: Attrs = [("state", state), ("mcast_ifn", d.mcast_ifn), ("sync_id", d.syncid)]
    if not full:
        return attrs
    if d.sync_maxlen:
        attrs.append(("sync_maxlen", d.sync_maxlen))
    if d.mcast_port:
        attrs.append(("mcast_port", d.mcast_port))
    if d.mcast_ttl:
        attrs.append(("mcast_ttl", d.mcast_ttl))
    if d.mcast_group is not None:
        group = d.mcast_group.packed
        attrs.append(("mcast_group6" if len(group) == 16 else "mcast_group", group))
    return attrs


def daemon_from(a: dict[str, Any]) -> Daemon:
    group = None
    if "mcast_group" in a:
        group = ip(bytes(a["mcast_group"][:4]))
    elif "mcast_group6" in a:
        group = ip(bytes(a["mcast_group6"][:16]))
    state = DaemonState.MASTER if a.get("state", 0) & abi.STATE_MASTER \
        else DaemonState.BACKUP
    return Daemon(state=state, mcast_ifn=a.get("mcast_ifn", ""), syncid=a.get("sync_id", 0),
                  sync_maxlen=a.get("sync_maxlen", 0), mcast_group=group,
                  mcast_port=a.get("mcast_port", 0), mcast_ttl=a.get("mcast_ttl", 0))


def daemon_running(a: dict[str, Any]) -> bool:
    """Whether a daemon dump entry is a running daemon (a state is set)."""
    return bool(a.get("state"))


def info_from(a: dict[str, Any]) -> Info:
    return Info(a.get("version", 0), a.get("conn_tab_size", 0))


# ---------------------------------------------------------------- requests
COMMANDS = {
    Verb.ADD_SERVICE: abi.CMD_NEW_SERVICE, Verb.EDIT_SERVICE: abi.CMD_SET_SERVICE,
    Verb.DELETE_SERVICE: abi.CMD_DEL_SERVICE, Verb.ZERO: abi.CMD_ZERO,
    Verb.FLUSH: abi.CMD_FLUSH, Verb.ADD_DEST: abi.CMD_NEW_DEST,
    Verb.EDIT_DEST: abi.CMD_SET_DEST, Verb.DELETE_DEST: abi.CMD_DEL_DEST,
    Verb.SET_TIMEOUTS: abi.CMD_SET_CONFIG, Verb.START_DAEMON: abi.CMD_NEW_DAEMON,
    Verb.STOP_DAEMON: abi.CMD_DEL_DAEMON, Verb.ADD_LADDR: abi.CMD_NEW_LADDR,
    Verb.DELETE_LADDR: abi.CMD_DEL_LADDR, Verb.GET_INFO: abi.CMD_GET_INFO,
    Verb.LIST_SERVICES: abi.CMD_GET_SERVICE, Verb.GET_SERVICE: abi.CMD_GET_SERVICE,
    Verb.LIST_DESTS: abi.CMD_GET_DEST, Verb.GET_TIMEOUTS: abi.CMD_GET_CONFIG,
    Verb.LIST_DAEMONS: abi.CMD_GET_DAEMON, Verb.LIST_LADDRS: abi.CMD_GET_LADDR,
}
# The message of a verb's replies, where it is not ipvsmsg.
REPLY_MESSAGE = {Verb.GET_INFO: "infomsg"}


_DEST_VERBS = frozenset({Verb.ADD_DEST, Verb.EDIT_DEST, Verb.DELETE_DEST})
_LADDR_VERBS = frozenset({Verb.ADD_LADDR, Verb.DELETE_LADDR})
_MEMBER_LISTS = frozenset({Verb.LIST_DESTS, Verb.LIST_LADDRS})
_DAEMON_VERBS = frozenset({Verb.START_DAEMON, Verb.STOP_DAEMON})
_START_DAEMON, _SET_TIMEOUTS = Verb.START_DAEMON, Verb.SET_TIMEOUTS


def request_attrs(req: Request) -> Attrs:
    """The attributes of a request."""
    verb, svc = req.verb, req.service
    if verb in _DEST_VERBS:
        return [("service", service_attrs(svc)), ("dest", dest_attrs(req.dest))]
    if verb in _LADDR_VERBS:
        return [("service", service_key(svc)), ("laddr", laddr_attrs(req.laddr))]
    if verb in _MEMBER_LISTS:
        return [("service", service_key(svc))] if svc is not None else []
    if verb == _SET_TIMEOUTS:
        return timeouts_attrs(req.timeouts or Timeouts())
    if verb in _DAEMON_VERBS:
        return [("daemon", daemon_attrs(req.daemon, full=verb == _START_DAEMON))]
    if svc is not None:     # add, edit, delete, get, zero a service
        return [("service", service_attrs(svc))]
    return []


def encode_request(req: Request) -> tuple[int, Attrs]:
    """The command and attributes of a request."""
    return COMMANDS[req.verb], request_attrs(req)
