"""The ipvsadm command line: options, their popt-style parsing, and checks.

This module turns argv into a :class:`Entry` (what to do, with which
objects) and raises :class:`UsageError` with ipvsadm's exit status for bad
input.  It knows ipvsadm 1.31's dialect (the command comes first; short
options may be bundled: ``-Ln``; ``--opt=value``; ``-p`` takes an optional
value) and the extensions (FULLNAT ``-b``/``--fullnat`` on real servers,
``-P``/``-Q``/``-G`` with ``-z``, ``-j``/``--synproxy``, ``--json``,
``--ext-stats``).  It never talks to the kernel.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import socket
from collections.abc import Sequence

from ipvsadm_py import model, wire
from ipvsadm_py.fmt import Format
from ipvsadm_py.model import Daemon, Dest, LocalAddress, Service, Timeouts

EXIT_FAIL = 2        # ipvsadm's fail(): bad input
EXIT_TRYHELP = 255   # popt errors, no command, kernel refusal (-1)

# ------------------------------------------------------------------ commands
COMMANDS = {  # key: (name in messages, short, long)
    "add": ("add-service", "A", "add-service"),
    "edit": ("edit-service", "E", "edit-service"),
    "del": ("delete-service", "D", "delete-service"),
    "flush": ("flush", "C", "clear"),
    "list": ("list", "L", "list"),
    "adddest": ("add-server", "a", "add-server"),
    "deldest": ("delete-server", "d", "delete-server"),
    "editdest": ("edit-server", "e", "edit-server"),
    "timeout": ("set", None, "set"),
    "startd": ("start-daemon", None, "start-daemon"),
    "stopd": ("stop-daemon", None, "stop-daemon"),
    "restore": ("restore", "R", "restore"),
    "save": ("save", "S", "save"),
    "zero": ("zero", "Z", "zero"),
    "addladdr": ("add-laddr", "P", "add-laddr"),
    "delladdr": ("del-laddr", "Q", "del-laddr"),
    "getladdr": ("get-laddr", "G", "get-laddr"),
    "help": ("help", "h", "help"),
    "version": ("version", "v", "version"),
}
COMMAND_ARG = {"startd", "stopd"}

# ------------------------------------------------------------------ options
# Option names as ipvsadm prints them, in its table order, then ours.
OPTNAMES = [
    "numeric", "connection", "service-address", "scheduler", "persistent", "netmask",
    "real-server", "forwarding-method", "weight", "u-threshold", "l-threshold",
    "mcast-interface", "timeout", "daemon", "stats", "rate", "thresholds",
    "persistent-conn", "nosort", "syncid", "exact", "ops", "pe", "sched-flags",
    "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen", "tun-info", "tun-type",
    "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum",
    "laddr", "synproxy", "json", "ext-stats",
]

# Which options each command takes: '+' required, 'x' illegal, '1' at most
# one of the '1's, ' ' optional (ipvsadm's commands_v_options, extended).
_T = {
    #           -n -c svc -s -p -M -r fwd -w -x -y mc to dm st rt th pc ns si ex op pe -b gr po tt ml ti ty tp nc cs rc | z  j  js es
    "add":      "x  x  +  _  _  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  _  _  x  x  x  x  x  x  x  x  x  x  x  _  x  x",
    "edit":     "x  x  +  _  _  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  _  _  x  x  x  x  x  x  x  x  x  x  x  _  x  x",
    "del":      "x  x  +  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "flush":    "x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "list":     "_  1  1  x  x  x  x  x  x  x  x  x  1  1  _  _  _  _  _  _  _  x  x  x  x  x  x  x  _  x  x  x  x  x  x  x  _  1",
    "adddest":  "x  x  +  x  x  x  +  _  _  _  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  _  _  _  _  x  x  x  x",
    "deldest":  "x  x  +  x  x  x  +  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "editdest": "x  x  +  x  x  x  +  _  _  _  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  _  _  _  _  x  x  x  x",
    "timeout":  "x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "startd":   "x  x  x  x  x  x  x  x  x  x  x  _  x  x  x  x  x  x  x  _  x  x  x  x  _  _  _  _  x  x  x  x  x  x  x  x  x  x",
    "stopd":    "x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "restore":  "x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "save":     "_  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "zero":     "x  x  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "addladdr": "x  x  +  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  +  x  x  x",
    "delladdr": "x  x  +  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  +  x  x  x",
    "getladdr": "_  x  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  x",
}
TABLE = {cmd: [c if c != "_" else " " for c in row.split()] for cmd, row in _T.items()}
assert all(len(row) == len(OPTNAMES) for row in TABLE.values())
TUNNEL_OPTS = ["tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"]
_TUNNEL_NAMES = frozenset(["tun-type", *TUNNEL_OPTS])
TUNNEL_TABLE = {  # per tunnel type, as TUNNEL_OPTS
    wire.TUN_TYPE_IPIP: "xxxx", wire.TUN_TYPE_GUE: "+111", wire.TUN_TYPE_GRE: "x11x"}


def _rule_sets(names: list[str], rules) -> tuple[frozenset[str], ...]:
    """A row of rules as sets of names: (required, illegal, at most one of)."""
    return tuple(frozenset(n for n, r in zip(names, rules) if r == rule) for rule in "+x1")


_TABLE_SETS = {cmd: _rule_sets(OPTNAMES, row) for cmd, row in TABLE.items()}
_TUNNEL_SETS = {tun: _rule_sets(TUNNEL_OPTS, row) for tun, row in TUNNEL_TABLE.items()}


@dataclasses.dataclass(frozen=True)
class Opt:
    """One option of the command line: its key, spellings and argument."""

    key: str
    short: str | None
    long: str | None
    arg: str = "none"          # none | required | optional
    help: str = ""
    metavar: str = ""


OPTIONS: list[Opt] = [
    Opt("t", "t", "tcp-service", "required", "TCP virtual service host[:port]", "service-address"),
    Opt("u", "u", "udp-service", "required", "UDP virtual service host[:port]", "service-address"),
    Opt("sctp", None, "sctp-service", "required", "SCTP virtual service host[:port]",
        "service-address"),
    Opt("f", "f", "fwmark-service", "required", "firewall-mark service (integer > 0)", "fwmark"),
    Opt("s", "s", "scheduler", "required", "scheduler (default wlc)", "scheduler"),
    Opt("p", "p", "persistent", "optional", "persistent service, timeout in s (default 360)",
        "timeout"),
    Opt("M", "M", "netmask", "required", "persistence granularity mask (IPv6: prefix length)",
        "netmask"),
    Opt("r", "r", "real-server", "required", "real server host[:port]", "server-address"),
    Opt("m", "m", "masquerading", help="forwarding method masquerading (NAT)"),
    Opt("i", "i", "ipip", help="forwarding method tunneling (ipip/gue/gre)"),
    Opt("g", "g", "gatewaying", help="forwarding method direct routing (default)"),
    Opt("fullnat", None, "fullnat", help="forwarding method FULLNAT (same as -b on -a/-e)"),
    Opt("w", "w", "weight", "required", "weight of the real server", "weight"),
    Opt("x", "x", "u-threshold", "required", "upper connection threshold", "uthreshold"),
    Opt("y", "y", "l-threshold", "required", "lower connection threshold", "lthreshold"),
    Opt("n", "n", "numeric", help="numeric addresses and ports"),
    Opt("c", "c", "connection", help="list the connection table"),
    Opt("mcast-interface", None, "mcast-interface", "required",
        "multicast interface of the sync daemon (default eth0)", "interface"),
    Opt("syncid", None, "syncid", "required", "sync daemon id (0-255)", "sid"),
    Opt("timeout", None, "timeout", help="list the timeouts (tcp tcpfin udp)"),
    Opt("daemon", None, "daemon", help="list the sync daemons"),
    Opt("stats", None, "stats", help="list with counters"),
    Opt("rate", None, "rate", help="list with rates"),
    Opt("thresholds", None, "thresholds", help="list with thresholds"),
    Opt("persistent-conn", None, "persistent-conn", help="list with persistent connections"),
    Opt("nosort", None, "nosort", help="do not sort the listing"),
    Opt("sort", None, "sort", help="sort the listing (the default; accepted for compatibility)"),
    Opt("X", "X", "exact", help="exact numbers in --stats/--rate"),
    Opt("6", "6", "ipv6", help="the fwmark service is IPv6 (after -f)"),
    Opt("o", "o", "ops", help="one-packet scheduling (UDP)"),
    Opt("pe", None, "pe", "required", "persistence engine (sip)", "engine"),
    Opt("b", "b", "sched-flags", "required",
        "scheduler flags on -A/-E (flag-1..3, sh-fallback, sh-port, mh-fallback, mh-port); "
        "on -a/-e: FULLNAT forwarding", "flags"),
    Opt("mcast-group", None, "mcast-group", "required", "multicast group of the sync daemon",
        "address"),
    Opt("mcast-port", None, "mcast-port", "required", "UDP port of the sync daemon", "port"),
    Opt("mcast-ttl", None, "mcast-ttl", "required", "multicast TTL of the sync daemon", "ttl"),
    Opt("sync-maxlen", None, "sync-maxlen", "required", "maximum sync message length",
        "length"),
    Opt("tun-info", None, "tun-info", help="list with tunnel information"),
    Opt("tun-type", None, "tun-type", "required", "tunnel type: ipip (default), gue, gre",
        "type"),
    Opt("tun-port", None, "tun-port", "required", "tunnel destination port (gue)", "port"),
    Opt("tun-nocsum", None, "tun-nocsum", help="tunnel without checksum"),
    Opt("tun-csum", None, "tun-csum", help="tunnel with checksum"),
    Opt("tun-remcsum", None, "tun-remcsum", help="tunnel with remote checksum (gue)"),
    Opt("z", "z", "laddr", "required", "FULLNAT local address (with -P/-Q)", "address"),
    Opt("j", "j", "synproxy", "required", "SYNPROXY of the service: enable or disable",
        "enable|disable"),
    Opt("json", None, "json", help="machine-readable listing (JSON)"),
    Opt("ext-stats", None, "ext-stats", help="list the FULLNAT/SYNPROXY counters"),
]
BY_SHORT = {o.short: o for o in OPTIONS if o.short}
BY_LONG = {o.long: o for o in OPTIONS if o.long}
CMD_SHORT = {short: key for key, (_, short, _) in COMMANDS.items() if short}
CMD_SHORT["l"] = "list"
CMD_LONG = {long: key for key, (_, _, long) in COMMANDS.items()}


class UsageError(Exception):
    """Bad command line: the message, and the exit status ipvsadm uses."""

    def __init__(self, message: str, code: int = EXIT_FAIL, tryhelp: bool = False,
                 soft: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.tryhelp = tryhelp
        # soft: an option error after the command; ipvsadm reports it and,
        # in -R input, goes on with the next line (the others stop -R).
        self.soft = soft


@dataclasses.dataclass
class Entry:
    """One parsed command line (or one line of ``-R`` input)."""

    cmd: str = ""
    cmd_arg: str | None = None
    svc: Service = dataclasses.field(default_factory=lambda: Service(protocol=0, af=0))
    dest: Dest = dataclasses.field(default_factory=Dest)
    laddr: LocalAddress | None = None
    timeouts: Timeouts | None = None
    daemon: Daemon = dataclasses.field(default_factory=lambda: Daemon(mcast_ifn=""))
    options: set[str] = dataclasses.field(default_factory=set)
    fmt: Format = dataclasses.field(default_factory=Format)
    json: bool = False
    synproxy: bool | None = None
    sched_flags_arg: str = ""
    svc_text: str = ""

    @property
    def cmd_name(self) -> str:
        return COMMANDS[self.cmd][0]


# ------------------------------------------------------------------ tokens
FULLNAT_B = Opt("fullnat", "b", None, help="forwarding method FULLNAT")


def tokens(argv: Sequence[str], fullnat_b: bool = False) -> list[tuple[str, str, str | None]]:
    """argv as (kind, name, value): kind ``cmd``/``opt``/``arg``/``bad``/``noarg``.

    popt's rules: ``--long[=value]``; ``-abc`` bundles short options, an
    option that takes a value takes the rest of the bundle or the next word;
    an optional value is taken only if the next word does not start with
    ``-``; ``--`` ends the options; other words are arguments.  With
    ``fullnat_b`` (real-server commands), ``-b`` is FULLNAT, without a value.
    """
    shorts = dict(BY_SHORT, b=FULLNAT_B) if fullnat_b else BY_SHORT
    single = _SINGLE_FULLNAT if fullnat_b else _SINGLE
    out: list[tuple[str, str, str | None]] = []
    i, n = 0, len(argv)
    while i < n:
        word = argv[i]
        i += 1
        one = single.get(word)
        if one is not None:     # "-t", "-m": the bundle rules below, made once
            kind, key, arg = one
            if arg == "none":
                out.append((kind, key, None))
            elif arg == "optional" and (i >= n or argv[i].startswith("-")):
                out.append(("opt", key, None))
            elif i < n:
                out.append(("opt", key, argv[i]))
                i += 1
            else:
                out.append(("noarg", word, None))
            continue
        if word == "--":
            out += [("arg", w, None) for w in argv[i:]]
            break
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if name in CMD_LONG:
                key = CMD_LONG[name]
                if key in COMMAND_ARG and not eq:
                    if i >= n:
                        out.append(("noarg", word, None))
                        continue
                    value, i = argv[i], i + 1
                out.append(("cmd", key, value if (eq or key in COMMAND_ARG) else None))
                continue
            opt = BY_LONG.get(name)
            if opt is None:
                out.append(("bad", word, None))
                continue
            if opt.arg == "none":
                out.append(("opt", opt.key, None) if not eq else ("bad", word, None))
            elif eq:
                out.append(("opt", opt.key, value))
            elif opt.arg == "optional":
                if i < n and not argv[i].startswith("-"):
                    value, i = argv[i], i + 1
                    out.append(("opt", opt.key, value))
                else:
                    out.append(("opt", opt.key, None))
            elif i < n:
                out.append(("opt", opt.key, argv[i]))
                i += 1
            else:
                out.append(("noarg", word, None))
            continue
        if word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                ch = word[j]
                j += 1
                if ch in CMD_SHORT:
                    out.append(("cmd", CMD_SHORT[ch], None))
                    continue
                opt = shorts.get(ch)
                if opt is None:
                    out.append(("bad", f"-{ch}", None))
                    break
                if opt.arg == "none":
                    out.append(("opt", opt.key, None))
                    continue
                rest = word[j:]
                if rest:
                    out.append(("opt", opt.key, rest))
                elif opt.arg == "optional":
                    if i < n and not argv[i].startswith("-"):
                        out.append(("opt", opt.key, argv[i]))
                        i += 1
                    else:
                        out.append(("opt", opt.key, None))
                elif i < n:
                    out.append(("opt", opt.key, argv[i]))
                    i += 1
                else:
                    out.append(("noarg", f"-{ch}", None))
                break
            continue
        out.append(("arg", word, None))
    return out


def _singles(shorts: dict[str, Opt]) -> dict[str, tuple[str, str, str]]:
    """Words of one short option ("-t") -> (kind, key, how it takes a value)."""
    out = {f"-{ch}": ("opt", opt.key, opt.arg) for ch, opt in shorts.items()}
    out.update({f"-{ch}": ("cmd", key, "none") for ch, key in CMD_SHORT.items()})
    return out


_SINGLE = _singles(BY_SHORT)
_SINGLE_FULLNAT = _singles(dict(BY_SHORT, b=FULLNAT_B))


# ------------------------------------------------------------------ values
_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def number(text: str | None, low: int, high: int) -> int | None:
    """C's ``string_to_number``: a whole decimal in [low, high], else None."""
    if text is None:
        return None
    match = _NUMBER.fullmatch(text)
    if not match:
        return None
    value = int(match.group(1))
    if value < -(1 << 63) or value >= 1 << 63:
        return None
    return value if low <= value <= high else None


def _port(text: str, protocol: int) -> int | None:
    value = number(text, 0, 65535)
    if value is not None:
        return value
    proto = model.PROTOCOL_NAMES.get(protocol)
    if proto:
        try:
            return socket.getservbyname(text, proto)
        except OSError:
            return None
    return None


@functools.lru_cache(maxsize=4096)
def parse_hostport(text: str, protocol: int) -> tuple[bytes, int | None] | None:
    """ipvsadm's ``parse_service``: ``[v6]:port``, ``v6``, ``v4[:port]``,
    ``host[:port]`` (IPv4 names); ports by number or service name.  The
    address comes packed (4 or 16 bytes); None on error; the port is None
    if absent.  Remembered for the life of the process (a restore file
    names the same virtual service on each of its real servers' lines), host
    and service names included: unlike C ipvsadm, a restore looks each name
    up once."""
    if not text or text.isdigit():
        return None
    port_text = None
    host = text
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return None
        host, port_text = inner, rest[1:]
        try:
            addr = socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            return None
    else:
        try:
            return socket.inet_pton(socket.AF_INET6, text), None
        except OSError:
            pass
        if ":" in text:
            host, _, port_text = text.rpartition(":")
        addr = _ipv4(host)
        if addr is None:
            return None
    if port_text is None:
        return addr, None
    port = _port(port_text, protocol)
    return None if port is None else (addr, port)


def _ipv4(host: str) -> bytes | None:
    """4 packed bytes of an IPv4 address (inet_aton's forms) or host name."""
    try:
        return socket.inet_aton(host)
    except OSError:
        pass
    try:
        return socket.inet_aton(socket.gethostbyname(host))
    except (OSError, UnicodeError):
        return None


# ------------------------------------------------------------------ parsing
def _set_option(e: Entry, name: str) -> None:
    if name in e.options:
        raise UsageError(f"multiple '{name}' options specified")
    e.options.add(name)


def _service(e: Entry, key: str, value: str) -> None:
    _set_option(e, "service-address")
    e.svc_text = value
    if key == "f":
        mark = number(value, 1, 0xFFFFFFFF)
        if mark is None or not value.strip().lstrip("+").isdigit():
            raise UsageError(f"invalid fwmark value `{value}' specified")
        e.svc.af, e.svc.protocol, e.svc.fwmark = model.AF_INET, wire.IPPROTO_TCP, mark
        return
    e.svc.protocol = {"t": wire.IPPROTO_TCP, "u": wire.IPPROTO_UDP,
                      "sctp": wire.IPPROTO_SCTP}[key]
    parsed = parse_hostport(value, e.svc.protocol)
    if parsed is None:
        raise UsageError(f"illegal virtual server address[:port] specified: {value!r}")
    addr, port = parsed
    e.svc.addr, e.svc.af = addr, model.af_of_packed(addr)
    if e.svc.af == model.AF_INET6:
        e.svc.netmask = 128
    if port is not None:
        e.svc.port = port


def _real_server(e: Entry, value: str) -> None:
    _set_option(e, "real-server")
    parsed = parse_hostport(value, e.svc.protocol)
    if parsed is None:
        raise UsageError(f"illegal real server address[:port] specified: {value!r}")
    addr, port = parsed
    e.dest.addr, e.dest.af = addr, model.af_of_packed(addr)
    e.dest.port = e.svc.port if port is None else port


def _netmask(e: Entry, value: str) -> None:
    _set_option(e, "netmask")
    if e.svc.af != model.AF_INET6:
        addr = _ipv4(value)
        if addr is None:
            raise UsageError(f"illegal virtual server persistent mask specified: {value!r}")
        e.svc.netmask = int.from_bytes(addr, "big")
        return
    match = re.match(r"\s*([+-]?\d+)", value)
    plen = int(match.group(1)) if match else 0
    if not 1 <= plen <= 128:
        raise UsageError(f"illegal ipv6 netmask specified: {value!r} (1-128)")
    e.svc.netmask = plen


def _int_opt(e: Entry, name: str, value: str, low: int, high: int, what: str) -> int:
    _set_option(e, name)
    result = number(value, low, high)
    if result is None:
        raise UsageError(f"illegal {what} specified: {value!r} ({low}-{high})")
    return result


def _mcast_group(e: Entry, value: str) -> None:
    _set_option(e, "mcast-group")
    family = socket.AF_INET6 if ":" in value else socket.AF_INET
    try:
        addr = model.ip(socket.inet_pton(family, value))
    except OSError:
        addr = None
    if addr is None or not addr.is_multicast():
        raise UsageError(f"invalid IPv{'6' if family == socket.AF_INET6 else '4'} "
                         f"mcast-group `{value}'")
    e.daemon.mcast_group = addr


def _forward(e: Entry, method: int) -> None:
    _set_option(e, "forwarding-method")
    e.dest.forward = method


def _flag_opt(e: Entry, key: str) -> None:
    names = {"n": "numeric", "c": "connection", "timeout": "timeout", "daemon": "daemon",
             "stats": "stats", "rate": "rate", "thresholds": "thresholds",
             "persistent-conn": "persistent-conn", "nosort": "nosort", "X": "exact",
             "tun-info": "tun-info", "json": "json", "ext-stats": "ext-stats"}
    _set_option(e, names[key])
    attr = {"n": "numeric", "stats": "stats", "rate": "rate", "thresholds": "thresholds",
            "persistent-conn": "persistent_conn", "nosort": "nosort", "X": "exact",
            "tun-info": "tun_info"}.get(key)
    if attr:
        setattr(e.fmt, attr, True)
    if key == "json":
        e.json = True


def _tunnel(e: Entry, key: str, value: str | None) -> None:
    if key == "tun-type":
        _set_option(e, "tun-type")
        if value not in model.TUN_TYPES:
            raise UsageError(f"illegal tunnel type specified: {value!r} (ipip, gue or gre)")
        e.dest.tun_type = model.TUN_TYPES[value]
    elif key == "tun-port":
        e.dest.tun_port = _int_opt(e, "tun-port", value or "", 1, 65535, "tunnel port")
    else:
        _set_option(e, key)
        e.dest.tun_flags |= model.TUN_CSUM[key.removeprefix("tun-")]


def _option(e: Entry, key: str, value: str | None, raw: str) -> None:
    """Apply one option to the entry, in command-line order (as ipvsadm)."""
    if key in ("t", "u", "sctp", "f"):
        _service(e, key, value or "")
    elif key == "s":
        _set_option(e, "scheduler")
        e.svc.scheduler = (value or "")[:15]
    elif key == "p":
        _set_option(e, "persistent")
        e.svc.flags |= wire.SVC_F_PERSISTENT
        if value is None:
            e.svc.timeout = model.DEFAULT_PERSISTENCE
        else:
            timeout = number(value, 1, model.MAX_TIMEOUT)
            if timeout is None:
                raise UsageError(f"invalid timeout value `{value}' specified "
                                 f"(1-{model.MAX_TIMEOUT} seconds)")
            e.svc.timeout = timeout
    elif key == "M":
        _netmask(e, value or "")
    elif key == "r":
        _real_server(e, value or "")
    elif key in ("m", "i", "g", "fullnat"):
        _forward(e, {"m": wire.FWD_MASQ, "i": wire.FWD_TUNNEL, "g": wire.FWD_DROUTE,
                     "fullnat": wire.FWD_FULLNAT}[key])
    elif key == "w":
        e.dest.weight = _int_opt(e, "weight", value or "", 0, 2147483647, "weight")
    elif key == "x":
        e.dest.u_threshold = _int_opt(e, "u-threshold", value or "", 0, 2147483647,
                                      "u_threshold")
    elif key == "y":
        e.dest.l_threshold = _int_opt(e, "l-threshold", value or "", 0, 2147483647,
                                      "l_threshold")
    elif key == "mcast-interface":
        _set_option(e, "mcast-interface")
        e.daemon.mcast_ifn = (value or "")[:15]
    elif key == "syncid":
        e.daemon.syncid = _int_opt(e, "syncid", value or "", 0, 255, "syncid")
    elif key == "6":
        if not e.svc.fwmark:
            raise UsageError("-6 used before -f\n")
        e.svc.af, e.svc.netmask = model.AF_INET6, 128
    elif key == "o":
        _set_option(e, "ops")
        e.svc.flags |= wire.SVC_F_ONEPACKET
    elif key == "pe":
        _set_option(e, "pe")
        e.svc.pe_name = (value or "")[:16]
    elif key == "b":
        _set_option(e, "sched-flags")
        e.sched_flags_arg = value or ""
    elif key == "mcast-group":
        _mcast_group(e, value or "")
    elif key == "mcast-port":
        e.daemon.mcast_port = _int_opt(e, "mcast-port", value or "", 1, 65535, "mcast-port")
    elif key == "mcast-ttl":
        e.daemon.mcast_ttl = _int_opt(e, "mcast-ttl", value or "", 1, 255, "mcast-ttl")
    elif key == "sync-maxlen":
        e.daemon.sync_maxlen = _int_opt(e, "sync-maxlen", value or "", 1, 65535 - 20 - 8,
                                        "sync-maxlen")
    elif key.startswith("tun-") and key != "tun-info":
        _tunnel(e, key, value)
    elif key == "z":
        _set_option(e, "laddr")
        addr = _laddr(value or "")
        e.laddr = LocalAddress(addr)
    elif key == "j":
        _set_option(e, "synproxy")
        if value not in ("enable", "disable"):
            raise UsageError(f"illegal synproxy value {value!r}: enable or disable")
        e.synproxy = value == "enable"
    elif key == "sort":
        pass
    else:
        _flag_opt(e, key)


def _laddr(text: str) -> bytes:
    """4 or 16 packed bytes of a local address."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, text)
        except OSError:
            continue
    raise UsageError(f"illegal local address specified: {text!r}")


def parse(argv: Sequence[str], reading_stdin: bool = False) -> Entry:
    """argv (without the program name) as an Entry; raises UsageError."""
    toks = tokens(argv)
    if toks and toks[0][:2] in (("cmd", "adddest"), ("cmd", "editdest")) \
            and any(w[:1] == "-" and w[1:2] != "-" and "b" in w for w in argv):
        # -b means FULLNAT here: read the words again if one may hold it
        toks = tokens(argv, fullnat_b=True)
    e = Entry()
    if not toks or toks[0][0] != "cmd":
        raise UsageError("the first option must be a command (-A, -E, -D, -C, -R, -S, "
                         "-a, -e, -d, -L, -Z, --set, --start-daemon, --stop-daemon, "
                         "-P, -Q, -G, -h)", EXIT_TRYHELP, tryhelp=True)
    kind, e.cmd, e.cmd_arg = toks[0]
    if e.cmd in ("help", "version"):
        return e
    if e.cmd in COMMAND_ARG:
        if e.cmd_arg not in ("master", "backup"):
            raise UsageError(f"illegal {'start' if e.cmd == 'startd' else 'stop'}-daemon "
                             f"parameter specified: {e.cmd_arg!r} (master or backup)")
        e.daemon.state = e.cmd_arg
    args: list[str] = []
    for kind, name, value in toks[1:]:
        if kind == "cmd":
            raise UsageError(f"invalid option `{_spelling(name)}' (only one command "
                             "may be given)")
        if kind == "bad":
            raise UsageError(f"{name}: unknown option", EXIT_TRYHELP, soft=True)
        if kind == "noarg":
            raise UsageError(f"{name}: missing argument", EXIT_TRYHELP, soft=True)
        if kind == "arg":
            args.append(name)
            continue
        _option(e, name, value, name)
    _finish_args(e, args)
    return e


def _spelling(cmd: str) -> str:
    _, short, long = COMMANDS[cmd]
    return f"-{short}" if short else f"--{long}"


def _finish_args(e: Entry, args: list[str]) -> None:
    if e.cmd == "timeout":
        if len(args) < 3:
            raise UsageError("--set option requires 3 timeout values")
        values = []
        for text in args[:3]:
            value = number(text, 0, model.MAX_TIMEOUT)
            if value is None:
                raise UsageError(f"invalid timeout value `{text}' specified")
            values.append(value)
        e.timeouts = Timeouts(*values)
        args = args[3:]
    if args:
        raise UsageError(f"unexpected argument {args[0]}")
    if e.sched_flags_arg:
        e.svc.flags &= ~wire.SVC_F_SCHED_MASK
        e.svc.flags |= _sched_flags(e.svc.scheduler or model.DEFAULT_SCHEDULER,
                                    e.sched_flags_arg)


def _sched_flags(scheduler: str, text: str) -> int:
    bits = 0
    for flag in [w for w in text.split(",") if w]:
        if flag in model.SCHED_FLAG_BITS:
            bits |= model.SCHED_FLAG_BITS[flag]
            continue
        for sched, table in model.SCHED_FLAG_NAMES.items():
            if flag in table:
                if scheduler != sched:
                    raise UsageError(f"incompatible scheduler flag `{flag}' (it needs "
                                     f"-s {sched})")
                bits |= table[flag]
                break
        else:
            raise UsageError(f"invalid scheduler flag `{flag}'")
    return bits


# ------------------------------------------------------------------ checks
def check(e: Entry) -> None:
    """ipvsadm's checks after parsing (which options each command takes,
    zero ports, one-packet, address families, tunnel options)."""
    if e.cmd in ("help", "version"):
        return
    _table_check(e)
    if e.cmd in ("add", "edit"):
        if not e.svc.fwmark and not e.svc.port and not e.svc.persistent:
            raise UsageError("Zero port specified for non-persistent service")
        if e.svc.onepacket and not e.svc.fwmark and e.svc.protocol != wire.IPPROTO_UDP:
            raise UsageError("One-Packet Scheduling is only for UDP virtual services")
        if not e.svc.scheduler:
            e.svc.scheduler = model.DEFAULT_SCHEDULER
        if e.synproxy:
            e.svc.flags |= wire.SVC_F_SYNPROXY
    if e.cmd == "startd" and not e.daemon.mcast_ifn:
        e.daemon.mcast_ifn = "eth0"
    if e.cmd in ("adddest", "editdest"):
        _dest_check(e)
    if e.cmd == "list":
        o = e.options
        if (o & {"connection", "timeout", "daemon"} and o & {"stats", "rate", "thresholds"}) \
                or (o & {"timeout", "daemon"} and "persistent-conn" in o):
            raise UsageError("options conflicts in the list command")
    if e.cmd in ("addladdr", "delladdr") and e.laddr is not None \
            and model.af_of_packed(model.packed(e.laddr)) != e.svc.af:
        raise UsageError("the local address must be of the service's address family")


def _table_check(e: Entry) -> None:
    _check_rules(e.options, OPTNAMES, TABLE[e.cmd], _TABLE_SETS[e.cmd],
                 f"'{e.cmd_name}' command")


def _check_rules(options: set[str], names: list[str], rules, sets, subject: str) -> None:
    """ipvsadm's option table for one command or tunnel type (``subject``):
    '+' required, 'x' illegal, at most one of the '1's."""
    need, illegal, one = sets
    if need <= options and not options & illegal and len(options & one) < 2:
        return      # the common case; the loop below finds the first fault
    last = None
    for name, rule in zip(names, rules):
        if name not in options:
            if rule == "+":
                raise UsageError(f"You need to supply the '{name}' option for the {subject}")
            continue
        if rule == "x":
            raise UsageError(f"Illegal '{name}' option with the {subject}")
        if rule == "1":
            if last is not None:
                raise UsageError(f"The option '{name}' conflicts with the '{last}' option "
                                 f"in the {subject}")
            last = name


def _dest_check(e: Entry) -> None:
    method = e.dest.forward
    if not e.svc.fwmark and method in (wire.FWD_TUNNEL, wire.FWD_DROUTE):
        e.dest.port = e.svc.port
    if e.dest.af != e.svc.af and method != wire.FWD_TUNNEL:
        raise UsageError("Different address family is allowed only for tunneling servers")
    if e.options & _TUNNEL_NAMES and method != wire.FWD_TUNNEL:
        raise UsageError("Tunnel options conflict with forward method")
    tun = e.dest.tun_type
    _check_rules(e.options, TUNNEL_OPTS, TUNNEL_TABLE[tun], _TUNNEL_SETS[tun],
                 f"'{model.TUN_TYPE_NAMES[tun]}' tunnel type")
