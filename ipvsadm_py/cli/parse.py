"""argv (or one line of ``-R`` input) to a :class:`Command`.

Options are applied in command-line order, as ipvsadm applies them (``-r``
reads its port names by the protocol of a ``-t``/``-u`` before it).  Parsing
fills in everything the command needs, defaults included; :mod:`check`
then only judges.  Nothing here talks to the kernel.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from ipvsadm_py import rules
from ipvsadm_py.cli.fmt import Format
from ipvsadm_py.cli.spec import (BY_NAME, EXIT_TRYHELP, WITH_ARGUMENT, Opt, UsageError,
                                 spelling)
from ipvsadm_py.cli.tokens import tokens
from ipvsadm_py.cli.values import address, ipv4, number, parse_hostport
from ipvsadm_py.model import (AF_INET, AF_INET6, DEFAULT_PERSISTENCE, DEFAULT_SCHEDULER,
                              MAX_TIMEOUT, Daemon, DaemonState, Dest, Forward, LocalAddress,
                              Protocol, Service, Timeouts, TunnelCsum, TunnelType,
                              af_of_packed, ip)


@dataclasses.dataclass
class Command:
    """One parsed command line: the command, the objects it acts on, and
    the options given (by their names in ipvsadm's option table)."""

    name: str = ""                       # a key of spec.COMMANDS
    service: Service = dataclasses.field(default_factory=lambda: Service(protocol=0, af=0))
    dest: Dest = dataclasses.field(default_factory=Dest)
    laddr: LocalAddress | None = None
    timeouts: Timeouts | None = None
    daemon: Daemon = dataclasses.field(default_factory=lambda: Daemon(mcast_ifn=""))
    given: set[str] = dataclasses.field(default_factory=set)
    view: Format = dataclasses.field(default_factory=Format)
    json: bool = False
    sched_flags_text: str = ""


# ------------------------------------------------------------------ options
def _int(value: str | None, limit: str, what: str) -> int:
    low, high = rules.LIMITS[limit]
    result = number(value, low, high)
    if result is None:
        raise UsageError(f"illegal {what} specified: {value!r} ({low}-{high})")
    return result


_PROTOCOLS = {"tcp-service": Protocol.TCP, "udp-service": Protocol.UDP,
              "sctp-service": Protocol.SCTP, "fwmark-service": Protocol.TCP}


def _service(cmd: Command, opt: Opt, value: str) -> None:
    svc = cmd.service
    if opt.name == "fwmark-service":
        mark = number(value, *rules.LIMITS["fwmark"])
        if mark is None or not value.strip().lstrip("+").isdigit():
            raise UsageError(f"invalid fwmark value `{value}' specified")
        svc.af, svc.protocol, svc.fwmark = AF_INET, _PROTOCOLS[opt.name], mark
        return
    svc.protocol = _PROTOCOLS[opt.name]
    parsed = parse_hostport(value, svc.protocol)
    if parsed is None:
        raise UsageError(f"illegal virtual server address[:port] specified: {value!r}")
    addr, port = parsed
    svc.addr, svc.af = addr, af_of_packed(addr)
    if svc.af == AF_INET6:
        svc.netmask = 128
    if port is not None:
        svc.port = port


def _persistent(cmd: Command, opt: Opt, value: str | None) -> None:
    cmd.service.persistent = True
    if value is None:
        cmd.service.timeout = DEFAULT_PERSISTENCE
        return
    timeout = number(value, *rules.LIMITS["persistent"])
    if timeout is None:
        raise UsageError(f"invalid timeout value `{value}' specified "
                         f"(1-{MAX_TIMEOUT} seconds)")
    cmd.service.timeout = timeout


def _netmask(cmd: Command, opt: Opt, value: str) -> None:
    if cmd.service.af != AF_INET6:
        addr = ipv4(value)
        if addr is None:
            raise UsageError(f"illegal virtual server persistent mask specified: {value!r}")
        cmd.service.netmask = int.from_bytes(addr, "big")
        return
    match = re.match(r"\s*([+-]?\d+)", value)
    plen = int(match.group(1)) if match else 0
    if not rules.in_range("ipv6_prefix", plen):
        raise UsageError(f"illegal ipv6 netmask specified: {value!r} (1-128)")
    cmd.service.netmask = plen


def _real_server(cmd: Command, opt: Opt, value: str) -> None:
    parsed = parse_hostport(value, cmd.service.protocol)
    if parsed is None:
        raise UsageError(f"illegal real server address[:port] specified: {value!r}")
    addr, port = parsed
    cmd.dest.addr, cmd.dest.af = addr, af_of_packed(addr)
    cmd.dest.port = cmd.service.port if port is None else port


def _ipv6(cmd: Command, opt: Opt, value: None) -> None:
    if not cmd.service.fwmark:
        raise UsageError("-6 used before -f\n")
    cmd.service.af, cmd.service.netmask = AF_INET6, 128


def _mcast_group(cmd: Command, opt: Opt, value: str) -> None:
    raw = address(value)
    if raw is None or not rules.is_multicast(raw):
        raise UsageError(f"invalid IPv{'6' if ':' in value else '4'} mcast-group `{value}'")
    cmd.daemon.mcast_group = ip(raw)


def _tun_type(cmd: Command, opt: Opt, value: str) -> None:
    names = [t.value for t in TunnelType if t != TunnelType.UNKNOWN]
    if value not in names:
        raise UsageError(f"illegal tunnel type specified: {value!r} (ipip, gue or gre)")
    cmd.dest.tun_type = TunnelType(value)


def _laddr(cmd: Command, opt: Opt, value: str) -> None:
    raw = address(value)
    if raw is None:
        raise UsageError(f"illegal local address specified: {value!r}")
    cmd.laddr = LocalAddress(raw)


def _synproxy(cmd: Command, opt: Opt, value: str) -> None:
    if value not in ("enable", "disable"):
        raise UsageError(f"illegal synproxy value {value!r}: enable or disable")
    cmd.service.synproxy = value == "enable"


def _setter(target: str, field: str, convert=lambda value: value):
    """A handler that sets ``cmd.<target>.<field>`` to the converted value."""
    def handle(cmd: Command, opt: Opt, value: str | None) -> None:
        setattr(getattr(cmd, target), field, convert(value))
    return handle


def _view(field: str):
    return _setter("view", field, lambda value: True)


def _json(cmd: Command, opt: Opt, value: None) -> None:
    cmd.json = True


def _nothing(cmd: Command, opt: Opt, value: None) -> None:
    """``--sort``, and the listing views read from ``given``."""


def _ranged(target: str, field: str, limit: str, what: str):
    return _setter(target, field, lambda value: _int(value or "", limit, what))


_FORWARD = {"masquerading": Forward.MASQ, "ipip": Forward.TUNNEL,
            "gatewaying": Forward.ROUTE, "fullnat": Forward.FULLNAT}

HANDLERS = {
    "tcp-service": _service, "udp-service": _service, "sctp-service": _service,
    "fwmark-service": _service,
    "scheduler": _setter("service", "scheduler", lambda value: (value or "")[:15]),
    "persistent": _persistent,
    "netmask": _netmask,
    "real-server": _real_server,
    **{name: _setter("dest", "forward", lambda value, m=method: m)
       for name, method in _FORWARD.items()},
    "weight": _ranged("dest", "weight", "weight", "weight"),
    "u-threshold": _ranged("dest", "u_threshold", "u_threshold", "u_threshold"),
    "l-threshold": _ranged("dest", "l_threshold", "l_threshold", "l_threshold"),
    "mcast-interface": _setter("daemon", "mcast_ifn", lambda value: (value or "")[:15]),
    "syncid": _ranged("daemon", "syncid", "syncid", "syncid"),
    "ipv6": _ipv6,
    "ops": _setter("service", "onepacket", lambda value: True),
    "pe": _setter("service", "pe_name", lambda value: (value or "")[:16]),
    "sched-flags": lambda cmd, opt, value: setattr(cmd, "sched_flags_text", value or ""),
    "mcast-group": _mcast_group,
    "mcast-port": _ranged("daemon", "mcast_port", "mcast_port", "mcast-port"),
    "mcast-ttl": _ranged("daemon", "mcast_ttl", "mcast_ttl", "mcast-ttl"),
    "sync-maxlen": _ranged("daemon", "sync_maxlen", "sync_maxlen", "sync-maxlen"),
    "tun-type": _tun_type,
    "tun-port": _ranged("dest", "tun_port", "tun_port", "tunnel port"),
    **{f"tun-{csum.value}": _setter("dest", "tun_csum", lambda value, c=csum: c)
       for csum in TunnelCsum if csum != TunnelCsum.UNKNOWN},
    "laddr": _laddr,
    "synproxy": _synproxy,
    "numeric": _view("numeric"), "stats": _view("stats"), "rate": _view("rate"),
    "thresholds": _view("thresholds"), "persistent-conn": _view("persistent_conn"),
    "nosort": _view("nosort"), "exact": _view("exact"), "tun-info": _view("tun_info"),
    "json": _json,
    "connection": _nothing, "timeout": _nothing, "daemon": _nothing,
    "ext-stats": _nothing, "sort": _nothing,
}
assert set(HANDLERS) == set(BY_NAME)
# name -> (option, its name in the option table, handler), looked up once per option
_APPLY = {name: (opt, opt.table_name, HANDLERS[name]) for name, opt in BY_NAME.items()}


def _option(cmd: Command, name: str, value: str | None) -> None:
    """One option, in command-line order: noted as given (once only), then
    applied."""
    opt, table_name, handle = _APPLY[name]
    if table_name is not None:
        if table_name in cmd.given:
            raise UsageError(f"multiple '{table_name}' options specified")
        cmd.given.add(table_name)
    handle(cmd, opt, value)


# ------------------------------------------------------------------ parse
NO_COMMAND = ("the first option must be a command (-A, -E, -D, -C, -R, -S, -a, -e, -d, "
              "-L, -Z, --set, --start-daemon, --stop-daemon, -P, -Q, -G, -h)")


def parse(argv: Sequence[str]) -> Command:
    """argv (without the program name) as a Command; raises UsageError."""
    toks = tokens(argv)
    if toks and toks[0][0] == "cmd" and toks[0][1] in _SERVER_CHANGES \
            and any(w[:1] == "-" and w[1:2] != "-" and "b" in w for w in argv):
        toks = tokens(argv, fullnat_b=True)     # -b is FULLNAT here: read it so
    if not toks or toks[0][0] != "cmd":
        raise UsageError(NO_COMMAND, EXIT_TRYHELP, tryhelp=True)
    _, name, arg = toks[0]
    cmd = Command(name=name)
    if name in ("help", "version"):
        return cmd
    if name in WITH_ARGUMENT:
        if arg not in ("master", "backup"):
            raise UsageError(f"illegal {name} parameter specified: {arg!r} "
                             "(master or backup)")
        cmd.daemon.state = DaemonState(arg)
    args: list[str] = []
    for kind, word, value in toks[1:]:
        if kind == "cmd":
            raise UsageError(f"invalid option `{spelling(word)}' (only one command "
                             "may be given)")
        if kind == "bad":
            raise UsageError(f"{word}: unknown option", EXIT_TRYHELP, soft=True)
        if kind == "noarg":
            raise UsageError(f"{word}: missing argument", EXIT_TRYHELP, soft=True)
        if kind == "arg":
            args.append(word)
        else:
            _option(cmd, word, value)
    _finish(cmd, args)
    return cmd


_SERVICE_CHANGES = frozenset({"add-service", "edit-service"})
_SERVER_CHANGES = frozenset({"add-server", "edit-server"})


def _finish(cmd: Command, args: list[str]) -> None:
    """The plain arguments, and what follows from all the options together."""
    if cmd.name == "set":
        if len(args) < 3:
            raise UsageError("--set option requires 3 timeout values")
        values = []
        for text in args[:3]:
            value = number(text, *rules.LIMITS["timeout"])
            if value is None:
                raise UsageError(f"invalid timeout value `{text}' specified")
            values.append(value)
        cmd.timeouts = Timeouts(*values)
        args = args[3:]
    if args:
        raise UsageError(f"unexpected argument {args[0]}")
    svc = cmd.service
    if cmd.sched_flags_text:
        words = [w for w in cmd.sched_flags_text.split(",") if w]
        flags, fault = rules.sched_flags(svc.scheduler or DEFAULT_SCHEDULER, words)
        if fault is not None:
            raise UsageError(_SCHED_FLAG_WORDS[fault.code].format(fault=fault))
        svc.sched_flags = flags
    if cmd.name in _SERVICE_CHANGES and not svc.scheduler:
        svc.scheduler = DEFAULT_SCHEDULER
    if cmd.name in _SERVER_CHANGES:
        port = rules.fixed_port(svc, cmd.dest.forward)
        if port is not None:
            cmd.dest.port = port
    if cmd.name == "start-daemon" and not cmd.daemon.mcast_ifn:
        cmd.daemon.mcast_ifn = "eth0"


_SCHED_FLAG_WORDS = {
    rules.Code.SCHED_FLAG_UNKNOWN: "invalid scheduler flag `{fault.word}'",
    rules.Code.SCHED_FLAG_NEEDS: "incompatible scheduler flag `{fault.word}' "
                                 "(it needs -s {fault.other})",
}
