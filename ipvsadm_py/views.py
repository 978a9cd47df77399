"""The model as plain data (dicts, lists, numbers, strings), and the one
JSON document every ``--json`` listing prints.

Every document is ``{"schema": 1, KIND: DATA}``, KIND naming the listing:
``services`` (with ``ipvs`` beside it for the whole table), ``connections``,
``timeouts``, ``daemons``, ``laddrs``, ``ext_stats``.  docs/ipvsadm-py.md
describes each.  Building a document takes time in proportion to its size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ipvsadm_py import codec
from ipvsadm_py.model import (Daemon, Dest, Forward, Info, LocalAddress, Service, Stats,
                              Timeouts, addr_text, family_of, packed, protocol_name)
from ipvsadm_py.order import sort_dests, sort_services
from ipvsadm_py.procfs import Connection

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import Any

    Table = Sequence[tuple[Service, Sequence[Dest]]]

SCHEMA = 1


def document(kind: str, data: Any, **beside: Any) -> dict[str, Any]:
    """The envelope: the schema version, then the listing under its kind."""
    return {"schema": SCHEMA, **beside, kind: data}


# ---------------------------------------------------------------- objects
def stats_dict(stats: Stats | None) -> dict[str, int]:
    return dataclasses.asdict(stats or Stats())


def service_dict(svc: Service) -> dict[str, Any]:
    out: dict[str, Any] = {"family": family_of(svc.af)}
    if svc.fwmark:
        out["fwmark"] = svc.fwmark
    else:
        raw = packed(svc)
        out["protocol"] = protocol_name(svc.protocol)
        out["address"] = addr_text(raw) if raw else None
        out["port"] = svc.port
    out["scheduler"] = svc.scheduler
    out["sched_flags"] = svc.sched_flag_names()
    out["persistent"] = svc.timeout if svc.persistent else None
    out["netmask"] = svc.netmask_text() if svc.persistent else None
    out["pe"] = svc.pe_name or None
    out["ops"] = svc.onepacket
    out["synproxy"] = svc.synproxy
    out["flags"] = codec.flag_word(svc)      # the kernel's bits, for scripts that read them
    return out


def dest_dict(dest: Dest) -> dict[str, Any]:
    out: dict[str, Any] = {"family": family_of(dest.af), "address": addr_text(packed(dest)),
                           "port": dest.port, "forward": dest.forward.value,
                           "weight": dest.weight, "u_threshold": dest.u_threshold,
                           "l_threshold": dest.l_threshold}
    if dest.forward == Forward.TUNNEL:
        out["tunnel"] = {"type": dest.tun_type.value, "port": dest.tun_port,
                         "csum": dest.tun_csum.value}
    out["active_conns"] = dest.active_conns
    out["inact_conns"] = dest.inact_conns
    out["persist_conns"] = dest.persist_conns
    return out


def laddr_dict(laddr: LocalAddress) -> dict[str, Any]:
    return {"address": laddr.describe(), "port_conflicts": laddr.port_conflicts,
            "conns": laddr.conns}


def info_dict(info: Info) -> dict[str, Any]:
    return {"version": info.version_text, "conn_tab_size": info.conn_tab_size}


def timeouts_dict(t: Timeouts) -> dict[str, int]:
    return dataclasses.asdict(t)


def daemon_dict(d: Daemon) -> dict[str, Any]:
    return {"state": str(d.state),
            "mcast_ifn": d.mcast_ifn, "syncid": d.syncid, "sync_maxlen": d.sync_maxlen,
            "mcast_group": addr_text(d.mcast_group) if d.mcast_group else None,
            "mcast_port": d.mcast_port, "mcast_ttl": d.mcast_ttl}


def connection_dict(c: Connection) -> dict[str, Any]:
    return {"protocol": c.protocol.lower(), "client": addr_text(c.client),
            "client_port": c.client_port, "virtual": addr_text(c.virtual),
            "virtual_port": c.virtual_port, "dest": addr_text(c.dest),
            "dest_port": c.dest_port, "state": c.state, "expires": c.expires,
            "pe_name": c.pe_name, "pe_data": c.pe_data}


# ---------------------------------------------------------------- documents
def services_document(info: Info | None, table: Table,
                      laddrs: dict[tuple, Sequence[LocalAddress]] | None = None
                      ) -> dict[str, Any]:
    """Services in ipvsadm's order, each with its real servers (sorted too),
    counters, and local addresses when ``laddrs`` is given (FULLNAT)."""
    dests_of = {id(svc): dests for svc, dests in table}
    services = []
    for svc in sort_services([svc for svc, _ in table]):
        entry = service_dict(svc)
        entry["stats"] = stats_dict(svc.stats)
        entry["dests"] = [{**dest_dict(d), "stats": stats_dict(d.stats)}
                          for d in sort_dests(dests_of[id(svc)])]
        if laddrs is not None:
            entry["laddrs"] = [laddr_dict(la) for la in laddrs.get(svc.key, ())]
        services.append(entry)
    if info is None:
        return document("services", services)
    return document("services", services, ipvs=info_dict(info))


def laddrs_document(rows: Sequence[tuple[Service, Sequence[LocalAddress]]]) -> dict[str, Any]:
    return document("laddrs", [{"service": service_dict(svc),
                                "laddrs": [laddr_dict(la) for la in las]}
                               for svc, las in rows])


def timeouts_document(t: Timeouts) -> dict[str, Any]:
    return document("timeouts", timeouts_dict(t))


def daemons_document(daemons: Sequence[Daemon]) -> dict[str, Any]:
    return document("daemons", [daemon_dict(d) for d in daemons])


def connections_document(conns: Sequence[Connection]) -> dict[str, Any]:
    return document("connections", [connection_dict(c) for c in conns])


def ext_stats_document(counters: dict[str, int]) -> dict[str, Any]:
    return document("ext_stats", dict(counters))


def dumps(doc: Any) -> str:
    import json

    return json.dumps(doc, indent=2) + "\n"
