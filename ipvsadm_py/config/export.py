"""The live state as a configuration file (``ipvsadm-py export``): applying
it again plans nothing."""

from __future__ import annotations

from typing import Any

import yaml
from netaddr import IPAddress

from ipvsadm_py.acl import AccessList, Kind, Target, format_duration, make_target
from ipvsadm_py.config.plan import LiveState
from ipvsadm_py.config.schema import SCHEMA_VERSION
from ipvsadm_py.model import (AF_INET6, Daemon, Dest, Forward, Protocol, Service, TunnelType,
                              addr_text, family_of)
from ipvsadm_py.order import sort_dests, sort_services


def _compress(addrs: list[IPAddress]) -> list[str]:
    """Consecutive addresses as ``first-last`` ranges."""
    out: list[str] = []
    start = prev = None
    for addr in sorted(addrs, key=int):
        if prev is not None and int(addr) == int(prev) + 1:
            prev = addr
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = addr
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return out


def _service_entry(svc: Service) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if svc.fwmark:
        entry["fwmark"] = svc.fwmark
        entry["family"] = family_of(svc.af)
    else:
        known = svc.protocol in {p.value for p in Protocol}
        entry["protocol"] = Protocol(svc.protocol).name.lower() if known else "tcp"
        entry["address"] = addr_text(svc.addr)
        entry["port"] = svc.port
    entry["scheduler"] = svc.scheduler
    if svc.sched_flags:
        entry["sched_flags"] = svc.sched_flag_names()
    if svc.persistent:
        entry["persistent"] = svc.timeout
        if svc.netmask != svc.default_netmask:
            entry["netmask"] = svc.netmask if svc.af == AF_INET6 else svc.netmask_text()
    if svc.pe_name:
        entry["pe"] = svc.pe_name
    if svc.onepacket:
        entry["ops"] = True
    if svc.synproxy:
        entry["synproxy"] = True
    return entry


def _dest_entry(d: Dest) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": addr_text(d.addr), "port": d.port,
                             "forward": d.forward.value, "weight": d.weight}
    if d.u_threshold:
        entry["u_threshold"] = d.u_threshold
    if d.l_threshold:
        entry["l_threshold"] = d.l_threshold
    if d.forward == Forward.TUNNEL and d.tun_type != TunnelType.IPIP:
        tunnel: dict[str, Any] = {"type": d.tun_type.value}
        if d.tun_type == TunnelType.GUE:
            tunnel["port"] = d.tun_port
        tunnel["csum"] = d.tun_csum.value
        entry["tunnel"] = tunnel
    return entry


def _daemon_entry(d: Daemon) -> dict[str, Any]:
    out: dict[str, Any] = {"state": str(d.state), "mcast_interface": d.mcast_ifn,
                           "syncid": d.syncid}
    if d.sync_maxlen:
        out["sync_maxlen"] = d.sync_maxlen
    if d.mcast_group is not None:
        out["mcast_group"] = addr_text(d.mcast_group)
    if d.mcast_port:
        out["mcast_port"] = d.mcast_port
    if d.mcast_ttl:
        out["mcast_ttl"] = d.mcast_ttl
    return out


def _entries(lst: AccessList) -> list[Any]:
    """A list's entries as the file writes them; a temporary one with what
    is left of its timeout (applying the export keeps it as it is)."""
    out: list[Any] = []
    for e in sorted(lst.entries.values(),
                    key=lambda e: (int(e.network.network_address), e.network.prefixlen)):
        net = e.network.compressed
        if e.network.prefixlen == e.network.max_prefixlen:
            net = str(e.network.network_address)
        if e.timeout is None:
            out.append(net)
        else:
            left = e.expires if e.expires is not None else e.timeout
            out.append({"address": net, "timeout": format_duration(max(left, 1))})
    return out


def _target_of(svc: Service) -> Target | None:
    if svc.fwmark or not svc.port or svc.protocol not in {p.value for p in Protocol}:
        return None
    return make_target(addr_text(svc.addr), Protocol(svc.protocol).name.lower(), svc.port)


def _vip_entries(lists: list[AccessList], used: set[tuple]) -> list[dict[str, Any]]:
    """The lists that no exported service carries, as ``vips:`` entries."""
    by_target: dict[Target, dict[str, Any]] = {}
    for lst in sorted(lists, key=lambda lst: (lst.target.family, lst.target)):
        if lst.key in used:
            continue
        t = lst.target
        entry = by_target.setdefault(t, {"address": t.address})
        if t.protocol is not None:
            entry.update(protocol=t.protocol, port=t.port)
        entry[lst.kind.value] = _entries(lst)
    return list(by_target.values())


def export_dict(live: LiveState, sysctls: bool = True,
                lists: list[AccessList] | None = None) -> dict[str, Any]:
    """The live state as a configuration document; ``lists`` (the allow
    and deny lists) go under their services, or under ``vips``."""
    dests_of = {id(svc): dests for svc, dests in live.services}
    by_key = {lst.key: lst for lst in lists or []}
    used: set[tuple] = set()
    services = []
    for svc in sort_services([svc for svc, _ in live.services]):
        entry = _service_entry(svc)
        las = live.laddrs.get(svc.key)
        if las:
            entry["laddrs"] = _compress([la.addr for la in las])
        entry["dests"] = [_dest_entry(d) for d in sort_dests(dests_of[id(svc)])]
        target = _target_of(svc)
        for kind in Kind:
            lst = by_key.get((kind, target)) if target is not None else None
            if lst is not None:
                entry[kind.value] = _entries(lst)
                used.add(lst.key)
        services.append(entry)
    doc: dict[str, Any] = {"version": SCHEMA_VERSION, "services": services,
                           "timeouts": {"tcp": live.timeouts.tcp,
                                        "tcp_fin": live.timeouts.tcp_fin,
                                        "udp": live.timeouts.udp},
                           "daemons": [_daemon_entry(d) for d in live.daemons]}
    if sysctls:
        doc["sysctls"] = dict(live.sysctls)
    vips = _vip_entries(lists or [], used)
    if vips:
        doc["vips"] = vips
    return doc


def export_text(live: LiveState, sysctls: bool = True,
                lists: list[AccessList] | None = None) -> str:
    header = "# ipvsadm-py export: apply with `ipvsadm-py apply FILE`\n"
    return header + yaml.safe_dump(export_dict(live, sysctls, lists), sort_keys=False,
                                   default_flow_style=False)
