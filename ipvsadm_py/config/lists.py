"""The allow and deny lists of a configuration file: under a service
(``allow:`` / ``deny:``) and in the top-level ``vips:`` section.

An entry is an address or prefix, or a mapping with ``address`` and an
optional ``timeout`` (a temporary ban).  The lists themselves are the
model of ``ipvsadm_py.acl``; this module only reads them from YAML nodes.
"""

from __future__ import annotations

import yaml

from ipvsadm_py import acl
from ipvsadm_py.config.desired import Desired
from ipvsadm_py.config.nodes import Checker
from ipvsadm_py.model import Protocol, Service

VIP_KEYS = ("address", "protocol", "port", "allow", "deny")
ENTRY_KEYS = ("address", "timeout")


def service_lists(c: Checker, m: dict[str, yaml.Node], node: yaml.Node, path: str,
                  svc: Service) -> list[acl.AccessList]:
    """The lists under a service; it needs an address and a port."""
    if "allow" not in m and "deny" not in m:
        return []
    if svc.fwmark or not svc.port or svc.addr is None or svc.port < 0:
        c.fail(node, path, "allow and deny need a service with address and port (for "
               "every port of a VIP, or a fwmark service, use vips:)")
        return []
    target = acl.make_target(str(svc.addr), Protocol(svc.protocol).name.lower(), svc.port)
    return _lists(c, m, path, target)


def _lists(c: Checker, m: dict[str, yaml.Node], path: str,
           target: acl.Target) -> list[acl.AccessList]:
    out = []
    for kind in acl.Kind:
        if kind.value not in m:
            continue
        where = f"{path}.{kind.value}"
        lst = acl.AccessList(kind, target)
        for index, item in enumerate(c.seq(m[kind.value], where)):
            entry = _entry(c, item, f"{where}[{index}]")
            if entry is not None:
                if entry.network in lst.entries:
                    c.fail(item, f"{where}[{index}]", f"{entry.network} is listed twice")
                lst.entries[entry.network] = entry
        for fault in acl.entry_faults(target, lst.entries.values()):
            c.fail(m[kind.value], where, fault)
        out.append(lst)
    return out


def _entry(c: Checker, node: yaml.Node, path: str) -> acl.Entry | None:
    """``203.0.113.0/24``, or ``{address: 203.0.113.7, timeout: 1h}``."""
    timeout = None
    if isinstance(node, yaml.MappingNode):
        m = c.mapping(node, path, ENTRY_KEYS)
        if "address" not in m:
            c.fail(node, path, "an entry needs an address")
            return None
        if "timeout" in m:
            try:
                timeout = acl.parse_duration(c.scalar(m["timeout"], f"{path}.timeout"))
            except ValueError as exc:
                c.fail(m["timeout"], f"{path}.timeout", str(exc))
        node = m["address"]
    value = c.scalar(node, path)
    try:
        return acl.Entry(acl.parse_network(str(value)), timeout)
    except ValueError as exc:
        c.fail(node, path, str(exc))
        return None


def read_vips(c: Checker, node: yaml.Node) -> list[acl.AccessList]:
    """The ``vips:`` section: lists for every port of a VIP, or for a
    protocol and port that no IPVS service names."""
    out: list[acl.AccessList] = []
    seen: set[acl.Target] = set()
    for index, item in enumerate(c.seq(node, "vips")):
        path = f"vips[{index}]"
        m = c.mapping(item, path, VIP_KEYS)
        if "address" not in m:
            c.fail(item, path, "a VIP needs an address")
            continue
        addr = c.address(m["address"], f"{path}.address")
        proto = c.choice(m["protocol"], f"{path}.protocol", acl.PROTOCOLS) \
            if "protocol" in m else None
        port = c.integer(m["port"], f"{path}.port", "port") if "port" in m else None
        if ("protocol" in m) != ("port" in m):
            c.fail(item, path, "protocol and port go together (neither: every port)")
            continue
        if addr is None or (m.keys() & {"protocol", "port"} and None in (proto, port)):
            continue
        try:
            target = acl.make_target(str(addr), proto, port)
        except ValueError as exc:
            c.fail(item, path, str(exc))
            continue
        if target in seen:
            c.fail(item, path, f"{target.describe()} is listed twice")
        seen.add(target)
        out += _lists(c, m, path, target)
    return out


def unique_lists(c: Checker, root: yaml.Node, desired: Desired) -> None:
    """A service's list and a vips: entry for the same service collide."""
    seen: set[tuple] = set()
    for lst in desired.access_lists:
        if lst.key in seen:
            c.fail(root, "vips", f"the {lst.kind.value} list of {lst.target.describe()} "
                   "is given twice (under its service and in vips)")
        seen.add(lst.key)
