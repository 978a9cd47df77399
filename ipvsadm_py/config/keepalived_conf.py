"""keepalived.conf as a configuration file: the ``virtual_server`` subset.

:func:`validate` reads the IPVS part of a keepalived configuration in our
FULLNAT dialect (the grammar of docs/keepalived.md) into the same
:class:`~ipvsadm_py.config.schema.Desired` state as a YAML file, or raises
:class:`~ipvsadm_py.config.schema.ConfigError` with every problem as
``FILE:LINE: message`` (keepalived's wording).  Everything that does not
describe IPVS state (``global_defs``, ``vrrp_*``, checkers, notify scripts,
sorry servers, ``include``) is skipped.  The client lists of
``deny_group``/``allow_group`` blocks (:mod:`.keepalived_lists`) become the
lists of the services that name them.
:mod:`.keepalived_export` writes a live state in the same dialect.

The reading is split by job, each part importing only the ones before it:
:mod:`.keepalived_blocks` splits the text into words and blocks as
keepalived does, :mod:`.keepalived_values` reads addresses, numbers, local
address lists and forwarding methods, :mod:`.keepalived_servers` reads what
a virtual_server block says; this module turns that into checked services
and is the entry point (its names of the other parts stay importable from
here).  The checks are the YAML path's (:mod:`ipvsadm_py.rules`) plus the
dialect's own FULLNAT/SYNPROXY rules, which keepalived enforces too.
"""

from __future__ import annotations

import dataclasses

from netaddr import IPAddress

from ipvsadm_py import rules
from ipvsadm_py.config.desired import ConfigError, Desired, ServiceSpec
from ipvsadm_py.config.keepalived_blocks import (ROOT_WORDS, BlockError, Node, looks_like,
                                                 parse_blocks, tokens)
from ipvsadm_py.config.keepalived_lists import GROUP_WORDS, Group, read_groups, service_lists
from ipvsadm_py.config.keepalived_servers import (VirtualServer, read_virtual_server,
                                                  service_name)
from ipvsadm_py.config.keepalived_values import (MAX_LADDR_RANGE, METHOD_WORDS, METHODS,
                                                 Method, Reader, laddr_block, laddr_entry,
                                                 parse_address, parse_number)
from ipvsadm_py.model import (AF_INET, AF_INET6, DEFAULT_PERSISTENCE, DEFAULT_SCHEDULER, Dest,
                              Forward, Protocol, Service, addr_text)
from ipvsadm_py.rules import Code

__all__ = ["MAX_LADDR_RANGE", "METHODS", "METHOD_WORDS", "ROOT_WORDS", "Node", "laddr_entry",
           "load", "looks_like", "parse_blocks", "tokens", "validate"]


# ---------------------------------------------------------------- services
def _virtual_server(r: Reader, node: Node, vsgs: dict[str, Node],
                    lgroups: dict[str, list[IPAddress] | None],
                    agroups: dict[tuple, Group]) -> list[ServiceSpec]:
    """The services of one virtual_server block (several for a group)."""
    vs = read_virtual_server(r, node, vsgs)
    if vs is None:
        return []
    laddrs = list(vs.laddrs)
    if vs.group is not None:
        name, line = vs.group
        if name not in lgroups:
            r.fail(line, f"{vs.name}: local_address_group {name} is not defined")
            return []
        if lgroups[name] is None:
            r.fail(line, f"{vs.name}: local_address_group {name} has errors (reported at "
                   "its lines)")
            return []
        laddrs = list(dict.fromkeys(laddrs + (lgroups[name] or [])))
    return [spec for svc in vs.targets
            if (spec := _service(r, vs, svc, laddrs, agroups)) is not None]


def _service(r: Reader, vs: VirtualServer, svc: Service, laddrs: list[IPAddress],
             agroups: dict[tuple, Group]) -> ServiceSpec | None:
    """One IPVS service of a virtual server, checked."""
    before = len(r.problems)
    if not svc.fwmark:
        svc.protocol = vs.protocol if vs.protocol is not None else Protocol.UDP
    elif vs.family is not None:
        svc.af = vs.family
    elif vs.servers and len({rs.dest.af for rs in vs.servers}) == 1:
        svc.af = vs.servers[0].dest.af
    name = service_name(svc)
    svc.scheduler = vs.scheduler or DEFAULT_SCHEDULER
    svc.netmask = svc.default_netmask
    if vs.persistence is not None:
        svc.persistent, svc.timeout = True, vs.persistence
    if vs.granularity is not None:
        _granularity(r, vs.granularity, svc, name)
    svc.pe_name = vs.pe_name
    svc.onepacket = any(word == "ops" for word, _ in vs.flags)
    svc.synproxy = bool(vs.syn_proxy and vs.syn_proxy[0])
    _sched_flags(r, vs, svc, name)
    _service_faults(r, vs, svc, name)
    dests = _dests(r, vs, svc, name)
    _laddr_faults(r, vs, svc, name, laddrs, dests)
    lists = service_lists(r, vs.lists, svc, agroups, name)
    if len(r.problems) > before or lists is None:
        return None
    return ServiceSpec(svc, dests, laddrs, vs.line, lists)


def _granularity(r: Reader, value: tuple[str, int], svc: Service, name: str) -> None:
    text, line = value
    if svc.af == AF_INET6:
        prefix = parse_number(text, "ipv6_prefix")
        if prefix is None:
            r.fail(line, f"{name}: invalid IPv6 persistence_granularity specified - {text}")
            return
        svc.netmask = prefix
    else:
        mask = parse_address(text)
        if mask is None or mask.version != 4:
            r.fail(line, f"{name}: invalid IPv4 persistence_granularity specified - {text}")
            return
        svc.netmask = int(mask)
    if not svc.persistent:
        svc.persistent, svc.timeout = True, DEFAULT_PERSISTENCE


def _sched_flags(r: Reader, vs: VirtualServer, svc: Service, name: str) -> None:
    words = [(w, line) for w, line in vs.flags if w != "ops"]
    flags, fault = rules.sched_flags(svc.scheduler, [w for w, _ in words])
    if fault is None:
        svc.sched_flags = flags
        return
    line = next(line for w, line in words if w == fault.word)
    r.fail(line, f"{name}: {fault.word} only applies to the {fault.other or '?'} scheduler, "
           f"not {svc.scheduler}")


def _service_faults(r: Reader, vs: VirtualServer, svc: Service, name: str) -> None:
    ops_line = next((line for w, line in vs.flags if w == "ops"), vs.line)
    for fault in rules.service_faults(svc):
        if fault.code == Code.ONEPACKET_NOT_UDP:
            r.fail(ops_line, f"{name}: one packet scheduling requires UDP")
        elif fault.code == Code.SYNPROXY_NOT_TCP:
            r.fail(vs.syn_proxy[1] if vs.syn_proxy else vs.line,
                   f"{name}: syn_proxy is for TCP services")
        elif fault.code == Code.ZERO_PORT:
            r.fail(vs.line, f"{name}: zero port only valid for persistent services")


def _dests(r: Reader, vs: VirtualServer, svc: Service, name: str) -> list[Dest]:
    """The real servers of one service: the method defaults to the virtual
    server's (NAT if none), the port to the service's."""
    out: list[Dest] = []
    seen: dict[tuple, int] = {}
    for rs in vs.servers:
        method = rs.method or vs.method or Method()
        dest = dataclasses.replace(rs.dest, forward=method.forward, tun_type=method.tun_type,
                                   tun_port=method.tun_port, tun_csum=method.tun_csum)
        if not rs.weight_given:
            dest.weight = vs.weight
        if not svc.fwmark and not rs.port_given:
            dest.port = svc.port
        elif svc.fwmark and dest.forward in (Forward.ROUTE, Forward.TUNNEL):
            dest.port = 0           # keepalived clears it: the packet keeps its port
        fixed = rules.fixed_port(svc, dest.forward)
        if fixed is not None and dest.port != fixed:
            r.fail(rs.line, f"{name} and real server {dest.describe()} ports don't match "
                   "(DR and TUN keep the virtual server's port)")
        for fault in rules.dest_faults(svc, dest, method.options):
            if fault.code == Code.FAMILY_MISMATCH:
                r.fail(rs.line, f"{name}: real server {dest.describe()} is of the other "
                       "address family (allowed only for TUN)")
            elif fault.code == Code.TUNNEL_WITHOUT_TUNNELING:
                r.fail(method.line, f"{name}: tunnel options need lvs_method TUN")
        if dest.key in seen:
            r.fail(rs.line, f"{name}: real server {dest.describe()} is duplicated (also at "
                   f"line {seen[dest.key]})")
        seen[dest.key] = rs.line
        out.append(dest)
    return out


def _laddr_faults(r: Reader, vs: VirtualServer, svc: Service, name: str,
                  laddrs: list[IPAddress], dests: list[Dest]) -> None:
    """The FULLNAT/SYNPROXY rules of the dialect (as keepalived checks them)."""
    fullnat = [d for d in dests if d.forward == Forward.FULLNAT]
    laddr_line = vs.laddr_line or (vs.group[1] if vs.group else vs.line)
    fnat_line = next((m.line for m in [vs.method] + [rs.method for rs in vs.servers]
                      if m is not None and m.forward == Forward.FULLNAT), vs.line)
    for fault in rules.laddr_faults(svc, [a.packed for a in laddrs]) if laddrs else []:
        if fault.code == Code.LADDR_FAMILY:
            other = "IPv6" if svc.af == AF_INET else "IPv4"
            r.fail(laddr_line, f"{name} is {'IPv4' if svc.af == AF_INET else 'IPv6'}: local "
                   f"address {fault.word} is {other}")
        elif fault.code == Code.LADDR_OF_FWMARK:
            r.fail(laddr_line, f"{name}: local addresses need an address/port service, "
                   "not a fwmark")
    if fullnat:
        if not svc.fwmark and svc.protocol not in (Protocol.TCP, Protocol.UDP):
            r.fail(fnat_line, f"{name}: FNAT forwards TCP and UDP only")
        if svc.onepacket:
            r.fail(fnat_line, f"{name}: FNAT cannot be used with one-packet scheduling (ops)")
        if rules.fullnat_faults(dests, bool(laddrs)):
            r.fail(fnat_line, f"{name}: FNAT needs local addresses (local_address {{ ... }} "
                   "or laddr_group_name)")
    elif laddrs:
        r.fail(laddr_line, f"{name}: local addresses are for FNAT real servers (lb_kind FNAT)")
    if svc.synproxy:
        for d in dests:
            if d.forward in (Forward.ROUTE, Forward.TUNNEL):
                r.fail(vs.syn_proxy[1] if vs.syn_proxy else vs.line,
                       f"{name}: syn_proxy needs NAT or FNAT real servers, [{addr_text(d.addr)}]"
                       f":{d.port} uses {METHOD_WORDS[d.forward]}")
                break


# ---------------------------------------------------------------- the file
def _local_groups(r: Reader, nodes: list[Node]) -> dict[str, list[IPAddress] | None]:
    """The local_address_group blocks (None: a group with errors)."""
    groups: dict[str, list[IPAddress] | None] = {}
    for node in nodes:
        if node.word != "local_address_group":
            continue
        if len(node.args) != 1 or node.block is None:
            r.fail(node.line, "local_address_group needs a name and a block { ... }")
            continue
        name = node.args[0]
        if name in groups:
            r.fail(node.line, f"local_address_group {name} is defined twice")
            continue
        addrs, ok = laddr_block(r, node.block, f"local_address_group {name}")
        if ok and not addrs:
            r.fail(node.line, f"local_address_group {name} has no addresses")
        groups[name] = addrs if ok and addrs else None
    return groups


def _server_groups(r: Reader, nodes: list[Node]) -> dict[str, Node]:
    groups: dict[str, Node] = {}
    for node in nodes:
        if node.word == "virtual_server_group":
            if len(node.args) != 1 or node.block is None:
                r.fail(node.line, "virtual_server_group needs a name and a block { ... }")
            else:
                groups[node.args[0]] = node
    return groups


def validate(text: str, source: str = "<keepalived.conf>") -> Desired:
    """The services of a keepalived configuration text (its virtual_server
    blocks); ConfigError lists every problem.  Timeouts, sysctls and sync
    daemons are left as they are (None/empty in the result)."""
    r = Reader(source)
    try:
        nodes = parse_blocks(text)
    except BlockError as exc:
        raise ConfigError([f"{source}:{exc.line}: {exc}"]) from None
    lgroups = _local_groups(r, nodes)
    vsgs = _server_groups(r, nodes)
    agroups = read_groups(r, nodes)
    # A file with deny_group/allow_group blocks owns the lists (apply prunes
    # the others); a file without any leaves the lists alone.
    desired = Desired(owns_lists=any(node.word in GROUP_WORDS for node in nodes))
    seen: dict[tuple, int] = {}
    for node in nodes:
        if node.word != "virtual_server":
            continue
        for spec in _virtual_server(r, node, vsgs, lgroups, agroups):
            if spec.service.key in seen:
                r.fail(node.line, f"{service_name(spec.service)} is also defined at line "
                       f"{seen[spec.service.key]}")
            seen[spec.service.key] = spec.line
            desired.services.append(spec)
    if r.problems:
        raise ConfigError(r.problems)
    return desired


def load(path: str) -> Desired:
    with open(path, encoding="utf-8") as handle:
        return validate(handle.read(), path)
