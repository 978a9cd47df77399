"""The live IPVS services as keepalived.conf ``virtual_server`` blocks
(``ipvsadm-py export --format keepalived``), in the dialect
:mod:`.keepalived_conf` reads: reading the text back gives the same
services, real servers and local addresses.  What keepalived cannot say is
left out with a comment naming it.
"""

from __future__ import annotations

from typing import Iterable

from netaddr import IPAddress

from ipvsadm_py import acl
from ipvsadm_py.config.keepalived_conf import MAX_LADDR_RANGE, METHOD_WORDS
from ipvsadm_py.config.keepalived_lists import group_lines, reference_lines
from ipvsadm_py.config.plan import LiveState
from ipvsadm_py.model import (AF_INET6, Dest, Forward, LocalAddress, Protocol, Service,
                              TunnelType, addr_text)
from ipvsadm_py.order import sort_dests, sort_services

HEADER = ("# ipvsadm-py export --format keepalived: the IPVS services of this host\n"
          "# (apply with `ipvsadm-py apply FILE`, or use as keepalived.conf)\n")


def laddr_entries(addrs: Iterable[IPAddress]) -> list[str]:
    """Local addresses as few entries: runs of consecutive addresses as
    ``first-last`` (at most 1024 each, IPv6 within one last-32-bit block)."""
    out: list[str] = []
    run: list[IPAddress] = []
    for addr in sorted(addrs, key=lambda a: (a.version, int(a))):
        if run and addr.version == run[-1].version and int(addr) == int(run[-1]) + 1 \
                and len(run) < MAX_LADDR_RANGE and int(addr) >> 32 == int(run[0]) >> 32:
            run.append(addr)
            continue
        if run:
            out.append(_run_text(run))
        run = [addr]
    if run:
        out.append(_run_text(run))
    return out


def _run_text(run: list[IPAddress]) -> str:
    """``a``, ``a.b.c.d-e`` / ``2001:db8::1-1f`` (the last octet or group
    changes), else ``first-last``."""
    first, last = run[0], run[-1]
    if first == last:
        return str(first)
    bits = 8 if first.version == 4 else 16
    if int(first) >> bits == int(last) >> bits:
        low = int(last) & ((1 << bits) - 1)
        return f"{first}-{low}" if bits == 8 else f"{first}-{low:x}"
    return f"{first}-{last}"


def _method_text(d: Dest) -> str:
    words = [METHOD_WORDS[d.forward]]
    if d.forward == Forward.TUNNEL and d.tun_type != TunnelType.IPIP:
        words += ["type", d.tun_type.value]
        if d.tun_type == TunnelType.GUE:
            words += ["port", str(d.tun_port)]
        words.append(d.tun_csum.value)
    return " ".join(words)


def _service_lines(svc: Service, dests: list[Dest], laddrs: list[LocalAddress],
                   lists: list[acl.AccessList]) -> list[str]:
    """One virtual_server block; what keepalived cannot express becomes a
    comment saying so."""
    if svc.fwmark:
        head = [f"virtual_server fwmark {svc.fwmark} {{"]
        if svc.af == AF_INET6:
            head.append("    ip_family inet6")
    elif svc.protocol not in {p.value for p in Protocol}:
        return [f"# left out: {svc.describe()} (keepalived has no protocol {svc.protocol})"]
    else:
        head = [f"virtual_server {addr_text(svc.addr)} {svc.port} {{",
                f"    protocol {Protocol(svc.protocol).name}"]
    lines = head + [f"    lb_algo {svc.scheduler}"]
    if not dests:
        lines.append("    # no real servers: keepalived leaves this service out (with a "
                     "warning); ipvsadm-py apply creates it")
    kept = [d for d in dests if d.forward in METHOD_WORDS]
    lines += [f"    # left out: real server {d.describe()} (forwarding method "
              f"{d.forward.value})" for d in dests if d not in kept]
    texts = [_method_text(d) for d in sort_dests(kept)]
    default = max(texts, key=texts.count) if texts else None
    if default:
        lines.append(f"    lb_kind {default}")
    lines += _service_options(svc, kept)
    lines += reference_lines(lists)
    fullnat = any(d.forward == Forward.FULLNAT for d in kept)
    if laddrs and fullnat:
        lines += ["    local_address {"] + [f"        {e}" for e in
                                             laddr_entries(la.addr for la in laddrs)] + ["    }"]
    elif laddrs:
        lines.append("    # left out: local addresses (keepalived gives them only to a "
                     "virtual server with FNAT real servers)")
    for d in sort_dests(kept):
        lines += _dest_lines(d, default)
    return lines + ["}"]


def _service_options(svc: Service, dests: list[Dest]) -> list[str]:
    lines = []
    if svc.persistent:
        lines.append(f"    persistence_timeout {svc.timeout}")
        if svc.netmask != svc.default_netmask:
            lines.append(f"    persistence_granularity {svc.netmask_text()}")
    if svc.pe_name:
        lines.append(f"    persistence_engine {svc.pe_name}")
    if svc.onepacket:
        lines.append("    ops")
    lines += [f"    {name}" for name in svc.sched_flag_names()]
    if svc.synproxy and any(d.forward in (Forward.ROUTE, Forward.TUNNEL) for d in dests):
        lines.append("    # left out: syn_proxy (keepalived takes it only with NAT or FNAT "
                     "real servers)")
    elif svc.synproxy:
        lines.append("    syn_proxy")
    return lines


def _dest_lines(d: Dest, default: str | None) -> list[str]:
    lines = [f"    real_server {addr_text(d.addr)} {d.port} {{", f"        weight {d.weight}"]
    if _method_text(d) != default:
        lines.append(f"        lvs_method {_method_text(d)}")
    if d.u_threshold:
        lines.append(f"        uthreshold {d.u_threshold}")
    if d.l_threshold:
        lines.append(f"        lthreshold {d.l_threshold}")
    return lines + ["    }"]


def _target(svc: Service) -> acl.Target | None:
    """The list target of a service (None: a fwmark, port 0, or a protocol
    without lists)."""
    if svc.fwmark or not svc.port or svc.protocol not in {p.value for p in Protocol}:
        return None
    return acl.make_target(addr_text(svc.addr), Protocol(svc.protocol).name.lower(), svc.port)


def export_text(live: LiveState, lists: list[acl.AccessList] = ()) -> str:
    """The live services as keepalived virtual_server blocks, and the
    allow/deny lists of those services as deny_group/allow_group blocks
    (timeouts, sysctls and sync daemons are not written: they are
    keepalived's global_defs, outside this format)."""
    dests_of = {id(svc): dests for svc, dests in live.services}
    services = sort_services([svc for svc, _ in live.services])
    targets = {t for svc in services if (t := _target(svc)) is not None}
    kept = sorted((lst for lst in lists if lst.target in targets),
                  key=lambda lst: (lst.kind.value, lst.target.sort_key()))
    blocks = ["\n".join(group_lines(lst)) for lst in kept]
    blocks += [f"# left out: the {lst.kind.value} list of {lst.target.describe()} (no "
               "virtual_server to carry it; keepalived.conf has no VIP-wide lists)"
               for lst in lists if lst.target not in targets]
    blocks += ["\n".join(_service_lines(svc, dests_of[id(svc)], live.laddrs.get(svc.key, []),
                                        [lst for lst in kept if lst.target == _target(svc)]))
               for svc in services]
    return HEADER + "".join(f"\n{block}\n" for block in blocks)
