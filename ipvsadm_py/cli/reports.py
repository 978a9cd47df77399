"""ipvsadm 1.31's text output besides the table of services, byte for byte:
connections (``-Lc``), timeouts (``-L --timeout``), sync daemons
(``-L --daemon``), and the extension views (``-G`` local addresses,
``--ext-stats`` counters).  The table itself is :mod:`ipvsadm_py.cli.fmt`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from ipvsadm_py.cli.fmt import Format, service_name
from ipvsadm_py.cli.names import addrport
from ipvsadm_py.model import Daemon, LocalAddress, Protocol, Service, Timeouts, addr_text, packed
from ipvsadm_py.procfs import Connection


def timeouts(t: Timeouts) -> str:
    return f"Timeout (tcp tcpfin udp): {t.tcp} {t.tcp_fin} {t.udp}\n"


def daemons(ds: Sequence[Daemon]) -> str:
    out = []
    for d in ds:
        line = f"{d.state} sync daemon (mcast={d.mcast_ifn}, syncid={d.syncid}"
        if d.sync_maxlen:
            line += f", maxlen={d.sync_maxlen}"
        if d.mcast_group is not None:
            line += f", group={addr_text(d.mcast_group)}"
        if d.mcast_port:
            line += f", port={d.mcast_port}"
        if d.mcast_ttl:
            line += f", ttl={d.mcast_ttl}"
        out.append(line + ")\n")
    return "".join(out)


def connections(conns: Sequence[Connection], f: Format) -> str:
    """``ipvsadm -Lc``."""
    out = ["IPVS connection entries\n"]
    if f.persistent_conn:
        out.append(f"pro expire {'state':<11} {'source':<18} {'virtual':<18} "
                   f"{'destination':<18} {'pe name':<16} pe_data\n")
    else:
        out.append(f"pro expire {'state':<11} {'source':<18} {'virtual':<18} destination\n")
    for c in conns:
        proto = Protocol.__members__.get(c.protocol.upper(), 0)
        cname = addrport(c.client, c.client_port & 0xFFFF, proto, f.numeric)
        vname = addrport(c.virtual, c.virtual_port & 0xFFFF, proto, f.numeric)
        dname = addrport(c.dest, c.dest_port & 0xFFFF, proto, f.numeric)
        expires = c.expires & 0xFFFFFFFF
        expire = f"{expires // 60:02d}:{expires % 60:02d}"
        if f.persistent_conn and c.pe_data is not None:
            out.append(f"{c.protocol:<3} {expire:<6} {c.state:<11} {cname:<18} {vname:<18} "
                       f"{dname:<16} {c.pe_name:<18} {c.pe_data}\n")
        else:
            out.append(f"{c.protocol:<3} {expire:<6} {c.state:<11} {cname:<18} {vname:<18} "
                       f"{dname}\n")
    return "".join(out)


def laddr_listing(rows: Sequence[tuple[Service, Sequence[LocalAddress]]], numeric: bool) -> str:
    """``-G``: VIP:VPORT, TOTAL, SNAT_IP, CONFLICTS, CONNS (the Alibaba columns)."""
    out = [f"{'VIP:VPORT':<20} {'TOTAL':<8} {'SNAT_IP':<20} {'CONFLICTS':<10} CONNS\n"]
    for svc, las in rows:
        vip = (addrport(packed(svc) or bytes(4), svc.port, svc.protocol, numeric)
               if not svc.fwmark else service_name(svc, Format()))
        out.append(f"{vip:<20} {len(las)}\n")
        for la in las:
            out.append(f"{'':<20} {'':<8} {la.describe():<20} "
                       f"{la.port_conflicts:<10} {la.conns}\n")
    return "".join(out)


def ext_stats(counters: dict[str, int]) -> str:
    """``--ext-stats``: name and total per counter."""
    return "".join(f"{name:<40} {total:>20}\n" for name, total in counters.items())
