"""Reading a configuration file: the YAML schema, checked whole.

:func:`validate` turns the text into a :class:`Desired` state of model
objects, or raises :class:`ConfigError` with every problem as ``FILE:LINE:
path: message``.  The rules shared with the command line come from
:mod:`ipvsadm_py.rules`; this module words their faults.  The schema is
described in docs/ipvsadm-py.md.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any, Iterable, Sequence

import yaml
from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange

from ipvsadm_py import acl, rules
from ipvsadm_py.errors import InvalidInput
from ipvsadm_py.model import (DEFAULT_PERSISTENCE, DEFAULT_SCHEDULER, Daemon, DaemonState,
                              Dest, Forward, Protocol, Service, Timeouts, TunnelCsum,
                              TunnelType, af_of)
from ipvsadm_py.rules import Code

SCHEMA_VERSION = 1
MAX_RANGE = 65536

TOP_KEYS = ("version", "services", "timeouts", "sysctls", "daemons", "local_address_groups",
            "vips")
SERVICE_KEYS = ("protocol", "address", "port", "fwmark", "family", "scheduler", "sched_flags",
                "persistent", "netmask", "pe", "ops", "synproxy", "laddrs", "laddr_group",
                "dests", "allow", "deny")
VIP_KEYS = ("address", "protocol", "port", "allow", "deny")
ENTRY_KEYS = ("address", "timeout")
DEST_KEYS = ("address", "port", "forward", "weight", "u_threshold", "l_threshold", "tunnel")
DAEMON_KEYS = ("state", "mcast_interface", "syncid", "sync_maxlen", "mcast_group",
               "mcast_port", "mcast_ttl")
# Other names of the forwarding methods (ipvsadm's options, keepalived's words).
FORWARD_ALIASES = {"nat": Forward.MASQ, "masquerading": Forward.MASQ, "dr": Forward.ROUTE,
                   "droute": Forward.ROUTE, "gatewaying": Forward.ROUTE,
                   "direct": Forward.ROUTE, "tun": Forward.TUNNEL, "ipip": Forward.TUNNEL,
                   "fnat": Forward.FULLNAT}


def _names(enum_type: type) -> list[str]:
    """The names of an enum's members, those that can be configured."""
    return [m.value for m in enum_type if m.value != "unknown"]


# ---------------------------------------------------------------- desired state
@dataclasses.dataclass
class ServiceSpec:
    """A service of the file, with its real servers and local addresses."""

    service: Service
    dests: list[Dest]
    laddrs: list[IPAddress]
    line: int = 0
    lists: list[acl.AccessList] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Desired:
    """What a configuration file asks for (after validation)."""

    services: list[ServiceSpec] = dataclasses.field(default_factory=list)
    timeouts: Timeouts | None = None
    sysctls: dict[str, int] = dataclasses.field(default_factory=dict)
    daemons: list[Daemon] | None = None
    vip_lists: list[acl.AccessList] = dataclasses.field(default_factory=list)
    # A YAML file owns the allow/deny lists (apply prunes the others); a
    # keepalived.conf has no such lists and leaves them alone.
    owns_lists: bool = False

    @property
    def access_lists(self) -> list[acl.AccessList]:
        """Every allow and deny list of the file (services' and VIPs')."""
        return [lst for spec in self.services for lst in spec.lists] + self.vip_lists


class ConfigError(InvalidInput):
    """Every problem of a file, one per line: ``FILE:LINE: path: message``."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


# ---------------------------------------------------------------- YAML nodes
class _Checker:
    """Walks composed YAML nodes, collecting problems with line numbers."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, node: yaml.Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.source}:{line}: {path}: {message}")

    def mapping(self, node: yaml.Node, path: str, allowed: Iterable[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, "must be a mapping")
            return {}
        out: dict[str, yaml.Node] = {}
        allowed = set(allowed)
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                self.fail(key_node, path, f"unknown key {key!r} (allowed: "
                          f"{', '.join(sorted(allowed))})")
                continue
            if key in out:
                self.fail(key_node, path, f"duplicate key {key!r}")
            out[key] = value
        return out

    def seq(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, "must be a list")
            return []
        return list(node.value)

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, "must be a single value")
            return None
        return yaml.safe_load(yaml.serialize(node))

    def integer(self, node: yaml.Node, path: str, limit: str) -> int | None:
        """An integer within ``rules.LIMITS[limit]``."""
        return self.integer_in(node, path, *rules.LIMITS[limit])

    def integer_in(self, node: yaml.Node, path: str, low: int, high: int) -> int | None:
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            if value is not None or isinstance(node, yaml.ScalarNode):
                self.fail(node, path, f"must be an integer {low}-{high}, not {value!r}")
            return None
        return value

    def choice(self, node: yaml.Node, path: str, choices: Iterable[str]) -> str | None:
        value = self.scalar(node, path)
        choices = list(choices)
        if value not in choices:
            self.fail(node, path, f"must be one of {', '.join(choices)}, not {value!r}")
            return None
        return value

    def boolean(self, node: yaml.Node, path: str) -> bool | None:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            self.fail(node, path, f"must be true or false, not {value!r}")
            return None
        return value

    def address(self, node: yaml.Node, path: str) -> IPAddress | None:
        value = self.scalar(node, path)
        if value is None or not _strict_ip(str(value)):
            self.fail(node, path, f"not an IP address: {value!r}")
            return None
        return IPAddress(str(value))


def _strict_ip(text: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return True
        except OSError:
            continue
    return False


# ---------------------------------------------------------------- addresses
def expand_addresses(text: str) -> list[IPAddress]:
    """``10.0.3.1``, ``10.0.3.10-10.0.3.20`` or ``10.0.4.0/30`` as addresses."""
    text = str(text).strip()
    if "-" in text:
        first, _, last = text.partition("-")
        rng = IPRange(first.strip(), last.strip())
        if rng.size > MAX_RANGE:
            raise ValueError(f"range of {rng.size} addresses (at most {MAX_RANGE})")
        return list(rng)
    if "/" in text:
        net = IPNetwork(text)
        if net.size > MAX_RANGE:
            raise ValueError(f"network of {net.size} addresses (at most {MAX_RANGE})")
        return list(net)
    if not _strict_ip(text):
        raise ValueError("not an address, range or network")
    return [IPAddress(text)]


def _address_list(c: _Checker, node: yaml.Node, path: str) -> list[IPAddress]:
    out: list[IPAddress] = []
    for index, item in enumerate(c.seq(node, path)):
        value = c.scalar(item, f"{path}[{index}]")
        try:
            out += expand_addresses(value)
        except (AddrFormatError, ValueError, TypeError) as exc:
            c.fail(item, f"{path}[{index}]", f"bad address or range {value!r}: {exc}")
    return out


# ---------------------------------------------------------------- real servers
def _dest(c: _Checker, node: yaml.Node, path: str, svc: Service) -> Dest | None:
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
                        _names(Forward) + list(FORWARD_ALIASES))
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


def _tunnel(c: _Checker, node: yaml.Node, path: str, dest: Dest) -> None:
    m = c.mapping(node, path, ("type", "port", "csum"))
    if "type" in m:
        word = c.choice(m["type"], f"{path}.type", _names(TunnelType))
        dest.tun_type = TunnelType(word or "ipip")
    if "port" in m:
        dest.tun_port = c.integer(m["port"], f"{path}.port", "tun_port") or 0
    if "csum" in m:
        word = c.choice(m["csum"], f"{path}.csum", _names(TunnelCsum))
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
def _identity(c: _Checker, m: dict[str, yaml.Node], node: yaml.Node, path: str,
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


def _persistence(c: _Checker, m: dict[str, yaml.Node], path: str, svc: Service) -> None:
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


def _netmask(c: _Checker, node: yaml.Node, path: str, svc: Service) -> None:
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


def _scheduling(c: _Checker, m: dict[str, yaml.Node], node: yaml.Node, path: str,
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


def _laddrs(c: _Checker, m: dict[str, yaml.Node], node: yaml.Node, path: str,
            svc: Service, groups: dict[str, list[IPAddress]]) -> list[IPAddress]:
    laddrs: list[IPAddress] = []
    if "laddrs" in m:
        laddrs += _address_list(c, m["laddrs"], f"{path}.laddrs")
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


def _dests(c: _Checker, m: dict[str, yaml.Node], path: str, svc: Service) -> list[Dest]:
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


def _service(c: _Checker, node: yaml.Node, path: str,
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
    lists = _service_lists(c, m, node, path, svc)
    return ServiceSpec(svc, dests, laddrs, node.start_mark.line + 1, lists)


# ---------------------------------------------------------------- allow / deny
def _service_lists(c: _Checker, m: dict[str, yaml.Node], node: yaml.Node, path: str,
                   svc: Service) -> list[acl.AccessList]:
    if "allow" not in m and "deny" not in m:
        return []
    if svc.fwmark or not svc.port or svc.addr is None or svc.port < 0:
        c.fail(node, path, "allow and deny need a service with address and port (for "
               "every port of a VIP, or a fwmark service, use vips:)")
        return []
    target = acl.make_target(str(svc.addr), Protocol(svc.protocol).name.lower(), svc.port)
    return _lists(c, m, path, target)


def _lists(c: _Checker, m: dict[str, yaml.Node], path: str,
           target: acl.Target) -> list[acl.AccessList]:
    out = []
    for kind in acl.Kind:
        if kind.value not in m:
            continue
        where = f"{path}.{kind.value}"
        lst = acl.AccessList(kind, target)
        for index, item in enumerate(c.seq(m[kind.value], where)):
            entry = _acl_entry(c, item, f"{where}[{index}]")
            if entry is not None:
                if entry.network in lst.entries:
                    c.fail(item, f"{where}[{index}]", f"{entry.network} is listed twice")
                lst.entries[entry.network] = entry
        for fault in acl.entry_faults(target, lst.entries.values()):
            c.fail(m[kind.value], where, fault)
        out.append(lst)
    return out


def _acl_entry(c: _Checker, node: yaml.Node, path: str) -> acl.Entry | None:
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


def _vips(c: _Checker, node: yaml.Node) -> list[acl.AccessList]:
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


# ---------------------------------------------------------------- the rest
def _daemon(c: _Checker, node: yaml.Node, path: str) -> Daemon | None:
    m = c.mapping(node, path, DAEMON_KEYS)
    if "state" not in m:
        c.fail(node, path, "a daemon needs state: master or backup")
        return None
    state = c.choice(m["state"], f"{path}.state", _names(DaemonState))
    d = Daemon(state=DaemonState(state or "master"))
    if "mcast_interface" in m:
        d.mcast_ifn = str(c.scalar(m["mcast_interface"], f"{path}.mcast_interface"))
    for key in ("syncid", "sync_maxlen", "mcast_port", "mcast_ttl"):
        if key in m:
            value = c.integer(m[key], f"{path}.{key}", key)
            if value is not None:
                setattr(d, key, value)
    if "mcast_group" in m:
        addr = c.address(m["mcast_group"], f"{path}.mcast_group")
        if addr is not None and not rules.is_multicast(addr.packed):
            c.fail(m["mcast_group"], f"{path}.mcast_group", f"{addr} is not multicast")
        d.mcast_group = addr
    return d


def _groups(c: _Checker, node: yaml.Node) -> dict[str, list[IPAddress]]:
    groups: dict[str, list[IPAddress]] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            groups[str(key_node.value)] = _address_list(
                c, value, f"local_address_groups.{key_node.value}")
    else:
        c.fail(node, "local_address_groups", "must be a mapping of name: [addresses]")
    return groups


def _services(c: _Checker, node: yaml.Node, groups: dict[str, list[IPAddress]]
              ) -> list[ServiceSpec]:
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


def _sysctls(c: _Checker, node: yaml.Node) -> dict[str, int]:
    out: dict[str, int] = {}
    if not isinstance(node, yaml.MappingNode):
        c.fail(node, "sysctls", "must be a mapping of name: integer")
        return out
    for key_node, value in node.value:
        name = str(key_node.value)
        if not name.replace("_", "").isalnum():
            c.fail(key_node, f"sysctls.{name}", "not a sysctl name")
            continue
        number = c.integer_in(value, f"sysctls.{name}", -rules.INT_MAX - 1, rules.INT_MAX)
        if number is not None:
            out[name] = number
    return out


def validate(text: str, source: str = "<config>") -> Desired:
    """The desired state of a configuration text; ConfigError lists every problem."""
    c = _Checker(source)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{source}:{line}: not valid YAML: "
                           f"{getattr(exc, 'problem', exc)}"]) from None
    desired = Desired(owns_lists=True)
    if root is None:
        return desired
    top = c.mapping(root, "(top)", TOP_KEYS)
    if "version" in top:
        c.integer_in(top["version"], "version", SCHEMA_VERSION, SCHEMA_VERSION)
    groups = _groups(c, top["local_address_groups"]) if "local_address_groups" in top else {}
    if "services" in top:
        desired.services = _services(c, top["services"], groups)
    if "timeouts" in top:
        tm = c.mapping(top["timeouts"], "timeouts", ("tcp", "tcp_fin", "udp"))
        desired.timeouts = Timeouts(**{key: c.integer(node, f"timeouts.{key}", "timeout") or 0
                                       for key, node in tm.items()})
    if "sysctls" in top:
        desired.sysctls = _sysctls(c, top["sysctls"])
    if "vips" in top:
        desired.vip_lists = _vips(c, top["vips"])
    if "daemons" in top:
        desired.daemons = []
        for index, item in enumerate(c.seq(top["daemons"], "daemons")):
            daemon = _daemon(c, item, f"daemons[{index}]")
            if daemon is not None:
                desired.daemons.append(daemon)
        if len({d.state for d in desired.daemons}) != len(desired.daemons):
            c.fail(top["daemons"], "daemons", "at most one master and one backup")
    _unique_lists(c, root, desired)
    if c.problems:
        raise ConfigError(c.problems)
    return desired


def _unique_lists(c: _Checker, root: yaml.Node, desired: Desired) -> None:
    """A service's list and a vips: entry for the same service collide."""
    seen: set[tuple] = set()
    for lst in desired.access_lists:
        if lst.key in seen:
            c.fail(root, "vips", f"the {lst.kind.value} list of {lst.target.describe()} "
                   "is given twice (under its service and in vips)")
        seen.add(lst.key)


def load(path: str) -> Desired:
    with open(path, encoding="utf-8") as handle:
        return validate(handle.read(), path)

