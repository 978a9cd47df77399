"""Declarative configuration: validate a YAML file, plan against the live
table, apply the plan, and export the live table as such a file.

The schema is in docs/ipvsadm-py.md.  :func:`load` validates the whole
file and reports every problem with its line number; nothing is applied
when there is any.  :func:`plan` compares with the live state and returns
only the steps that change something: edits are used wherever the kernel
allows them (a weight or scheduler change never recreates a service, so
live sessions stay), and applying the same file twice plans nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

import yaml
from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange

from ipvsadm_py import model, wire
from ipvsadm_py.api import IPVS, Op, list_sysctls, ops, write_sysctl
from ipvsadm_py.errors import InvalidInput, IPVSError
from ipvsadm_py.model import Daemon, Dest, LocalAddress, Service, Timeouts

SCHEMA_VERSION = 1
MAX_RANGE = 65536


# ---------------------------------------------------------------- desired state
@dataclasses.dataclass
class ServiceSpec:
    service: Service
    dests: list[Dest]
    laddrs: list[IPAddress]
    line: int = 0


@dataclasses.dataclass
class Desired:
    """What a configuration file asks for (after validation)."""

    services: list[ServiceSpec] = dataclasses.field(default_factory=list)
    timeouts: Timeouts | None = None
    sysctls: dict[str, int] = dataclasses.field(default_factory=dict)
    daemons: list[Daemon] | None = None


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

    def integer(self, node: yaml.Node, path: str, low: int, high: int) -> int | None:
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
    import socket

    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return True
        except OSError:
            continue
    return False


# ---------------------------------------------------------------- validation
TOP_KEYS = ("version", "services", "timeouts", "sysctls", "daemons", "local_address_groups")
SERVICE_KEYS = ("protocol", "address", "port", "fwmark", "family", "scheduler", "sched_flags",
                "persistent", "netmask", "pe", "ops", "synproxy", "laddrs", "laddr_group",
                "dests")
DEST_KEYS = ("address", "port", "forward", "weight", "u_threshold", "l_threshold", "tunnel")
DAEMON_KEYS = ("state", "mcast_interface", "syncid", "sync_maxlen", "mcast_group",
               "mcast_port", "mcast_ttl")
INT_MAX = 2147483647


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


def _dest(c: _Checker, node: yaml.Node, path: str, svc: Service) -> Dest | None:
    m = c.mapping(node, path, DEST_KEYS)
    if "address" not in m:
        c.fail(node, path, "a real server needs an address")
        return None
    addr = c.address(m["address"], f"{path}.address")
    dest = Dest(port=svc.port, forward=wire.FWD_DROUTE)
    if addr is not None:
        dest.addr, dest.af = addr, model.af_of(addr.version)
    if "port" in m:
        dest.port = c.integer(m["port"], f"{path}.port", 0, 65535) or 0
    if "forward" in m:
        names = list(model.FORWARD) + list(model.FORWARD_ALIASES)
        word = c.choice(m["forward"], f"{path}.forward", names)
        if word:
            dest.forward = model.FORWARD[model.FORWARD_ALIASES.get(word, word)]
    for key in ("weight", "u_threshold", "l_threshold"):
        if key in m:
            value = c.integer(m[key], f"{path}.{key}", 0, INT_MAX)
            if value is not None:
                setattr(dest, key, value)
    if dest.forward in (wire.FWD_DROUTE, wire.FWD_TUNNEL) and not svc.fwmark \
            and "port" in m and dest.port != svc.port:
        c.fail(m["port"], f"{path}.port", "direct routing and tunneling keep the service "
               f"port ({svc.port})")
    if "tunnel" in m:
        _tunnel(c, m["tunnel"], f"{path}.tunnel", dest)
    if addr is not None and dest.af != svc.af and dest.forward != wire.FWD_TUNNEL:
        c.fail(m["address"], f"{path}.address", "a different address family is allowed "
               "only for tunneling")
    return dest


def _tunnel(c: _Checker, node: yaml.Node, path: str, dest: Dest) -> None:
    m = c.mapping(node, path, ("type", "port", "csum"))
    if dest.forward != wire.FWD_TUNNEL:
        c.fail(node, path, "tunnel options need forward: tunnel")
    if "type" in m:
        word = c.choice(m["type"], f"{path}.type", model.TUN_TYPES)
        dest.tun_type = model.TUN_TYPES.get(word or "ipip", 0)
    if "port" in m:
        dest.tun_port = c.integer(m["port"], f"{path}.port", 1, 65535) or 0
    if "csum" in m:
        word = c.choice(m["csum"], f"{path}.csum", model.TUN_CSUM)
        dest.tun_flags = model.TUN_CSUM.get(word or "nocsum", 0)
    if dest.tun_type == wire.TUN_TYPE_GUE and not dest.tun_port:
        c.fail(node, path, "a gue tunnel needs a port")
    if dest.tun_type != wire.TUN_TYPE_GUE and "port" in m:
        c.fail(m["port"], f"{path}.port", "only gue tunnels have a port")
    if dest.tun_type == wire.TUN_TYPE_IPIP and "csum" in m:
        c.fail(m["csum"], f"{path}.csum", "ipip tunnels have no checksum option")
    if dest.tun_type == wire.TUN_TYPE_GRE and dest.tun_flags == wire.TUN_F_REMCSUM:
        c.fail(m["csum"], f"{path}.csum", "remcsum is for gue tunnels only")


def _service(c: _Checker, node: yaml.Node, path: str,
             groups: dict[str, list[IPAddress]]) -> ServiceSpec | None:
    m = c.mapping(node, path, SERVICE_KEYS)
    svc = Service()
    if "fwmark" in m:
        svc.fwmark = c.integer(m["fwmark"], f"{path}.fwmark", 1, 0xFFFFFFFF) or 0
        svc.protocol = 0
        for key in ("protocol", "address", "port"):
            if key in m:
                c.fail(m[key], f"{path}.{key}", "a fwmark service has no " + key)
        family = c.integer(m["family"], f"{path}.family", 4, 6) if "family" in m else 4
        if family not in (4, 6, None):
            c.fail(m["family"], f"{path}.family", "must be 4 or 6")
        svc.af = model.af_of(family or 4)
    else:
        if "address" not in m or "protocol" not in m:
            c.fail(node, path, "a service needs protocol and address (or fwmark)")
            return None
        proto = c.choice(m["protocol"], f"{path}.protocol", model.PROTOCOLS)
        svc.protocol = model.PROTOCOLS.get(proto or "tcp", 6)
        addr = c.address(m["address"], f"{path}.address")
        if addr is not None:
            svc.addr, svc.af = addr, model.af_of(addr.version)
        port = c.integer(m["port"], f"{path}.port", 0, 65535) if "port" in m else 0
        svc.port = port if port is not None else -1     # -1: already reported
        if "family" in m:
            c.fail(m["family"], f"{path}.family", "family comes from the address")
    svc.netmask = svc.default_netmask
    svc.scheduler = str(c.scalar(m["scheduler"], f"{path}.scheduler")) \
        if "scheduler" in m else model.DEFAULT_SCHEDULER
    if "persistent" in m:
        value = c.scalar(m["persistent"], f"{path}.persistent")
        if value is True:
            value = model.DEFAULT_PERSISTENCE
        if value not in (False, None):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 1 <= value <= model.MAX_TIMEOUT:
                c.fail(m["persistent"], f"{path}.persistent", "must be true, false or a "
                       f"timeout 1-{model.MAX_TIMEOUT}, not {value!r}")
            else:
                svc.flags |= wire.SVC_F_PERSISTENT
                svc.timeout = value
    if "netmask" in m:
        _netmask(c, m["netmask"], f"{path}.netmask", svc)
    if "pe" in m:
        svc.pe_name = str(c.scalar(m["pe"], f"{path}.pe"))
    if "ops" in m and c.boolean(m["ops"], f"{path}.ops"):
        svc.flags |= wire.SVC_F_ONEPACKET
        if not svc.fwmark and svc.protocol != wire.IPPROTO_UDP:
            c.fail(m["ops"], f"{path}.ops", "one-packet scheduling is only for UDP")
    if "synproxy" in m and c.boolean(m["synproxy"], f"{path}.synproxy"):
        svc.flags |= wire.SVC_F_SYNPROXY
        if svc.protocol != wire.IPPROTO_TCP:
            c.fail(m["synproxy"], f"{path}.synproxy", "SYNPROXY is for TCP services")
    if "sched_flags" in m:
        words = [str(c.scalar(n, f"{path}.sched_flags")) for n in
                 c.seq(m["sched_flags"], f"{path}.sched_flags")]
        try:
            svc.flags |= model.parse_sched_flags(svc.scheduler, words)
        except InvalidInput as exc:
            c.fail(m["sched_flags"], f"{path}.sched_flags", str(exc))
    if not svc.fwmark and svc.port == 0 and not svc.persistent:
        c.fail(node, path, "port 0 (or none) needs persistent")
    laddrs: list[IPAddress] = []
    if "laddrs" in m:
        laddrs += _address_list(c, m["laddrs"], f"{path}.laddrs")
    if "laddr_group" in m:
        name = c.scalar(m["laddr_group"], f"{path}.laddr_group")
        if name not in groups:
            c.fail(m["laddr_group"], f"{path}.laddr_group", f"no local_address_groups "
                   f"entry {name!r}")
        laddrs += groups.get(name, [])
    for index, la in enumerate(laddrs):
        if la.version != model.family_of(svc.af):
            c.fail(m.get("laddrs") or m.get("laddr_group"), f"{path}.laddrs",
                   f"{la} is not of the service's address family")
            break
    if len(set(laddrs)) != len(laddrs):
        c.fail(m.get("laddrs") or m.get("laddr_group"), f"{path}.laddrs",
               "an address is listed twice")
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
    if any(d.forward == wire.FWD_FULLNAT for d in dests) and not laddrs:
        c.fail(node, path, "FULLNAT real servers need local addresses (laddrs or "
               "laddr_group)")
    if laddrs and svc.fwmark:
        c.fail(node, path, "local addresses need a protocol/address service, not fwmark")
    return ServiceSpec(svc, dests, laddrs, node.start_mark.line + 1)


def _netmask(c: _Checker, node: yaml.Node, path: str, svc: Service) -> None:
    value = c.scalar(node, path)
    if svc.af == model.AF_INET6:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 128:
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


def _daemon(c: _Checker, node: yaml.Node, path: str) -> Daemon | None:
    m = c.mapping(node, path, DAEMON_KEYS)
    if "state" not in m:
        c.fail(node, path, "a daemon needs state: master or backup")
        return None
    d = Daemon(state=c.choice(m["state"], f"{path}.state", ["master", "backup"]) or "master")
    if "mcast_interface" in m:
        d.mcast_ifn = str(c.scalar(m["mcast_interface"], f"{path}.mcast_interface"))
    limits = {"syncid": 255, "sync_maxlen": 65535 - 28, "mcast_port": 65535,
              "mcast_ttl": 255}
    for key, high in limits.items():
        if key in m:
            value = c.integer(m[key], f"{path}.{key}", 0 if key == "syncid" else 1, high)
            if value is not None:
                setattr(d, key, value)
    if "mcast_group" in m:
        addr = c.address(m["mcast_group"], f"{path}.mcast_group")
        if addr is not None and not addr.is_multicast():
            c.fail(m["mcast_group"], f"{path}.mcast_group", f"{addr} is not multicast")
        d.mcast_group = addr
    return d


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
    desired = Desired()
    if root is None:
        return desired
    top = c.mapping(root, "(top)", TOP_KEYS)
    if "version" in top:
        c.integer(top["version"], "version", SCHEMA_VERSION, SCHEMA_VERSION)
    groups: dict[str, list[IPAddress]] = {}
    if "local_address_groups" in top:
        gm = top["local_address_groups"]
        if isinstance(gm, yaml.MappingNode):
            for key_node, value in gm.value:
                groups[str(key_node.value)] = _address_list(
                    c, value, f"local_address_groups.{key_node.value}")
        else:
            c.fail(gm, "local_address_groups", "must be a mapping of name: [addresses]")
    seen: dict[tuple, int] = {}
    for index, item in enumerate(c.seq(top["services"], "services") if "services" in top
                                 else []):
        spec = _service(c, item, f"services[{index}]", groups)
        if spec is None:
            continue
        if spec.service.key in seen:
            c.fail(item, f"services[{index}]", f"service {spec.service.describe()} is "
                   f"also defined at line {seen[spec.service.key]}")
        seen[spec.service.key] = spec.line
        desired.services.append(spec)
    if "timeouts" in top:
        tm = c.mapping(top["timeouts"], "timeouts", ("tcp", "tcp_fin", "udp"))
        t = Timeouts()
        for key, node in tm.items():
            setattr(t, key, c.integer(node, f"timeouts.{key}", 0, model.MAX_TIMEOUT) or 0)
        desired.timeouts = t
    if "sysctls" in top:
        sm = top["sysctls"]
        if isinstance(sm, yaml.MappingNode):
            for key_node, value in sm.value:
                name = str(key_node.value)
                if not name.replace("_", "").isalnum():
                    c.fail(key_node, f"sysctls.{name}", "not a sysctl name")
                    continue
                number = c.integer(value, f"sysctls.{name}", -INT_MAX - 1, INT_MAX)
                if number is not None:
                    desired.sysctls[name] = number
        else:
            c.fail(sm, "sysctls", "must be a mapping of name: integer")
    if "daemons" in top:
        desired.daemons = []
        for index, item in enumerate(c.seq(top["daemons"], "daemons")):
            d = _daemon(c, item, f"daemons[{index}]")
            if d is not None:
                desired.daemons.append(d)
        if len({d.state for d in desired.daemons}) != len(desired.daemons):
            c.fail(top["daemons"], "daemons", "at most one master and one backup")
    if c.problems:
        raise ConfigError(c.problems)
    return desired


def load(path: str) -> Desired:
    with open(path, encoding="utf-8") as handle:
        return validate(handle.read(), path)


# ---------------------------------------------------------------- planning
@dataclasses.dataclass
class Step:
    """One change of a plan: a kernel operation or a sysctl write."""

    action: str            # add | edit | delete
    what: str              # service | dest | laddr | timeouts | sysctl | daemon
    text: str
    op: Op | None = None
    sysctl: tuple[str, int] | None = None

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "what": self.what, "text": self.text}


@dataclasses.dataclass
class LiveState:
    services: list[tuple[Service, list[Dest]]]
    laddrs: dict[tuple, list[LocalAddress]]
    timeouts: Timeouts
    sysctls: dict[str, int]
    daemons: list[Daemon]


def read_live(ipvs: IPVS) -> LiveState:
    table = ipvs.table()
    laddrs: dict[tuple, list[LocalAddress]] = {}
    if ipvs.fullnat_supported():
        laddrs = {svc.key: ipvs.laddrs(svc) for svc, _ in table if not svc.fwmark}
    return LiveState(table, laddrs, ipvs.timeouts(), list_sysctls(), ipvs.daemons())


def _service_differs(want: Service, have: Service) -> bool:
    return (want.scheduler, want.flags & ~wire.SVC_F_HASHED,
            want.timeout if want.persistent else 0,
            want.netmask if want.persistent else 0, want.pe_name) != \
        (have.scheduler, have.flags & ~wire.SVC_F_HASHED,
         have.timeout if have.persistent else 0,
         have.netmask if have.persistent else 0, have.pe_name)


def _dest_differs(want: Dest, have: Dest) -> bool:
    fields = ("forward", "weight", "u_threshold", "l_threshold", "tun_type", "tun_port",
              "tun_flags")
    if want.forward != wire.FWD_TUNNEL:
        fields = fields[:4]
    return any(getattr(want, f) != getattr(have, f) for f in fields)


def _describe_service(svc: Service) -> str:
    words = [svc.describe(), svc.scheduler]
    if svc.persistent:
        words.append(f"persistent {svc.timeout}")
    if svc.synproxy:
        words.append("synproxy")
    return " ".join(words)


def _describe_dest(svc: Service, d: Dest) -> str:
    return (f"{svc.describe()} -> {d.describe()} {model.FORWARD_NAMES.get(d.forward)} "
            f"weight {d.weight}")


def plan(desired: Desired, live: LiveState, prune: bool = True) -> list[Step]:
    """The steps that turn the live state into the desired one (in order)."""
    steps: list[Step] = []
    for name, value in desired.sysctls.items():
        if name not in live.sysctls:
            raise InvalidInput(f"sysctl net.ipv4.vs.{name} does not exist in this kernel")
        if live.sysctls[name] != value:
            steps.append(Step("edit", "sysctl", f"net.ipv4.vs.{name} = {value} "
                              f"(was {live.sysctls[name]})", sysctl=(name, value)))
    if desired.timeouts is not None:
        t = desired.timeouts
        want = Timeouts(t.tcp or live.timeouts.tcp, t.tcp_fin or live.timeouts.tcp_fin,
                        t.udp or live.timeouts.udp)
        if want != live.timeouts:
            steps.append(Step("edit", "timeouts", f"timeouts tcp {want.tcp} tcpfin "
                              f"{want.tcp_fin} udp {want.udp}", ops.set_timeouts(want)))
    have = {svc.key: (svc, dests) for svc, dests in live.services}
    want_keys = {spec.service.key for spec in desired.services}
    if prune:
        for svc, _ in live.services:
            if svc.key not in want_keys:
                steps.append(Step("delete", "service", svc.describe(),
                                  ops.delete_service(svc)))
    for spec in desired.services:
        steps += _service_steps(spec, have.get(spec.service.key),
                                live.laddrs.get(spec.service.key, []), prune)
    if desired.daemons is not None:
        steps += _daemon_steps(desired.daemons, live.daemons, prune)
    return steps


def _service_steps(spec: ServiceSpec, current: tuple[Service, list[Dest]] | None,
                   live_laddrs: list[LocalAddress], prune: bool) -> list[Step]:
    svc = spec.service
    steps: list[Step] = []
    live_dests: dict[tuple, Dest] = {}
    if current is None:
        steps.append(Step("add", "service", _describe_service(svc), ops.add_service(svc)))
    else:
        live_dests = {d.key: d for d in current[1]}
        if _service_differs(svc, current[0]):
            steps.append(Step("edit", "service", _describe_service(svc),
                              ops.edit_service(svc)))
    have_la = {int(la.addr) for la in live_laddrs}
    want_la = {int(a) for a in spec.laddrs}
    for addr in spec.laddrs:
        if int(addr) not in have_la:
            steps.append(Step("add", "laddr", f"{svc.describe()} local address {addr}",
                              ops.add_laddr(svc, LocalAddress(addr))))
    want_keys = {d.key for d in spec.dests}
    if prune:
        for key, d in live_dests.items():
            if key not in want_keys:
                steps.append(Step("delete", "dest", _describe_dest(svc, d),
                                  ops.delete_dest(svc, d)))
    for d in spec.dests:
        old = live_dests.get(d.key)
        if old is None:
            steps.append(Step("add", "dest", _describe_dest(svc, d), ops.add_dest(svc, d)))
        elif _dest_differs(d, old):
            steps.append(Step("edit", "dest", _describe_dest(svc, d), ops.edit_dest(svc, d)))
    if prune:
        for la in live_laddrs:
            if int(la.addr) not in want_la:
                steps.append(Step("delete", "laddr", f"{svc.describe()} local address "
                                  f"{model.addr_text(la.addr)}", ops.delete_laddr(svc, la)))
    return steps


def _daemon_steps(want: list[Daemon], have: list[Daemon], prune: bool) -> list[Step]:
    steps = []
    have_by = {d.state: d for d in have}
    want_by = {d.state: d for d in want}
    for state, d in have_by.items():
        w = want_by.get(state)
        if (w is None and prune) or (w is not None and _daemon_differs(w, d)):
            steps.append(Step("delete", "daemon", f"{state} sync daemon",
                              ops.stop_daemon(d)))
    for state, w in want_by.items():
        d = have_by.get(state)
        if d is None or _daemon_differs(w, d):
            steps.append(Step("add", "daemon", f"{state} sync daemon on {w.mcast_ifn} "
                              f"syncid {w.syncid}", ops.start_daemon(w)))
    return steps


def _daemon_differs(want: Daemon, have: Daemon) -> bool:
    """Whether a running daemon differs from the wanted one in what the file
    sets (unset group, port, ttl and maxlen are the kernel's defaults)."""
    if (want.mcast_ifn, want.syncid) != (have.mcast_ifn, have.syncid):
        return True
    for field in ("sync_maxlen", "mcast_port", "mcast_ttl"):
        if getattr(want, field) and getattr(want, field) != getattr(have, field):
            return True
    return want.mcast_group is not None and want.mcast_group != have.mcast_group


def plan_text(steps: Sequence[Step]) -> str:
    if not steps:
        return "nothing to change\n"
    marks = {"add": "+", "edit": "~", "delete": "-"}
    return "".join(f"{marks[s.action]} {s.what} {s.text}\n" for s in steps)


def apply_plan(ipvs: IPVS, steps: Sequence[Step]) -> list[str]:
    """Carry out a plan (kernel steps pipelined); returns the failures."""
    failures = []
    for step in steps:
        if step.op is not None:
            ipvs.check_op(step.op)
    for step in steps:
        if step.sysctl is not None:
            try:
                write_sysctl(*step.sysctl)
            except IPVSError as exc:
                failures.append(f"{step.text}: {exc}")
    kernel = [s for s in steps if s.op is not None]
    for step, error in zip(kernel, ipvs.run([s.op for s in kernel])):
        if error is not None:
            failures.append(f"{step.action} {step.what} {step.text}: {error}")
    return failures


# ---------------------------------------------------------------- export
def _compress(addrs: list[IPAddress]) -> list[str]:
    """Consecutive addresses as ``first-last`` ranges."""
    out: list[str] = []
    values = sorted(addrs, key=int)
    start = prev = None
    for addr in values:
        if prev is not None and int(addr) == int(prev) + 1:
            prev = addr
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = addr
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return out


def export_dict(live: LiveState, sysctls: bool = True) -> dict[str, Any]:
    """The live state as a configuration document."""
    from ipvsadm_py.fmt import sort_dests, sort_services

    doc: dict[str, Any] = {"version": SCHEMA_VERSION}
    services = []
    table = dict((id(s), d) for s, d in live.services)
    for svc in sort_services([s for s, _ in live.services]):
        entry: dict[str, Any] = {}
        if svc.fwmark:
            entry["fwmark"] = svc.fwmark
            entry["family"] = model.family_of(svc.af)
        else:
            entry["protocol"] = model.PROTOCOL_NAMES.get(svc.protocol, "tcp")
            entry["address"] = model.addr_text(svc.addr)
            entry["port"] = svc.port
        entry["scheduler"] = svc.scheduler
        if svc.flags & wire.SVC_F_SCHED_MASK:
            entry["sched_flags"] = svc.sched_flags
        if svc.persistent:
            entry["persistent"] = svc.timeout
            if svc.netmask != svc.default_netmask:
                entry["netmask"] = svc.netmask if svc.af == model.AF_INET6 \
                    else svc.netmask_text()
        if svc.pe_name:
            entry["pe"] = svc.pe_name
        if svc.onepacket:
            entry["ops"] = True
        if svc.synproxy:
            entry["synproxy"] = True
        las = live.laddrs.get(svc.key)
        if las:
            entry["laddrs"] = _compress([la.addr for la in las])
        dests = []
        for d in sort_dests(table[id(svc)]):
            dd: dict[str, Any] = {"address": model.addr_text(d.addr), "port": d.port,
                                  "forward": d.forward_name, "weight": d.weight}
            if d.u_threshold:
                dd["u_threshold"] = d.u_threshold
            if d.l_threshold:
                dd["l_threshold"] = d.l_threshold
            if d.forward == wire.FWD_TUNNEL and d.tun_type != wire.TUN_TYPE_IPIP:
                tun: dict[str, Any] = {"type": model.TUN_TYPE_NAMES[d.tun_type]}
                if d.tun_type == wire.TUN_TYPE_GUE:
                    tun["port"] = d.tun_port
                tun["csum"] = model.TUN_CSUM_NAMES.get(d.tun_flags, "nocsum")
                dd["tunnel"] = tun
            dests.append(dd)
        entry["dests"] = dests
        services.append(entry)
    doc["services"] = services
    doc["timeouts"] = live.timeouts.to_dict()
    doc["daemons"] = [_daemon_dict(d) for d in live.daemons]
    if sysctls:
        doc["sysctls"] = dict(live.sysctls)
    return doc


def _daemon_dict(d: Daemon) -> dict[str, Any]:
    out: dict[str, Any] = {"state": d.state, "mcast_interface": d.mcast_ifn,
                           "syncid": d.syncid}
    if d.sync_maxlen:
        out["sync_maxlen"] = d.sync_maxlen
    if d.mcast_group is not None:
        out["mcast_group"] = model.addr_text(d.mcast_group)
    if d.mcast_port:
        out["mcast_port"] = d.mcast_port
    if d.mcast_ttl:
        out["mcast_ttl"] = d.mcast_ttl
    return out


def export_text(live: LiveState, sysctls: bool = True) -> str:
    header = "# ipvsadm-py export: apply with `ipvsadm-py apply FILE`\n"
    return header + yaml.safe_dump(export_dict(live, sysctls), sort_keys=False,
                                   default_flow_style=False)
