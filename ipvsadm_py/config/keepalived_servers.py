"""What a keepalived virtual_server block says: its services (an address
and port, a fwmark, or a virtual_server_group), its keywords and its real
servers, before :mod:`.keepalived_conf` checks them as IPVS services.
"""

from __future__ import annotations

import dataclasses

from netaddr import IPAddress

from ipvsadm_py import acl, rules
from ipvsadm_py.config.keepalived_blocks import Node
from ipvsadm_py.config.keepalived_values import (Method, Reader, laddr_block, lvs_method,
                                                 parse_address, parse_number, range_end)
from ipvsadm_py.model import (AF_INET, AF_INET6, DEFAULT_PERSISTENCE, Dest, Protocol, Service,
                              addr_text, af_of, protocol_name)

VSG_MAX_RANGE = 256             # addresses per virtual_server_group range
SCHED_FLAG_WORDS = ("flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port",
                    "mh-fallback")
TRUE_WORDS, FALSE_WORDS = ("on", "true", "yes"), ("off", "false", "no")

# keepalived 2.2's other keywords of a virtual_server and a real_server:
# accepted and not read (health checking, alerts, sorry servers).
VS_IGNORED = frozenset((
    "retry", "delay_before_retry", "warmup", "connect_timeout", "delay_loop",
    "inhibit_on_failure", "hashed", "ha_suspend", "smtp_alert", "virtualhost", "snmp_name",
    "alpha", "omega", "quorum_up", "quorum_down", "quorum", "hysteresis", "sorry_server",
    "sorry_server_inhibit", "sorry_server_lvs_method"))
RS_IGNORED = frozenset((
    "inhibit_on_failure", "notify_up", "notify_down", "alpha", "retry", "delay_before_retry",
    "warmup", "connect_timeout", "delay_loop", "smtp_alert", "virtualhost", "snmp_name",
    "TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "BFD_CHECK",
    "FILE_CHECK", "PING_CHECK", "UDP_CHECK"))


# ---------------------------------------------------------------- real servers
@dataclasses.dataclass
class _RealServer:
    dest: Dest
    method: Method | None          # None: the virtual server's
    port_given: bool
    weight_given: bool
    line: int


def _real_server(r: Reader, node: Node, vs_name: str) -> _RealServer | None:
    addr = parse_address(node.args[0]) if node.args else None
    if addr is None or len(node.args) > 2:
        r.fail(node.line, f"{vs_name}: invalid real server ip address/port "
               f"{' '.join(node.args)}")
        return None
    dest = Dest(addr=addr, af=af_of(addr.version))
    port = parse_number(node.args[1], "port") if len(node.args) == 2 else 0
    if port is None:
        r.fail(node.line, f"{vs_name}: invalid real server port {node.args[1]}")
        return None
    dest.port = port
    rs = _RealServer(dest, None, bool(port), False, node.line)
    for item in node.block or []:
        _rs_keyword(r, item, rs, vs_name)
    return rs


def _rs_keyword(r: Reader, node: Node, rs: _RealServer, vs_name: str) -> None:
    fields = {"weight": "weight", "uthreshold": "u_threshold", "lthreshold": "l_threshold"}
    if node.word in fields:
        value = parse_number(node.args[0], fields[node.word]) if len(node.args) == 1 else None
        if value is None:
            low, high = rules.LIMITS[fields[node.word]]
            r.fail(node.line, f"{vs_name}: real server {rs.dest.describe()}: {node.word} "
                   f"must be a number {low}-{high}")
            return
        setattr(rs.dest, fields[node.word], value)
        rs.weight_given |= node.word == "weight"
    elif node.word == "lvs_method":
        rs.method = lvs_method(r, node) or rs.method
    elif node.word not in RS_IGNORED:
        r.fail(node.line, f"{vs_name}: real server {rs.dest.describe()}: unknown keyword "
               f"'{node.word}'")


# ---------------------------------------------------------------- virtual servers
@dataclasses.dataclass
class VirtualServer:
    """What a virtual_server block says, before it becomes services."""

    line: int
    name: str
    targets: list[Service]               # one per IPVS service (a group has several)
    scheduler: str = ""
    protocol: int | None = None
    persistence: int | None = None
    granularity: tuple[str, int] | None = None
    pe_name: str = ""
    flags: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    family: int | None = None
    method: Method | None = None
    weight: int = 1
    syn_proxy: tuple[bool, int] | None = None
    laddrs: list[IPAddress] = dataclasses.field(default_factory=list)
    laddr_line: int = 0
    group: tuple[str, int] | None = None
    servers: list[_RealServer] = dataclasses.field(default_factory=list)
    lists: list[tuple[acl.Kind, str, int]] = dataclasses.field(default_factory=list)


def _vs_name(node: Node, targets: list[Service]) -> str:
    """keepalived's name of a virtual server in its messages (``virtual
    server [10.0.0.1]:tcp:80``), its protocol read ahead."""
    if len(targets) != 1:
        return "virtual server " + " ".join(node.args)
    svc = dataclasses.replace(targets[0])
    words = [item.args[0].upper() for item in node.block or []
             if item.word == "protocol" and len(item.args) == 1]
    if not svc.fwmark:
        svc.protocol = Protocol[words[-1]] if words and words[-1] in Protocol.__members__ \
            else Protocol.UDP
    return service_name(svc)


def _targets(r: Reader, node: Node, groups: dict[str, Node]) -> list[Service] | None:
    """The IPVS services a virtual_server line names (a group: several)."""
    args = node.args
    if len(args) == 2 and args[0] == "fwmark":
        mark = parse_number(args[1], "fwmark")
        if mark is None:
            r.fail(node.line, f"virtual_server: fwmark must be a number 1-4294967295, "
                   f"not {args[1]}")
            return None
        return [Service(protocol=0, fwmark=mark)]
    if len(args) == 2 and args[0] == "group":
        if args[1] not in groups:
            r.fail(node.line, f"virtual_server: virtual_server_group {args[1]} is not defined")
            return None
        return _group_targets(r, groups[args[1]])
    addr = parse_address(args[0]) if args else None
    port = parse_number(args[1], "port") if len(args) == 2 else 0 if len(args) == 1 else None
    if addr is None or port is None:
        r.fail(node.line, f"virtual_server: invalid virtual server ip address/port "
               f"{' '.join(args)}")
        return None
    return [Service(addr=addr, af=af_of(addr.version), port=port)]


def _group_targets(r: Reader, group: Node) -> list[Service] | None:
    """``IP PORT``, ``IP-LAST PORT`` and ``fwmark N [inet|inet6]`` entries."""
    out: list[Service] = []
    for entry in group.block or []:
        words = [entry.word, *entry.args]
        if words[0] == "fwmark":
            mark = parse_number(words[1], "fwmark") if len(words) in (2, 3) else None
            family = words[2] if len(words) == 3 else "inet"
            if mark is None or family not in ("inet", "inet6"):
                r.fail(entry.line, f"virtual_server_group {group.args[0]}: invalid entry "
                       f"{' '.join(words)}")
                return None
            out.append(Service(protocol=0, fwmark=mark,
                               af=AF_INET6 if family == "inet6" else AF_INET))
            continue
        found = _group_range(r, group, entry, words)
        if found is None:
            return None
        out += found
    return out


def _group_range(r: Reader, group: Node, entry: Node, words: list[str]
                 ) -> list[Service] | None:
    where = f"virtual_server_group {group.args[0]}"
    if "/" in words[0]:
        r.fail(entry.line, f"{where}: a prefix entry ({words[0]}) is not supported here; "
               "write a range a.b.c.d-e")
        return None
    first, dash, last = words[0].partition("-")
    start = parse_address(first)
    port = parse_number(words[1], "port") if len(words) == 2 else 0 if len(words) == 1 else None
    try:
        if start is None or port is None:
            raise ValueError("not an address and port")
        end = range_end(last, start) if dash else start
        if not 0 <= int(end) - int(start) < VSG_MAX_RANGE:
            raise ValueError("the range is empty or too long")
    except ValueError as exc:
        r.fail(entry.line, f"{where}: invalid entry {' '.join(words)}: {exc}")
        return None
    return [Service(addr=IPAddress(v, start.version), af=af_of(start.version), port=port)
            for v in range(int(start), int(end) + 1)]


def _vs_keyword(r: Reader, node: Node, vs: VirtualServer) -> None:
    """One keyword of a virtual_server block."""
    word, args = node.word, node.args
    one = args[0] if len(args) == 1 else None
    if word in ("lb_algo", "lvs_sched") and one:
        vs.scheduler = one
    elif word in ("lb_kind", "lvs_method"):
        vs.method = lvs_method(r, node) or vs.method
    elif word == "protocol" and one and one.upper() in Protocol.__members__:
        vs.protocol = Protocol[one.upper()]
    elif word == "persistence_timeout" and len(args) <= 1:
        vs.persistence = parse_number(one, "persistent") if one else DEFAULT_PERSISTENCE
        if vs.persistence is None:
            r.fail(node.line, f"{vs.name}: persistence_timeout invalid ({one})")
    elif word == "persistence_granularity" and one:
        vs.granularity = (one, node.line)
    elif word == "persistence_engine" and one:
        vs.pe_name = one
    elif word in SCHED_FLAG_WORDS + ("ops",) and not args:
        vs.flags.append((word, node.line))
    elif word == "ip_family" and one in ("inet", "inet6"):
        vs.family = AF_INET6 if one == "inet6" else AF_INET
    elif word == "weight" and one and parse_number(one, "weight") is not None:
        vs.weight = int(one)
    elif word == "syn_proxy" and (not args or (one or "").lower() in TRUE_WORDS + FALSE_WORDS):
        vs.syn_proxy = (not args or one.lower() in TRUE_WORDS, node.line)
    elif word == "local_address" and not args:
        found, _ok = laddr_block(r, node.block, "local_address")
        vs.laddrs = list(dict.fromkeys(vs.laddrs + found))     # once each, in order
        vs.laddr_line = vs.laddr_line or node.line
    elif word == "laddr_group_name" and one:
        if vs.group is not None:
            r.fail(node.line, f"laddr_group_name given twice ({vs.group[0]}, {one})")
        vs.group = (one, node.line)
    elif word in ("deny_group", "allow_group") and one:
        vs.lists.append((acl.Kind(word.partition("_")[0]), one, node.line))
    elif word == "real_server":
        rs = _real_server(r, node, vs.name)
        if rs is not None:
            vs.servers.append(rs)
    elif word == "syn_proxy":
        r.fail(node.line, f"{vs.name}: syn_proxy takes on/off, not '{' '.join(args)}'")
    elif word in VS_IGNORED:
        pass
    elif word in _VS_KEYWORDS:
        r.fail(node.line, f"{vs.name}: {word}: invalid value {' '.join(args) or '(none)'}")
    else:
        r.fail(node.line, f"{vs.name}: unknown keyword '{word}'")


_VS_KEYWORDS = frozenset(("lb_algo", "lvs_sched", "protocol", "persistence_timeout",
                          "persistence_granularity", "persistence_engine", "ops", "ip_family",
                          "weight", "syn_proxy", "local_address", "laddr_group_name",
                          "deny_group", "allow_group",
                          *SCHED_FLAG_WORDS))


def service_name(svc: Service) -> str:
    """keepalived's ``[10.0.0.1]:tcp:80`` (``FWM 7`` for a mark)."""
    if svc.fwmark:
        return f"virtual server FWM {svc.fwmark}"
    return f"virtual server [{addr_text(svc.addr)}]:{protocol_name(svc.protocol)}:{svc.port}"


def read_virtual_server(r: Reader, node: Node, vsgs: dict[str, Node]) -> VirtualServer | None:
    """What one virtual_server block says (None: its line names no service)."""
    targets = _targets(r, node, vsgs)
    if targets is None:
        return None
    vs = VirtualServer(node.line, _vs_name(node, targets), targets)
    if node.block is None:
        r.fail(node.line, f"{vs.name}: needs a block {{ ... }}")
    for item in node.block or []:
        _vs_keyword(r, item, vs)
    return vs
