"""Text and JSON output: the listing formats of Debian's ipvsadm 1.31, byte
for byte, plus the extension views (local addresses, extended counters).

Everything here turns API objects into strings; nothing talks to the kernel.
The facts matched (column widths, number abbreviations, sort order, name
truncation) are ipvsadm's output formats; see docs/ipvsadm-py.md.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import struct
from collections.abc import Callable, Sequence

from ipvsadm_py import model, wire
from ipvsadm_py.model import Daemon, Dest, Info, LocalAddress, Service, Timeouts

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")
    Table = Sequence[tuple[Service, Sequence[Dest]]]
else:
    Table = Sequence                  # the same name at run time


@dataclasses.dataclass
class Format:
    """What a listing shows (ipvsadm's FMT_* flags)."""

    numeric: bool = False
    rule: bool = False
    stats: bool = False
    rate: bool = False
    thresholds: bool = False
    persistent_conn: bool = False
    nosort: bool = False
    exact: bool = False
    tun_info: bool = False


# ---------------------------------------------------------------- sorting
def _i32(value: int) -> int:
    """The C ``int`` a 32-bit unsigned difference becomes."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


_WORDS6 = struct.Struct(">IIII").unpack


def _words(packed: bytes | None) -> tuple[int, ...]:
    """The address as four 32-bit words (ipvsadm compares them one by one)."""
    if not packed:
        return (0, 0, 0, 0)
    if len(packed) == 4:
        return (int.from_bytes(packed, "big"), 0, 0, 0)
    return _WORDS6(packed)


def compare_services(a: Service, b: Service) -> int:
    """ipvsadm's service order: fwmark, family, protocol, address, port, with
    its 32-bit wrapping subtractions kept (they decide far-apart values)."""
    r = _i32(a.fwmark - b.fwmark)
    if r:
        return r
    r = a.af - b.af
    if r:
        return r
    r = a.protocol - b.protocol
    if r:
        return r
    wa = _words(model.packed(a) if not a.fwmark else None)
    wb = _words(model.packed(b) if not b.fwmark else None)
    if a.af == model.AF_INET6:
        for x, y in zip(wa, wb):
            r = _i32(x - y)
            if r:
                break
    else:
        r = _i32(wa[0] - wb[0])
    if r:
        return r
    return a.port - b.port


def compare_dests(a: Dest, b: Dest) -> int:
    """ipvsadm's real-server order (address by the first one's family, then port)."""
    wa, wb = _words(model.packed(a)), _words(model.packed(b))
    r = 0
    if a.af == model.AF_INET6:
        for x, y in zip(wa, wb):
            r = _i32(x - y)
            if r:
                break
    else:
        r = _i32(wa[0] - wb[0])
    if r:
        return r
    return a.port - b.port


def msort(items: Sequence[T], cmp: Callable[[T, T], int]) -> list[T]:
    """glibc's qsort (a top-down merge sort, left first on ties), so that
    even an inconsistent comparison gives ipvsadm's order."""
    n = len(items)
    if n <= 1:
        return list(items)
    half = n // 2
    left, right = msort(items[:half], cmp), msort(items[half:], cmp)
    out: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out += left[i:]
    out += right[j:]
    return out


def _consistent(values: list[tuple[int, ...]]) -> bool:
    """True when no 32-bit difference can wrap (every field spans < 2**31)."""
    for column in zip(*values):
        if max(column) - min(column) >= 1 << 31:
            return False
    return True


def sort_services(services: Sequence[Service]) -> list[Service]:
    keys = [(s.fwmark, s.af, s.protocol,
             *(_words(model.packed(s) if not s.fwmark else None)), s.port) for s in services]
    if _consistent(keys):   # fast path: the comparison is then a plain order
        order = sorted(range(len(services)), key=keys.__getitem__)
        return [services[i] for i in order]
    return msort(list(services), compare_services)


def sort_dests(dests: Sequence[Dest]) -> list[Dest]:
    if len({d.af for d in dests}) <= 1:
        keys = [(*_words(model.packed(d)), d.port) for d in dests]
        if _consistent(keys):
            order = sorted(range(len(dests)), key=keys.__getitem__)
            return [dests[i] for i in order]
    return msort(list(dests), compare_dests)


# ---------------------------------------------------------------- names
@functools.lru_cache(maxsize=4096)
def _host(af: int, packed: bytes) -> str:
    try:
        return socket.gethostbyaddr(socket.inet_ntop(af, packed))[0]
    except (OSError, UnicodeError):
        return socket.inet_ntop(af, packed)


@functools.lru_cache(maxsize=4096)
def _service_name(port: int, protocol: int) -> str:
    proto = model.PROTOCOL_NAMES.get(protocol)
    if proto:
        try:
            return socket.getservbyport(port, proto)
        except OSError:
            pass
    return str(port)


def addrport(packed: bytes, port: int, protocol: int, numeric: bool) -> str:
    """ipvsadm's ``addrport_to_anyname`` of a packed address: names unless
    numeric, [v6]."""
    af = model.af_of_packed(packed)
    if numeric:
        text, ptext = socket.inet_ntop(af, packed), str(port)
    else:
        text, ptext = _host(af, packed), _service_name(port, protocol)
    return f"{text}:{ptext}" if af == model.AF_INET else f"[{text}]:{ptext}"


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


def _dest_stats(stats: model.Stats | None) -> model.Stats:
    """Real-server counters as ipvsadm reads them: 32 bits except bytes."""
    s = stats or model.Stats()
    m = 0xFFFFFFFF
    return model.Stats(s.conns & m, s.inpkts & m, s.outpkts & m, s.inbytes, s.outbytes,
                       s.cps & m, s.inpps & m, s.outpps & m, s.inbps & m, s.outbps & m)


# ---------------------------------------------------------------- listing
FWD_WORDS = {wire.FWD_MASQ: "Masq", wire.FWD_LOCALNODE: "Local", wire.FWD_TUNNEL: "Tunnel",
             wire.FWD_DROUTE: "Route", wire.FWD_FULLNAT: "FullNat"}
FWD_SWITCH = {wire.FWD_MASQ: "-m", wire.FWD_TUNNEL: "-i", wire.FWD_LOCALNODE: "-g",
              wire.FWD_DROUTE: "-g", wire.FWD_FULLNAT: "-b"}
TUN_NAMES = ("ipip", "gue", "gre")
TUN_FLAG_WORDS = ("-c", "+c", "r+c")
TUN_FLAG_OPTS = ("--tun-nocsum", "--tun-csum", "--tun-remcsum")


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
        six = svc.af == model.AF_INET6
        mark = _i32(svc.fwmark)          # ipvsadm prints it with %d
        if f.rule:
            return f"-f {mark}" + (" -6" if six else "")
        return f"FWM  {mark}" + (" IPv6" if six else "")
    vname = addrport(model.packed(svc) or bytes(4), svc.port, svc.protocol, f.numeric)
    if f.rule:
        option = {wire.IPPROTO_TCP: "-t", wire.IPPROTO_UDP: "-u",
                  wire.IPPROTO_SCTP: "--sctp-service"}.get(svc.protocol, "--xxx-service")
        return f"{option} {vname}"
    proto = {wire.IPPROTO_TCP: "TCP", wire.IPPROTO_UDP: "UDP",
             wire.IPPROTO_SCTP: "SCTP"}.get(svc.protocol, "?")
    name = f"{proto:<4} {vname}"
    return name if svc.af == model.AF_INET6 else name[:33]


def _persistence_words(svc: Service, rule: bool) -> str:
    out = f" -p {svc.timeout}" if rule else f" persistent {svc.timeout}"
    if svc.af == model.AF_INET and svc.netmask != model.FULL_MASK4:
        out += (" -M " if rule else " mask ") + svc.netmask_text()
    if svc.af == model.AF_INET6 and svc.netmask != 128:
        out += (" -M " if rule else " mask ") + str(svc.netmask)
    return out


def service_line(svc: Service, name: str, f: Format) -> str:
    flags = ",".join(svc.sched_flags) if svc.flags & wire.SVC_F_SCHED_MASK else ""
    if f.rule:
        out = f"-A {name} -s {svc.scheduler}"
        if svc.persistent:
            out += _persistence_words(svc, True)
        if svc.pe_name:
            out += f" --pe {svc.pe_name}"
        if svc.onepacket:
            out += " -o"
        if svc.flags & wire.SVC_F_SCHED_MASK:
            out += f" -b {flags}"
        if svc.synproxy:
            out += " -j enable"
        return out + "\n"
    if f.stats or f.rate:
        s = svc.stats or model.Stats()
        values = ((s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes) if f.stats
                  else (s.cps, s.inpps, s.outpps, s.inbps, s.outbps))
        return f"{name:<33}" + "".join(largenum(v, f.exact) for v in values) + "\n"
    out = f"{name} {svc.scheduler}"
    if svc.flags & wire.SVC_F_SCHED_MASK:
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
    if d.forward != wire.FWD_TUNNEL or d.tun_type >= len(TUN_NAMES):
        return "n/a"
    flag = TUN_FLAG_WORDS[d.tun_flags] if d.tun_flags < 3 else "?"
    if d.tun_type == wire.TUN_TYPE_GUE:
        return f"gue:{d.tun_port}:{flag}"
    if d.tun_type == wire.TUN_TYPE_GRE:
        return f"gre:{flag}"
    return "ipip"


def dest_rule(name: str, dname: str, d: Dest) -> str:
    switch = FWD_SWITCH.get(d.forward, "(null)")
    base = f"-a {name} -r {dname} {switch} -w {d.weight}"
    if d.forward != wire.FWD_TUNNEL:
        return base + "\n"
    flag = TUN_FLAG_OPTS[d.tun_flags] if d.tun_flags < 3 else "(null)"
    if d.tun_type == wire.TUN_TYPE_GRE:
        return f"{base} --tun-type gre {flag}\n"
    if d.tun_type == wire.TUN_TYPE_GUE:
        return f"{base} --tun-type gue --tun-port {d.tun_port} {flag}\n"
    if d.tun_type == wire.TUN_TYPE_IPIP:
        return f"{base} --tun-type ipip\n"
    return base + "\n"


def dest_line(svc: Service, name: str, d: Dest, f: Format) -> str:
    dname = addrport(model.packed(d) or bytes(4), d.port, svc.protocol, f.numeric)
    if f.rule:
        return dest_rule(name, dname, d)
    if d.af != model.AF_INET6:
        dname = dname[:28]
    word = FWD_WORDS.get(d.forward, "(null)")
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
        return (f"  -> {dname:<28} {word:<7} {tunnel_info(d):<13} {_i32(d.weight):<6} "
                f"{d.active_conns:<10} {d.inact_conns:<10}\n")
    return (f"  -> {dname:<28} {word:<7} {_i32(d.weight):<6} {d.active_conns:<10} "
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
            parts.append(f"-P {name} -z {model.addr_text(model.packed(la))}\n")
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
        by_key = {id(svc): dests for svc, dests in rows}
        rows = [(svc, by_key[id(svc)]) for svc in sort_services([s for s, _ in rows])]
    for svc, dests in rows:
        parts.append(service_block(svc, dests, f, (laddrs or {}).get(svc.key, ())))
    return "".join(parts)


def timeouts(t: Timeouts) -> str:
    return f"Timeout (tcp tcpfin udp): {t.tcp} {t.tcp_fin} {t.udp}\n"


def daemons(ds: Sequence[Daemon]) -> str:
    out = []
    for d in ds:
        line = f"{d.state} sync daemon (mcast={d.mcast_ifn}, syncid={d.syncid}"
        if d.sync_maxlen:
            line += f", maxlen={d.sync_maxlen}"
        if d.mcast_group is not None:
            line += f", group={model.addr_text(d.mcast_group)}"
        if d.mcast_port:
            line += f", port={d.mcast_port}"
        if d.mcast_ttl:
            line += f", ttl={d.mcast_ttl}"
        out.append(line + ")\n")
    return "".join(out)


# ---------------------------------------------------------------- connections
def _proc_addr(text: str) -> tuple[int, bytes]:
    try:
        return model.AF_INET6, socket.inet_pton(socket.AF_INET6, text)
    except OSError:
        pass
    try:
        return model.AF_INET, socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return model.AF_INET, (int(text, 16) & 0xFFFFFFFF).to_bytes(4, "big")


def connections(proc_text: str, f: Format) -> str:
    """``ipvsadm -Lc`` from the text of /proc/net/ip_vs_conn."""
    lines = proc_text.splitlines()
    out = ["IPVS connection entries\n"]
    if f.persistent_conn:
        out.append(f"pro expire {'state':<11} {'source':<18} {'virtual':<18} "
                   f"{'destination':<18} {'pe name':<16} pe_data\n")
    else:
        out.append(f"pro expire {'state':<11} {'source':<18} {'virtual':<18} destination\n")
    for line in lines[1:]:
        tok = line.split()
        if len(tok) < 9:
            continue
        proto = model.PROTOCOLS.get(tok[0].lower(), 0)
        af, caddr = _proc_addr(tok[1])
        vaddr = (socket.inet_pton(socket.AF_INET6, tok[3]) if af == model.AF_INET6
                 else _proc_addr(tok[3])[1])
        daddr = _proc_addr(tok[5])[1]

        def name(raw: bytes, port_hex: str) -> str:
            return addrport(raw, int(port_hex, 16) & 0xFFFF, proto, f.numeric)

        cname, vname = name(caddr, tok[2]), name(vaddr, tok[4])
        dname = name(daddr, tok[6])
        expires = int(tok[8]) & 0xFFFFFFFF
        expire = f"{expires // 60:02d}:{expires % 60:02d}"
        if f.persistent_conn and len(tok) >= 11:
            out.append(f"{tok[0]:<3} {expire:<6} {tok[7]:<11} {cname:<18} {vname:<18} "
                       f"{dname:<16} {tok[9]:<18} {tok[10]}\n")
        else:
            out.append(f"{tok[0]:<3} {expire:<6} {tok[7]:<11} {cname:<18} {vname:<18} "
                       f"{dname}\n")
    return "".join(out)


def connections_json(proc_text: str) -> list[dict[str, Any]]:
    out = []
    for line in proc_text.splitlines()[1:]:
        tok = line.split()
        if len(tok) < 9:
            continue
        addrs = []
        for index in (1, 3, 5):
            af, raw = _proc_addr(tok[index])
            addrs.append(socket.inet_ntop(af, raw))
        out.append({"protocol": tok[0].lower(), "client": addrs[0],
                    "client_port": int(tok[2], 16), "virtual": addrs[1],
                    "virtual_port": int(tok[4], 16), "dest": addrs[2],
                    "dest_port": int(tok[6], 16), "state": tok[7],
                    "expires": int(tok[8]),
                    "pe_name": tok[9] if len(tok) > 9 else None,
                    "pe_data": tok[10] if len(tok) > 10 else None})
    return out


# ---------------------------------------------------------------- extensions
def laddr_listing(rows: Sequence[tuple[Service, Sequence[LocalAddress]]], numeric: bool) -> str:
    """``-G``: VIP:VPORT, TOTAL, SNAT_IP, CONFLICTS, CONNS (the Alibaba columns)."""
    out = [f"{'VIP:VPORT':<20} {'TOTAL':<8} {'SNAT_IP':<20} {'CONFLICTS':<10} CONNS\n"]
    for svc, las in rows:
        vip = (addrport(model.packed(svc) or bytes(4), svc.port, svc.protocol, numeric)
               if not svc.fwmark
               else service_name(svc, Format()))
        out.append(f"{vip:<20} {len(las)}\n")
        for la in las:
            out.append(f"{'':<20} {'':<8} {model.addr_text(model.packed(la)):<20} "
                       f"{la.port_conflicts:<10} {la.conns}\n")
    return "".join(out)


def ext_stats(proc_text: str) -> str:
    """``--ext-stats``: /proc/net/ip_vs_ext_stats, name and total per counter."""
    lines = [line.split() for line in proc_text.splitlines() if line.strip()]
    out = []
    for tok in lines:
        if len(tok) < 2 or not tok[-1].isdigit():
            continue
        out.append(f"{tok[0]:<40} {tok[-1]:>20}\n")
    return "".join(out)


# ---------------------------------------------------------------- JSON
JSON_SCHEMA_VERSION = 1


def table_json(info: Info | None, table: Table,
               laddrs: dict[tuple, Sequence[LocalAddress]] | None = None) -> dict[str, Any]:
    """The ``--json`` document of a listing (schema: docs/ipvsadm-py.md)."""
    services = []
    for svc in sort_services([s for s, _ in table]):
        dests = dict((id(s), d) for s, d in table)[id(svc)]
        entry = svc.to_dict()
        entry["stats"] = (svc.stats or model.Stats()).to_dict()
        entry["dests"] = []
        for d in sort_dests(dests):
            dd = d.to_dict()
            dd["stats"] = (d.stats or model.Stats()).to_dict()
            entry["dests"].append(dd)
        if laddrs is not None:
            entry["laddrs"] = [la.to_dict() for la in laddrs.get(svc.key, ())]
        services.append(entry)
    doc: dict[str, Any] = {"schema": JSON_SCHEMA_VERSION}
    if info is not None:
        doc["ipvs"] = info.to_dict()
    doc["services"] = services
    return doc


def dumps(doc: Any) -> str:
    import json

    return json.dumps(doc, indent=2, sort_keys=False) + "\n"
