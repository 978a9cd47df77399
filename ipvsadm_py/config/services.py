"""The ``services`` and ``local_address_groups`` sections of a configuration
file: each service with its real servers, tunnels, persistence, scheduling
and local addresses, checked with the rules the command line shares
(:mod:`ipvsadm_py.rules`), worded for the file.
"""

from __future__ import annotations

import socket

import yaml
from netaddr import AddrFormatError, IPAddress

from ipvsadm_py import rules
from ipvsadm_py.config.desired import ServiceSpec
from ipvsadm_py.config.lists import service_lists
from ipvsadm_py.config.nodes import Checker, address_list, enum_names
from ipvsadm_py.model import (DEFAULT_PERSISTENCE, DEFAULT_SCHEDULER, Dest, Forward, Protocol,
                              Service, TunnelCsum, TunnelType, af_of)
from ipvsadm_py.rules import Code

SERVICE_KEYS = ("protocol", "address", "port", "fwmark", "family", "scheduler", "sched_flags",
                "persistent", "netmask", "pe", "ops", "synproxy", "laddrs", "laddr_group",
                "dests", "allow", "deny")
DEST_KEYS = ("address", "port", "forward", "weight", "u_threshold", "l_threshold", "tunnel")
# Other names of the forwarding methods (ipvsadm's options, keepalived's words).
FORWARD_ALIASES = {"nat": Forward.MASQ, "masquerading": Forward.MASQ, "dr": Forward.ROUTE,
                   "droute": Forward.ROUTE, "gatewaying": Forward.ROUTE,
                   "direct": Forward.ROUTE, "tun": Forward.TUNNEL, "ipip": Forward.TUNNEL,
                   "fnat": Forward.FULLNAT}


# ---------------------------------------------------------------- real servers
def _dest(c: Checker, node: yaml.Node, path: str, svc: Service) -> Dest | None:
    m = c.mapping(node, path, DEST_KEYS)
    if "address" not in m:
        c.fail(node, path, "a real server needs an address")
        return None
    addr = c.address(m["address"], f"{path}.address")
    dest = Dest(port=svc.port, forward=Forward.ROUTE)
    if addr is not None:
        dest.addr, dest.af = addr, af_of(addr.version)
    if "port" in m:
        dest.port = c.integer(m["port"], f"{path}.port", "port") or 0
    if "forward" in m:
        word = c.choice(m["forward"], f"{path}.forward",
                        enum_names(Forward) + list(FORWARD_ALIASES))
        if word:
            dest.forward = FORWARD_ALIASES.get(word) or Forward(word)
    for key in ("weight", "u_threshold", "l_threshold"):
        if key in m:
            value = c.integer(m[key], f"{path}.{key}", key)
            if value is not None:
                setattr(dest, key, value)
    fixed = rules.fixed_port(svc, dest.forward)
    if fixed is not None and "port" in m and dest.port != fixed:
        c.fail(m["port"], f"{path}.port", "direct routing and tunneling keep the service "
               f"port ({fixed})")
    for fault in rules.dest_faults(svc, dest, "tunnel" in m):
        if fault.code == Code.TUNNEL_WITHOUT_TUNNELING:
            c.fail(m["tunnel"], f"{path}.tunnel", "tunnel options need forward: tunnel")
        elif fault.code == Code.FAMILY_MISMATCH and addr is not None:
            c.fail(m["address"], f"{path}.address", "a different address family is "
                   "allowed only for tunneling")
    if "tunnel" in m:
        _tunnel(c, m["tunnel"], f"{path}.tunnel", dest)
    return dest


def _tunnel(c: Checker, node: yaml.Node, path: str, dest: Dest) -> None:
    m = c.mapping(node, path, ("type", "port", "csum"))
    if "type" in m:
        word = c.choice(m["type"], f"{path}.type", enum_names(TunnelType))
        dest.tun_type = TunnelType(word or "ipip")
    if "port" in m:
        dest.tun_port = c.integer(m["port"], f"{path}.port", "tun_port") or 0
    if "csum" in m:
        word = c.choice(m["csum"], f"{path}.csum", enum_names(TunnelCsum))
        dest.tun_csum = TunnelCsum(word or "nocsum")
    csums = [dest.tun_csum] if "csum" in m else []
    for fault in rules.tunnel_faults(dest.tun_type, "port" in m, csums):
        if fault.code == Code.TUN_PORT_MISSING:
            c.fail(node, path, f"a {dest.tun_type.value} tunnel needs a port")
        elif fault.code == Code.TUN_PORT_ILLEGAL:
            c.fail(m["port"], f"{path}.port", "only gue tunnels have a port")
        elif dest.tun_type == TunnelType.IPIP:
            c.fail(m["csum"], f"{path}.csum", "ipip tunnels have no checksum option")
        else:
            c.fail(m["csum"], f"{path}.csum", f"{fault.word} is for gue tunnels only")


# ---------------------------------------------------------------- services
def _identity(c: Checker, m: dict[str, yaml.Node], node: yaml.Node, path: str,
              svc: Service) -> bool:
    """Fwmark, or protocol, address and port; False if the service cannot
    be read further."""
    if "fwmark" in m:
        svc.fwmark = c.integer(m["fwmark"], f"{path}.fwmark", "fwmark") or 0
        svc.protocol = 0
        for key in ("protocol", "address", "port"):
            if key in m:
                c.fail(m[key], f"{path}.{key}", "a fwmark service has no " + key)
        family = c.integer_in(m["family"], f"{path}.family", 4, 6) if "family" in m else 4
        if family not in (4, 6, None):
            c.fail(m["family"], f"{path}.family", "must be 4 or 6")
        svc.af = af_of(family or 4)
        return True
    if "address" not in m or "protocol" not in m:
        c.fail(node, path, "a service needs protocol and address (or fwmark)")
        return False
    proto = c.choice(m["protocol"], f"{path}.protocol", [p.name.lower() for p in Protocol])
    svc.protocol = Protocol[(proto or "tcp").upper()]
    addr = c.address(m["address"], f"{path}.address")
    if addr is not None:
        svc.addr, svc.af = addr, af_of(addr.version)
    port = c.integer(m["port"], f"{path}.port", "port") if "port" in m else 0
    svc.port = port if port is not None else -1     # -1: already reported
    if "family" in m:
        c.fail(m["family"], f"{path}.family", "family comes from the address")
    return True


def _persistence(c: Checker, m: dict[str, yaml.Node], path: str, svc: Service) -> None:
    if "persistent" in m:
        value = c.scalar(m["persistent"], f"{path}.persistent")
        if value is True:
            value = DEFAULT_PERSISTENCE
        if value not in (False, None):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not rules.in_range("persistent", value):
                low, high = rules.LIMITS["persistent"]
                c.fail(m["persistent"], f"{path}.persistent", "must be true, false or a "
                       f"timeout {low}-{high}, not {value!r}")
            else:
                svc.persistent, svc.timeout = True, value
    if "netmask" in m:
        _netmask(c, m["netmask"], f"{path}.netmask", svc)
    if "pe" in m:
        svc.pe_name = str(c.scalar(m["pe"], f"{path}.pe"))


def _netmask(c: Checker, node: yaml.Node, path: str, svc: Service) -> None:
    value = c.scalar(node, path)
    if svc.af == socket.AF_INET6:
        if isinstance(value, bool) or not isinstance(value, int) \
                or not rules.in_range("ipv6_prefix", value):
            c.fail(node, path, f"an IPv6 netmask is a prefix length 1-128, not {value!r}")
            return
        svc.netmask = value
        return
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 32:
        svc.netmask = (0xFFFFFFFF << (32 - value)) & 0xFFFFFFFF
        return
    try:
        addr = IPAddress(str(value))
        if addr.version != 4:
            raise ValueError
        svc.netmask = int(addr)
    except (AddrFormatError, ValueError, TypeError):
        c.fail(node, path, f"an IPv4 netmask is a dotted mask or 0-32, not {value!r}")


def _scheduling(c: Checker, m: dict[str, yaml.Node], node: yaml.Node, path: str,
                svc: Service) -> None:
    """One-packet scheduling, SYNPROXY, scheduler flags, and the rules on them."""
    if "ops" in m:
        svc.onepacket = bool(c.boolean(m["ops"], f"{path}.ops"))
    if "synproxy" in m:
        svc.synproxy = bool(c.boolean(m["synproxy"], f"{path}.synproxy"))
    if "sched_flags" in m:
        words = [str(c.scalar(n, f"{path}.sched_flags")) for n in
                 c.seq(m["sched_flags"], f"{path}.sched_flags")]
        flags, fault = rules.sched_flags(svc.scheduler, words)
        if fault is None:
            svc.sched_flags = flags
        elif fault.code == Code.SCHED_FLAG_NEEDS:
            c.fail(m["sched_flags"], f"{path}.sched_flags", f"scheduler flag {fault.word!r} "
                   f"needs scheduler {fault.other}, not {svc.scheduler}")
        else:
            c.fail(m["sched_flags"], f"{path}.sched_flags", f"invalid scheduler flag "
                   f"{fault.word!r}: one of flag-1, flag-2, flag-3, sh-fallback, sh-port, "
                   "mh-fallback, mh-port")
    for fault in rules.service_faults(svc):
        if fault.code == Code.ONEPACKET_NOT_UDP:
            c.fail(m["ops"], f"{path}.ops", "one-packet scheduling is only for UDP")
        elif fault.code == Code.SYNPROXY_NOT_TCP:
            c.fail(m["synproxy"], f"{path}.synproxy", "SYNPROXY is for TCP services")
        elif fault.code == Code.ZERO_PORT:
            c.fail(node, path, "port 0 (or none) needs persistent")


def _laddrs(c: Checker, m: dict[str, yaml.Node], node: yaml.Node, path: str,
            svc: Service, groups: dict[str, list[IPAddress]]) -> list[IPAddress]:
    laddrs: list[IPAddress] = []
    if "laddrs" in m:
        laddrs += address_list(c, m["laddrs"], f"{path}.laddrs")
    if "laddr_group" in m:
        name = c.scalar(m["laddr_group"], f"{path}.laddr_group")
        if name not in groups:
            c.fail(m["laddr_group"], f"{path}.laddr_group", f"no local_address_groups "
                   f"entry {name!r}")
        laddrs += groups.get(name, [])
    where = m.get("laddrs") or m.get("laddr_group")
    faults = rules.laddr_faults(svc, [a.packed for a in laddrs]) if laddrs else []
    for fault in faults:
        if fault.code == Code.LADDR_FAMILY:
            c.fail(where, f"{path}.laddrs", f"{fault.word} is not of the service's "
                   "address family")
        elif fault.code == Code.LADDR_OF_FWMARK:
            c.fail(node, path, "local addresses need a protocol/address service, not fwmark")
    if len(set(laddrs)) != len(laddrs):
        c.fail(where, f"{path}.laddrs", "an address is listed twice")
    return laddrs


def _dests(c: Checker, m: dict[str, yaml.Node], path: str, svc: Service) -> list[Dest]:
    dests = []
    seen: set[tuple] = set()
    for index, item in enumerate(c.seq(m["dests"], f"{path}.dests") if "dests" in m else []):
        dest = _dest(c, item, f"{path}.dests[{index}]", svc)
        if dest is None or dest.addr is None:
            continue
        if dest.key in seen:
            c.fail(item, f"{path}.dests[{index}]", f"real server {dest.describe()} is "
                   "listed twice")
        seen.add(dest.key)
        dests.append(dest)
    return dests


def _service(c: Checker, node: yaml.Node, path: str,
             groups: dict[str, list[IPAddress]]) -> ServiceSpec | None:
    m = c.mapping(node, path, SERVICE_KEYS)
    svc = Service()
    if not _identity(c, m, node, path, svc):
        return None
    svc.netmask = svc.default_netmask
    svc.scheduler = str(c.scalar(m["scheduler"], f"{path}.scheduler")) \
        if "scheduler" in m else DEFAULT_SCHEDULER
    _persistence(c, m, path, svc)
    _scheduling(c, m, node, path, svc)
    laddrs = _laddrs(c, m, node, path, svc, groups)
    dests = _dests(c, m, path, svc)
    for _fault in rules.fullnat_faults(dests, bool(laddrs)):
        c.fail(node, path, "FULLNAT real servers need local addresses (laddrs or "
               "laddr_group)")
    lists = service_lists(c, m, node, path, svc)
    return ServiceSpec(svc, dests, laddrs, node.start_mark.line + 1, lists)


# ---------------------------------------------------------------- the sections
def read_groups(c: Checker, node: yaml.Node) -> dict[str, list[IPAddress]]:
    """``local_address_groups``: name -> addresses, for the services' ``laddr_group``."""
    groups: dict[str, list[IPAddress]] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            groups[str(key_node.value)] = address_list(
                c, value, f"local_address_groups.{key_node.value}")
    else:
        c.fail(node, "local_address_groups", "must be a mapping of name: [addresses]")
    return groups


def read_services(c: Checker, node: yaml.Node, groups: dict[str, list[IPAddress]]
                  ) -> list[ServiceSpec]:
    """``services``: each one read and checked, a service defined twice noted."""
    specs = []
    seen: dict[tuple, int] = {}
    for index, item in enumerate(c.seq(node, "services")):
        spec = _service(c, item, f"services[{index}]", groups)
        if spec is None:
            continue
        if spec.service.key in seen:
            c.fail(item, f"services[{index}]", f"service {spec.service.describe()} is "
                   f"also defined at line {seen[spec.service.key]}")
        seen[spec.service.key] = spec.line
        specs.append(spec)
    return specs
