"""ipvsadm 1.31's table of services and real servers, byte for byte: the
listings (``-L`` and its views, ``-S``).  Connections, timeouts, daemons and
the extension views are :mod:`ipvsadm_py.cli.reports`'s; names of addresses
and ports :mod:`ipvsadm_py.cli.names`'.

Everything here turns model objects into strings; nothing talks to the
kernel.  The facts matched (column widths, number abbreviations, sort order,
name truncation) are ipvsadm's; see docs/ipvsadm-py.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ipvsadm_py.cli.names import addrport
from ipvsadm_py.model import (AF_INET, AF_INET6, FULL_MASK4, Dest, Forward, Info, LocalAddress,
                              Protocol, Service, Stats, TunnelCsum, TunnelType, packed)
from ipvsadm_py.order import i32, sort_dests, sort_services

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    Table = Sequence[tuple[Service, Sequence[Dest]]]


@dataclasses.dataclass
class Format:
    """What a listing shows (ipvsadm's FMT_* flags)."""

    numeric: bool = False
    rule: bool = False          # -S: as commands
    stats: bool = False
    rate: bool = False
    thresholds: bool = False
    persistent_conn: bool = False
    nosort: bool = False
    exact: bool = False
    tun_info: bool = False


# ---------------------------------------------------------------- numbers
def largenum(value: int, exact: bool) -> str:
    if exact:
        digits = len(str(value))
        return f"{value:>{9 if digits <= 8 else digits + 1}}"
    if value < 100_000_000:
        return f"{value:9d}"
    if value < 1_000_000_000:
        return f"{value // 1000:8d}K"
    if value < 100_000_000_000:
        return f"{value // 1_000_000:8d}M"
    if value < 100_000_000_000_000:
        return f"{value // 1_000_000_000:8d}G"
    return f"{value // 1_000_000_000_000:8d}T"


def _dest_stats(stats: Stats | None) -> Stats:
    """Real-server counters as ipvsadm reads them: 32 bits except bytes."""
    s = stats or Stats()
    m = 0xFFFFFFFF
    return Stats(s.conns & m, s.inpkts & m, s.outpkts & m, s.inbytes, s.outbytes,
                 s.cps & m, s.inpps & m, s.outpps & m, s.inbps & m, s.outbps & m)


# ---------------------------------------------------------------- listing
FORWARD_WORDS = {Forward.MASQ: "Masq", Forward.LOCAL: "Local", Forward.TUNNEL: "Tunnel",
                 Forward.ROUTE: "Route", Forward.FULLNAT: "FullNat"}
FORWARD_SWITCHES = {Forward.MASQ: "-m", Forward.TUNNEL: "-i", Forward.LOCAL: "-g",
                    Forward.ROUTE: "-g", Forward.FULLNAT: "-b"}
CSUM_WORDS = {TunnelCsum.NOCSUM: "-c", TunnelCsum.CSUM: "+c", TunnelCsum.REMCSUM: "r+c"}
CSUM_SWITCHES = {TunnelCsum.NOCSUM: "--tun-nocsum", TunnelCsum.CSUM: "--tun-csum",
                 TunnelCsum.REMCSUM: "--tun-remcsum"}
PROTOCOL_SWITCHES = {Protocol.TCP: "-t", Protocol.UDP: "-u", Protocol.SCTP: "--sctp-service"}
PROTOCOL_WORDS = {p: p.name for p in Protocol}
# Read once: an enum member read from its class costs a call (per line here).
_TUNNEL, _IPIP, _GUE, _GRE = Forward.TUNNEL, TunnelType.IPIP, TunnelType.GUE, TunnelType.GRE


def header(info: Info) -> str:
    return f"IP Virtual Server version {info.version_text} (size={info.conn_tab_size})\n"


def title(f: Format) -> str:
    """The column titles (none for -S)."""
    first = f"{'Prot LocalAddress:Port':<33}"
    if f.stats:
        return (f"{first} {'Conns':>8} {'InPkts':>8} {'OutPkts':>8} {'InBytes':>8} "
                f"{'OutBytes':>8}\n  -> RemoteAddress:Port\n")
    if f.rate:
        return (f"{first} {'CPS':>8} {'InPPS':>8} {'OutPPS':>8} {'InBPS':>8} "
                f"{'OutBPS':>8}\n  -> RemoteAddress:Port\n")
    if f.thresholds:
        return (f"{first} {'Uthreshold':<10} {'Lthreshold':<10} {'ActiveConn':<10} "
                f"{'InActConn':<10}\n  -> RemoteAddress:Port\n")
    if f.persistent_conn:
        return (f"{first} {'Weight':<9} {'PersistConn':<11} {'ActiveConn':<10} "
                f"{'InActConn':<10}\n  -> RemoteAddress:Port\n")
    if f.tun_info:
        return ("Prot LocalAddress:Port Scheduler Flags\n"
                "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn "
                "InActConn\n")
    if f.rule:
        return ""
    return ("Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")


def service_name(svc: Service, f: Format) -> str:
    """``TCP  10.0.0.1:80`` (listing) or ``-t 10.0.0.1:80`` (rules)."""
    if svc.fwmark:
        six = svc.af == AF_INET6
        mark = i32(svc.fwmark)          # ipvsadm prints it with %d
        if f.rule:
            return f"-f {mark}" + (" -6" if six else "")
        return f"FWM  {mark}" + (" IPv6" if six else "")
    vname = addrport(packed(svc) or bytes(4), svc.port, svc.protocol, f.numeric)
    if f.rule:
        return f"{PROTOCOL_SWITCHES.get(svc.protocol, '--xxx-service')} {vname}"
    name = f"{PROTOCOL_WORDS.get(svc.protocol, '?'):<4} {vname}"
    return name if svc.af == AF_INET6 else name[:33]


def _persistence_words(svc: Service, rule: bool) -> str:
    out = f" -p {svc.timeout}" if rule else f" persistent {svc.timeout}"
    if svc.af == AF_INET and svc.netmask != FULL_MASK4:
        out += (" -M " if rule else " mask ") + svc.netmask_text()
    if svc.af == AF_INET6 and svc.netmask != 128:
        out += (" -M " if rule else " mask ") + str(svc.netmask)
    return out


def service_line(svc: Service, name: str, f: Format) -> str:
    flags = ",".join(svc.sched_flag_names()) if svc.sched_flags else ""
    if f.rule:
        out = f"-A {name} -s {svc.scheduler}"
        if svc.persistent:
            out += _persistence_words(svc, True)
        if svc.pe_name:
            out += f" --pe {svc.pe_name}"
        if svc.onepacket:
            out += " -o"
        if svc.sched_flags:
            out += f" -b {flags}"
        if svc.synproxy:
            out += " -j enable"
        return out + "\n"
    if f.stats or f.rate:
        s = svc.stats or Stats()
        values = ((s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes) if f.stats
                  else (s.cps, s.inpps, s.outpps, s.inbps, s.outbps))
        return f"{name:<33}" + "".join(largenum(v, f.exact) for v in values) + "\n"
    out = f"{name} {svc.scheduler}"
    if svc.sched_flags:
        out += f" ({flags})"
    if svc.persistent:
        out += _persistence_words(svc, False)
        if svc.pe_name:
            out += f" pe {svc.pe_name}"
    if svc.onepacket:
        out += " ops"
    if svc.synproxy:
        out += " synproxy"
    return out + "\n"


def tunnel_info(d: Dest) -> str:
    if d.forward != _TUNNEL or d.tun_type not in (_IPIP, _GUE, _GRE):
        return "n/a"
    csum = CSUM_WORDS.get(d.tun_csum, "?")
    if d.tun_type == _GUE:
        return f"gue:{d.tun_port}:{csum}"
    if d.tun_type == _GRE:
        return f"gre:{csum}"
    return "ipip"


def dest_rule(name: str, dname: str, d: Dest) -> str:
    base = f"-a {name} -r {dname} {FORWARD_SWITCHES.get(d.forward, '(null)')} -w {d.weight}"
    if d.forward != _TUNNEL:
        return base + "\n"
    csum = CSUM_SWITCHES.get(d.tun_csum, "(null)")
    if d.tun_type == _GRE:
        return f"{base} --tun-type gre {csum}\n"
    if d.tun_type == _GUE:
        return f"{base} --tun-type gue --tun-port {d.tun_port} {csum}\n"
    if d.tun_type == _IPIP:
        return f"{base} --tun-type ipip\n"
    return base + "\n"


def dest_line(svc: Service, name: str, d: Dest, f: Format) -> str:
    dname = addrport(packed(d) or bytes(4), d.port, svc.protocol, f.numeric)
    if f.rule:
        return dest_rule(name, dname, d)
    if d.af != AF_INET6:
        dname = dname[:28]
    word = FORWARD_WORDS.get(d.forward, "(null)")
    if f.stats:
        s = _dest_stats(d.stats)
        return (f"  -> {dname:<28}" + "".join(largenum(v, f.exact) for v in
                (s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes)) + "\n")
    if f.rate:
        s = _dest_stats(d.stats)
        return (f"  -> {dname:<28} {s.cps:8d} {s.inpps:8d} {s.outpps:8d}"
                + largenum(s.inbps, f.exact) + largenum(s.outbps, f.exact) + "\n")
    if f.thresholds:
        return (f"  -> {dname:<28} {d.u_threshold:<10} {d.l_threshold:<10} "
                f"{d.active_conns:<10} {d.inact_conns:<10}\n")
    if f.persistent_conn:
        return (f"  -> {dname:<28} {d.weight:<9} {d.persist_conns:<11} "
                f"{d.active_conns:<10} {d.inact_conns:<10}\n")
    if f.tun_info:
        return (f"  -> {dname:<28} {word:<7} {tunnel_info(d):<13} {i32(d.weight):<6} "
                f"{d.active_conns:<10} {d.inact_conns:<10}\n")
    return (f"  -> {dname:<28} {word:<7} {i32(d.weight):<6} {d.active_conns:<10} "
            f"{d.inact_conns:<10}\n")


def service_block(svc: Service, dests: Sequence[Dest], f: Format,
                  laddrs: Sequence[LocalAddress] = ()) -> str:
    """A service line and its real servers' lines (and -P lines with -S)."""
    name = service_name(svc, f)
    parts = [service_line(svc, name, f)]
    for d in (dests if f.nosort else sort_dests(dests)):
        parts.append(dest_line(svc, name, d, f))
    if f.rule:
        for la in laddrs:
            parts.append(f"-P {name} -z {la.describe()}\n")
    return "".join(parts)


def listing(info: Info | None, table: Table, f: Format,
            laddrs: dict[tuple, Sequence[LocalAddress]] | None = None) -> str:
    """``ipvsadm -L`` (with ``info``), ``-L -t ...`` (without) or ``-S``."""
    parts = []
    if info is not None and not f.rule:
        parts.append(header(info))
    parts.append(title(f))
    rows = list(table)
    if not f.nosort:
        dests_of = {id(svc): dests for svc, dests in rows}
        rows = [(svc, dests_of[id(svc)]) for svc in sort_services([s for s, _ in rows])]
    for svc, dests in rows:
        parts.append(service_block(svc, dests, f, (laddrs or {}).get(svc.key, ())))
    return "".join(parts)


