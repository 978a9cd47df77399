"""keepalived.conf as a configuration file: the ``virtual_server`` subset.

:func:`validate` reads the IPVS part of a keepalived configuration in our
FULLNAT dialect (the grammar of docs/keepalived.md) into the same
:class:`~ipvsadm_py.config.schema.Desired` state as a YAML file, or raises
:class:`~ipvsadm_py.config.schema.ConfigError` with every problem as
``FILE:LINE: message`` (keepalived's wording).  Everything that does not
describe IPVS state (``global_defs``, ``vrrp_*``, checkers, notify scripts,
sorry servers, ``include``) is skipped.
:mod:`.keepalived_export` writes a live state in the same dialect.

The file is read as keepalived reads it: words separated by blanks, ``{``
and ``}`` words of their own, ``#`` and ``!`` start comments, a block's
``{`` on the keyword's line or the next one.  The checks are the YAML
path's (:mod:`ipvsadm_py.rules`) plus the dialect's own FULLNAT/SYNPROXY
rules, which keepalived enforces too.
"""

from __future__ import annotations

import dataclasses
import re
import socket
from typing import Iterator

from netaddr import IPAddress

from ipvsadm_py import rules
from ipvsadm_py.config.desired import ConfigError, Desired, ServiceSpec
from ipvsadm_py.model import (AF_INET, AF_INET6, DEFAULT_PERSISTENCE, DEFAULT_SCHEDULER,
                              Dest, Forward, Protocol, Service, TunnelCsum, TunnelType,
                              addr_text, af_of, protocol_name)
from ipvsadm_py.rules import Code

MAX_LADDR_RANGE = 1024          # addresses per local_address entry (keepalived's limit)
VSG_MAX_RANGE = 256             # addresses per virtual_server_group range

# keepalived's words for the forwarding methods, both ways.
METHODS = {"NAT": Forward.MASQ, "DR": Forward.ROUTE, "TUN": Forward.TUNNEL,
           "FNAT": Forward.FULLNAT, "FULLNAT": Forward.FULLNAT}
METHOD_WORDS = {Forward.MASQ: "NAT", Forward.LOCAL: "NAT", Forward.ROUTE: "DR",
                Forward.TUNNEL: "TUN", Forward.FULLNAT: "FNAT"}     # (for writing)
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

# First words that mark a keepalived file (format detection).
ROOT_WORDS = re.compile(r"^\s*(virtual_server|virtual_server_group|local_address_group|"
                        r"global_defs|vrrp_\w+|static_\w+|include|linkbeat_use_polling|"
                        r"net_namespace)\b", re.MULTILINE)


# ---------------------------------------------------------------- words and blocks
@dataclasses.dataclass
class Node:
    """A keyword with its words, its line, and its block (None: no block)."""

    word: str
    args: list[str]
    line: int
    block: list[Node] | None = None


class _Syntax(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def tokens(text: str) -> Iterator[tuple[str, int]]:
    """Words and their lines, as keepalived splits them: blanks separate,
    ``{`` and ``}`` are words of their own, ``#`` or ``!`` ends the line,
    a double-quoted string is one word (its quotes removed)."""
    for number, line in enumerate(text.splitlines(), 1):
        for match in re.finditer(r'"([^"]*)"?|[{}]|[#!].*|[^\s{}"#!]+', line):
            word = match.group(0)
            if word[0] in "#!":
                break
            yield (match.group(1) if word[0] == '"' else word), number


def parse_blocks(text: str) -> list[Node]:
    """The keyword tree of a keepalived text; _Syntax on unbalanced braces."""
    stream = list(tokens(text))
    nodes, pos = _block(stream, 0, None)
    return nodes


def _block(stream: list[tuple[str, int]], pos: int, opened: int | None
           ) -> tuple[list[Node], int]:
    """The statements from ``pos`` to the ``}`` closing the block opened on
    line ``opened`` (None: to the end of the text)."""
    nodes: list[Node] = []
    while pos < len(stream):
        word, line = stream[pos]
        if word == "}":
            if opened is None:
                raise _Syntax(line, "'}' without a block to close")
            return nodes, pos + 1
        if word == "{":
            raise _Syntax(line, "'{' without a keyword before it")
        node = Node(word, [], line)
        pos += 1
        while pos < len(stream) and stream[pos][1] == line and stream[pos][0] not in "{}":
            node.args.append(stream[pos][0])
            pos += 1
        if pos < len(stream) and stream[pos][0] == "{" and stream[pos][1] in (line, line + 1):
            node.block, pos = _block(stream, pos + 1, stream[pos][1])
        nodes.append(node)
    if opened is not None:
        raise _Syntax(opened, "the block opened here is not closed (missing '}')")
    return nodes, pos


# ---------------------------------------------------------------- problems
class _Reader:
    """Collects problems, each naming the file and line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, line: int, message: str) -> None:
        self.problems.append(f"{self.source}:{line}: {message}")


def _address(text: str) -> IPAddress | None:
    """A numeric IPv4 or IPv6 address (keepalived takes no names here)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return IPAddress(int.from_bytes(socket.inet_pton(family, text), "big"),
                             6 if family == socket.AF_INET6 else 4)
        except OSError:
            continue
    return None


def _number(text: str, limit: str) -> int | None:
    """A decimal number within ``rules.LIMITS[limit]``, else None."""
    if not text.isdigit():
        return None
    value = int(text)
    return value if rules.in_range(limit, value) else None


def _words(nodes: list[Node] | None) -> list[tuple[str, int]]:
    """Every word of a value block (``{ a b \\n c }``) with its line."""
    return [(w, n.line) for n in nodes or [] for w in [n.word, *n.args]]


# ---------------------------------------------------------------- local addresses
def _laddr_refusal(addr: IPAddress) -> str | None:
    """Why the kernel would not take this local address (None: it would)."""
    value = int(addr)
    if addr.version == 4:
        checks = [(value >> 24 == 0, "in 0.0.0.0/8"), (value >> 24 == 127, "a loopback address"),
                  (value >> 28 == 0xE, "a multicast address"),
                  (value == 0xFFFFFFFF, "the broadcast address")]
    else:
        checks = [(value == 0, "the unspecified address"), (value == 1, "a loopback address"),
                  (value >> 120 == 0xFF, "a multicast address"),
                  (value >> 32 == 0xFFFF, "an IPv4-mapped address")]
    return next((why for bad, why in checks if bad), None)


def _range_end(text: str, start: IPAddress) -> IPAddress:
    """The end of ``start-text``: an address, or the last octet (IPv4,
    decimal) or 16-bit group (IPv6, hex)."""
    if "." in text or ":" in text:
        end = _address(text)
        if end is None:
            raise ValueError("the range end is not an address")
        if end.version != start.version:
            raise ValueError("the range ends in the other address family")
        if end.version == 6 and int(end) >> 32 != int(start) >> 32:
            raise ValueError("an IPv6 range may vary the last 32 bits only")
        return end
    bits, base = (8, 10) if start.version == 4 else (16, 16)
    try:
        last = int(text, base)
    except ValueError:
        last = -1
    if not text.isalnum() or not 0 <= last < (1 << bits):
        raise ValueError("the range end is not a number of the last octet (IPv4) or group "
                         "(IPv6, hex)")
    return IPAddress((int(start) >> bits << bits) | last, start.version)


def laddr_entry(word: str) -> list[IPAddress]:
    """The addresses of one local_address entry (``a``, ``a-e``, ``a-b``);
    ValueError says why it is refused."""
    if "/" in word:
        raise ValueError("a prefix is not a local address (write a range a.b.c.d-e)")
    first, dash, last = word.partition("-")
    start = _address(first)
    if start is None:
        raise ValueError("not an IPv4 or IPv6 address")
    end = _range_end(last, start) if dash else start
    if int(end) < int(start):
        raise ValueError("the range ends before it starts")
    if int(end) - int(start) >= MAX_LADDR_RANGE:
        raise ValueError(f"the range is longer than {MAX_LADDR_RANGE} addresses")
    addrs = [IPAddress(v, start.version) for v in range(int(start), int(end) + 1)]
    why = next((w for w in map(_laddr_refusal, addrs) if w), None)
    if why:
        raise ValueError(why)
    return addrs


def _laddr_block(r: _Reader, nodes: list[Node] | None, owner: str) -> tuple[list[IPAddress], bool]:
    """The addresses of a local_address block; a device name after an
    address (DPVS) is accepted and not used.  Second value: no error."""
    out: list[IPAddress] = []
    seen: set[IPAddress] = set()
    ok, after_addr = True, False
    for word, line in _words(nodes):
        if after_addr and word[0].isalpha() and ":" not in word and "/" not in word \
                and len(word) < 16:
            after_addr = False
            continue
        try:
            new = [a for a in laddr_entry(word) if a not in seen]
            seen.update(new)
            out += new
            after_addr = True
        except ValueError as exc:
            r.fail(line, f"{owner}: invalid local address '{word}': {exc}")
            ok, after_addr = False, False
    return out, ok


# ---------------------------------------------------------------- real servers
@dataclasses.dataclass
class _Method:
    """A forwarding method with its tunnel options (keepalived's lvs_method)."""

    forward: Forward = Forward.MASQ
    tun_type: TunnelType = TunnelType.IPIP
    tun_port: int = 0
    tun_csum: TunnelCsum = TunnelCsum.NOCSUM
    options: bool = False
    line: int = 0


def _method(r: _Reader, node: Node) -> _Method | None:
    """``NAT``, ``DR``, ``FNAT``, ``TUN [type ipip|gue|gre] [port N]
    [nocsum|csum|remcsum]``; the tunnel rules are the YAML path's."""
    if not node.args or node.args[0] not in METHODS:
        word = node.args[0] if node.args else ""
        r.fail(node.line, f"{node.word}: unknown [{word}] routing method (NAT, DR, TUN, FNAT)")
        return None
    m = _Method(METHODS[node.args[0]], line=node.line)
    words, csums, port_given = node.args[1:], [], False
    while words:
        word = words.pop(0)
        m.options = True
        if word in ("type", "port") and not words:
            r.fail(node.line, f"{node.word}: {word} needs a value")
            return None
        if word == "type":
            value = words.pop(0)
            if value not in ("ipip", "gue", "gre"):
                r.fail(node.line, f"{node.word}: unknown tunnel type {value}")
                return None
            m.tun_type = TunnelType(value)
        elif word == "port":
            value = words.pop(0)
            port = _number(value, "tun_port")
            if port is None:
                r.fail(node.line, f"{node.word}: invalid gue tunnel port {value}")
                return None
            m.tun_port, port_given = port, True
        elif word in ("nocsum", "csum", "remcsum"):
            csums.append(TunnelCsum(word))
        else:
            r.fail(node.line, f"{node.word}: invalid tunnel option {word}")
            return None
    faults = rules.tunnel_faults(m.tun_type, port_given, csums)
    if faults:
        r.fail(node.line, f"{node.word}: {_tunnel_fault_text(m.tun_type, faults[0])}")
        return None
    if csums:
        m.tun_csum = csums[0]
    return m


def _tunnel_fault_text(tun_type: TunnelType, fault: rules.Fault) -> str:
    if fault.code == Code.TUN_PORT_MISSING:
        return "gue tunnels require a port"
    if fault.code == Code.TUN_PORT_ILLEGAL:
        return f"{tun_type.value} tunnels cannot have a port"
    if fault.code == Code.TUN_CSUM_CONFLICT:
        return f"{fault.word} and {fault.other} are exclusive"
    return f"{tun_type.value} tunnels do not support the {fault.word} option"


@dataclasses.dataclass
class _RealServer:
    dest: Dest
    method: _Method | None          # None: the virtual server's
    port_given: bool
    weight_given: bool
    line: int


def _real_server(r: _Reader, node: Node, vs_name: str) -> _RealServer | None:
    addr = _address(node.args[0]) if node.args else None
    if addr is None or len(node.args) > 2:
        r.fail(node.line, f"{vs_name}: invalid real server ip address/port "
               f"{' '.join(node.args)}")
        return None
    dest = Dest(addr=addr, af=af_of(addr.version))
    port = _number(node.args[1], "port") if len(node.args) == 2 else 0
    if port is None:
        r.fail(node.line, f"{vs_name}: invalid real server port {node.args[1]}")
        return None
    dest.port = port
    rs = _RealServer(dest, None, bool(port), False, node.line)
    for item in node.block or []:
        _rs_keyword(r, item, rs, vs_name)
    return rs


def _rs_keyword(r: _Reader, node: Node, rs: _RealServer, vs_name: str) -> None:
    fields = {"weight": "weight", "uthreshold": "u_threshold", "lthreshold": "l_threshold"}
    if node.word in fields:
        value = _number(node.args[0], fields[node.word]) if len(node.args) == 1 else None
        if value is None:
            low, high = rules.LIMITS[fields[node.word]]
            r.fail(node.line, f"{vs_name}: real server {rs.dest.describe()}: {node.word} "
                   f"must be a number {low}-{high}")
            return
        setattr(rs.dest, fields[node.word], value)
        rs.weight_given |= node.word == "weight"
    elif node.word == "lvs_method":
        rs.method = _method(r, node) or rs.method
    elif node.word not in RS_IGNORED:
        r.fail(node.line, f"{vs_name}: real server {rs.dest.describe()}: unknown keyword "
               f"'{node.word}'")


# ---------------------------------------------------------------- virtual servers
@dataclasses.dataclass
class _VirtualServer:
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
    method: _Method | None = None
    weight: int = 1
    syn_proxy: tuple[bool, int] | None = None
    laddrs: list[IPAddress] = dataclasses.field(default_factory=list)
    laddr_line: int = 0
    group: tuple[str, int] | None = None
    servers: list[_RealServer] = dataclasses.field(default_factory=list)


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
    return _service_name(svc)


def _targets(r: _Reader, node: Node, groups: dict[str, Node]) -> list[Service] | None:
    """The IPVS services a virtual_server line names (a group: several)."""
    args = node.args
    if len(args) == 2 and args[0] == "fwmark":
        mark = _number(args[1], "fwmark")
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
    addr = _address(args[0]) if args else None
    port = _number(args[1], "port") if len(args) == 2 else 0 if len(args) == 1 else None
    if addr is None or port is None:
        r.fail(node.line, f"virtual_server: invalid virtual server ip address/port "
               f"{' '.join(args)}")
        return None
    return [Service(addr=addr, af=af_of(addr.version), port=port)]


def _group_targets(r: _Reader, group: Node) -> list[Service] | None:
    """``IP PORT``, ``IP-LAST PORT`` and ``fwmark N [inet|inet6]`` entries."""
    out: list[Service] = []
    for entry in group.block or []:
        words = [entry.word, *entry.args]
        if words[0] == "fwmark":
            mark = _number(words[1], "fwmark") if len(words) in (2, 3) else None
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


def _group_range(r: _Reader, group: Node, entry: Node, words: list[str]
                 ) -> list[Service] | None:
    where = f"virtual_server_group {group.args[0]}"
    if "/" in words[0]:
        r.fail(entry.line, f"{where}: a prefix entry ({words[0]}) is not supported here; "
               "write a range a.b.c.d-e")
        return None
    first, dash, last = words[0].partition("-")
    start = _address(first)
    port = _number(words[1], "port") if len(words) == 2 else 0 if len(words) == 1 else None
    try:
        if start is None or port is None:
            raise ValueError("not an address and port")
        end = _range_end(last, start) if dash else start
        if not 0 <= int(end) - int(start) < VSG_MAX_RANGE:
            raise ValueError("the range is empty or too long")
    except ValueError as exc:
        r.fail(entry.line, f"{where}: invalid entry {' '.join(words)}: {exc}")
        return None
    return [Service(addr=IPAddress(v, start.version), af=af_of(start.version), port=port)
            for v in range(int(start), int(end) + 1)]


def _vs_keyword(r: _Reader, node: Node, vs: _VirtualServer) -> None:
    """One keyword of a virtual_server block."""
    word, args = node.word, node.args
    one = args[0] if len(args) == 1 else None
    if word in ("lb_algo", "lvs_sched") and one:
        vs.scheduler = one
    elif word in ("lb_kind", "lvs_method"):
        vs.method = _method(r, node) or vs.method
    elif word == "protocol" and one and one.upper() in Protocol.__members__:
        vs.protocol = Protocol[one.upper()]
    elif word == "persistence_timeout" and len(args) <= 1:
        vs.persistence = _number(one, "persistent") if one else DEFAULT_PERSISTENCE
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
    elif word == "weight" and one and _number(one, "weight") is not None:
        vs.weight = int(one)
    elif word == "syn_proxy" and (not args or (one or "").lower() in TRUE_WORDS + FALSE_WORDS):
        vs.syn_proxy = (not args or one.lower() in TRUE_WORDS, node.line)
    elif word == "local_address" and not args:
        found, _ok = _laddr_block(r, node.block, "local_address")
        vs.laddrs = list(dict.fromkeys(vs.laddrs + found))     # once each, in order
        vs.laddr_line = vs.laddr_line or node.line
    elif word == "laddr_group_name" and one:
        if vs.group is not None:
            r.fail(node.line, f"laddr_group_name given twice ({vs.group[0]}, {one})")
        vs.group = (one, node.line)
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
                          *SCHED_FLAG_WORDS))


def _virtual_server(r: _Reader, node: Node, vsgs: dict[str, Node],
                    lgroups: dict[str, list[IPAddress] | None]) -> list[ServiceSpec]:
    """The services of one virtual_server block (several for a group)."""
    targets = _targets(r, node, vsgs)
    if targets is None:
        return []
    vs = _VirtualServer(node.line, _vs_name(node, targets), targets)
    if node.block is None:
        r.fail(node.line, f"{vs.name}: needs a block {{ ... }}")
    for item in node.block or []:
        _vs_keyword(r, item, vs)
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
            if (spec := _service(r, vs, svc, laddrs)) is not None]


def _service(r: _Reader, vs: _VirtualServer, svc: Service, laddrs: list[IPAddress]
             ) -> ServiceSpec | None:
    """One IPVS service of a virtual server, checked."""
    before = len(r.problems)
    if not svc.fwmark:
        svc.protocol = vs.protocol if vs.protocol is not None else Protocol.UDP
    elif vs.family is not None:
        svc.af = vs.family
    elif vs.servers and len({rs.dest.af for rs in vs.servers}) == 1:
        svc.af = vs.servers[0].dest.af
    name = _service_name(svc)
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
    if len(r.problems) > before:
        return None
    return ServiceSpec(svc, dests, laddrs, vs.line)


def _service_name(svc: Service) -> str:
    """keepalived's ``[10.0.0.1]:tcp:80`` (``FWM 7`` for a mark)."""
    if svc.fwmark:
        return f"virtual server FWM {svc.fwmark}"
    return f"virtual server [{addr_text(svc.addr)}]:{protocol_name(svc.protocol)}:{svc.port}"


def _granularity(r: _Reader, value: tuple[str, int], svc: Service, name: str) -> None:
    text, line = value
    if svc.af == AF_INET6:
        prefix = _number(text, "ipv6_prefix")
        if prefix is None:
            r.fail(line, f"{name}: invalid IPv6 persistence_granularity specified - {text}")
            return
        svc.netmask = prefix
    else:
        mask = _address(text)
        if mask is None or mask.version != 4:
            r.fail(line, f"{name}: invalid IPv4 persistence_granularity specified - {text}")
            return
        svc.netmask = int(mask)
    if not svc.persistent:
        svc.persistent, svc.timeout = True, DEFAULT_PERSISTENCE


def _sched_flags(r: _Reader, vs: _VirtualServer, svc: Service, name: str) -> None:
    words = [(w, line) for w, line in vs.flags if w != "ops"]
    flags, fault = rules.sched_flags(svc.scheduler, [w for w, _ in words])
    if fault is None:
        svc.sched_flags = flags
        return
    line = next(line for w, line in words if w == fault.word)
    r.fail(line, f"{name}: {fault.word} only applies to the {fault.other or '?'} scheduler, "
           f"not {svc.scheduler}")


def _service_faults(r: _Reader, vs: _VirtualServer, svc: Service, name: str) -> None:
    ops_line = next((line for w, line in vs.flags if w == "ops"), vs.line)
    for fault in rules.service_faults(svc):
        if fault.code == Code.ONEPACKET_NOT_UDP:
            r.fail(ops_line, f"{name}: one packet scheduling requires UDP")
        elif fault.code == Code.SYNPROXY_NOT_TCP:
            r.fail(vs.syn_proxy[1] if vs.syn_proxy else vs.line,
                   f"{name}: syn_proxy is for TCP services")
        elif fault.code == Code.ZERO_PORT:
            r.fail(vs.line, f"{name}: zero port only valid for persistent services")


def _dests(r: _Reader, vs: _VirtualServer, svc: Service, name: str) -> list[Dest]:
    """The real servers of one service: the method defaults to the virtual
    server's (NAT if none), the port to the service's."""
    out: list[Dest] = []
    seen: dict[tuple, int] = {}
    for rs in vs.servers:
        method = rs.method or vs.method or _Method()
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


def _laddr_faults(r: _Reader, vs: _VirtualServer, svc: Service, name: str,
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
def _local_groups(r: _Reader, nodes: list[Node]) -> dict[str, list[IPAddress] | None]:
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
        addrs, ok = _laddr_block(r, node.block, f"local_address_group {name}")
        if ok and not addrs:
            r.fail(node.line, f"local_address_group {name} has no addresses")
        groups[name] = addrs if ok and addrs else None
    return groups


def _server_groups(r: _Reader, nodes: list[Node]) -> dict[str, Node]:
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
    r = _Reader(source)
    try:
        nodes = parse_blocks(text)
    except _Syntax as exc:
        raise ConfigError([f"{source}:{exc.line}: {exc}"]) from None
    lgroups = _local_groups(r, nodes)
    vsgs = _server_groups(r, nodes)
    desired = Desired()
    seen: dict[tuple, int] = {}
    for node in nodes:
        if node.word != "virtual_server":
            continue
        for spec in _virtual_server(r, node, vsgs, lgroups):
            if spec.service.key in seen:
                r.fail(node.line, f"{_service_name(spec.service)} is also defined at line "
                       f"{seen[spec.service.key]}")
            seen[spec.service.key] = spec.line
            desired.services.append(spec)
    if r.problems:
        raise ConfigError(r.problems)
    return desired


def load(path: str) -> Desired:
    with open(path, encoding="utf-8") as handle:
        return validate(handle.read(), path)


def looks_like(text: str) -> bool:
    """Whether a text is a keepalived configuration (a root keyword of
    keepalived starts one of its lines)."""
    return ROOT_WORDS.search(text) is not None
