"""The command line's contract: ipvsadm 1.31's commands and options (with
the extensions), which options each command takes, and the exit statuses.

Options and commands are named by their long spelling.  ``OPTION_NAMES``
lists the names ipvsadm's messages and option table use (``-t``, ``-u`` and
``-f`` are all ``service-address``; ``-m``, ``-g``, ``-i`` and ``-b`` on a
real server are all ``forwarding-method``).
"""

from __future__ import annotations

import dataclasses

EXIT_FAIL = 2        # ipvsadm's fail(): bad input
EXIT_TRYHELP = 255   # popt errors, no command, kernel refusal (-1)


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


# ------------------------------------------------------------------ commands
# name (as ipvsadm's messages call it) -> (short spelling, long spelling)
COMMANDS: dict[str, tuple[str | None, str]] = {
    "add-service": ("A", "add-service"),
    "edit-service": ("E", "edit-service"),
    "delete-service": ("D", "delete-service"),
    "flush": ("C", "clear"),
    "list": ("L", "list"),
    "add-server": ("a", "add-server"),
    "delete-server": ("d", "delete-server"),
    "edit-server": ("e", "edit-server"),
    "set": (None, "set"),
    "start-daemon": (None, "start-daemon"),
    "stop-daemon": (None, "stop-daemon"),
    "restore": ("R", "restore"),
    "save": ("S", "save"),
    "zero": ("Z", "zero"),
    "add-laddr": ("P", "add-laddr"),
    "del-laddr": ("Q", "del-laddr"),
    "get-laddr": ("G", "get-laddr"),
    "help": ("h", "help"),
    "version": ("v", "version"),
}
WITH_ARGUMENT = {"start-daemon", "stop-daemon"}      # master | backup
CMD_SHORT = {short: name for name, (short, _) in COMMANDS.items() if short}
CMD_SHORT["l"] = "list"
CMD_LONG = {long: name for name, (_, long) in COMMANDS.items()}


def spelling(command: str) -> str:
    """``-A`` or ``--set``."""
    short, long = COMMANDS[command]
    return f"-{short}" if short else f"--{long}"


# ------------------------------------------------------------------ options
OWN_NAME = ""     # an option listed in OPTION_NAMES under its own name


@dataclasses.dataclass(frozen=True)
class Opt:
    """One option: its long name, short letter, argument and help."""

    name: str
    short: str | None
    arg: str = "none"          # none | required | optional
    help: str = ""
    metavar: str = ""
    rule_name: str | None = OWN_NAME   # its name in OPTION_NAMES; None: not there

    @property
    def table_name(self) -> str | None:
        """The name the option table and ipvsadm's messages use, or None."""
        return self.name if self.rule_name == OWN_NAME else self.rule_name


_SERVICE = "service-address"
_METHOD = "forwarding-method"

OPTIONS: list[Opt] = [
    Opt("tcp-service", "t", "required", "TCP virtual service host[:port]", "service-address",
        _SERVICE),
    Opt("udp-service", "u", "required", "UDP virtual service host[:port]", "service-address",
        _SERVICE),
    Opt("sctp-service", None, "required", "SCTP virtual service host[:port]",
        "service-address", _SERVICE),
    Opt("fwmark-service", "f", "required", "firewall-mark service (integer > 0)", "fwmark",
        _SERVICE),
    Opt("scheduler", "s", "required", "scheduler (default wlc)", "scheduler"),
    Opt("persistent", "p", "optional", "persistent service, timeout in s (default 360)",
        "timeout"),
    Opt("netmask", "M", "required", "persistence granularity mask (IPv6: prefix length)",
        "netmask"),
    Opt("real-server", "r", "required", "real server host[:port]", "server-address"),
    Opt("masquerading", "m", help="forwarding method masquerading (NAT)", rule_name=_METHOD),
    Opt("ipip", "i", help="forwarding method tunneling (ipip/gue/gre)", rule_name=_METHOD),
    Opt("gatewaying", "g", help="forwarding method direct routing (default)",
        rule_name=_METHOD),
    Opt("fullnat", None, help="forwarding method FULLNAT (same as -b on -a/-e)",
        rule_name=_METHOD),
    Opt("weight", "w", "required", "weight of the real server", "weight"),
    Opt("u-threshold", "x", "required", "upper connection threshold", "uthreshold"),
    Opt("l-threshold", "y", "required", "lower connection threshold", "lthreshold"),
    Opt("numeric", "n", help="numeric addresses and ports"),
    Opt("connection", "c", help="list the connection table"),
    Opt("mcast-interface", None, "required",
        "multicast interface of the sync daemon (default eth0)", "interface"),
    Opt("syncid", None, "required", "sync daemon id (0-255)", "sid"),
    Opt("timeout", None, help="list the timeouts (tcp tcpfin udp)"),
    Opt("daemon", None, help="list the sync daemons"),
    Opt("stats", None, help="list with counters"),
    Opt("rate", None, help="list with rates"),
    Opt("thresholds", None, help="list with thresholds"),
    Opt("persistent-conn", None, help="list with persistent connections"),
    Opt("nosort", None, help="do not sort the listing"),
    Opt("sort", None, help="sort the listing (the default; accepted for compatibility)",
        rule_name=None),
    Opt("exact", "X", help="exact numbers in --stats/--rate"),
    Opt("ipv6", "6", help="the fwmark service is IPv6 (after -f)", rule_name=None),
    Opt("ops", "o", help="one-packet scheduling (UDP)"),
    Opt("pe", None, "required", "persistence engine (sip)", "engine"),
    Opt("sched-flags", "b", "required",
        "scheduler flags on -A/-E (flag-1..3, sh-fallback, sh-port, mh-fallback, mh-port); "
        "on -a/-e: FULLNAT forwarding", "flags"),
    Opt("mcast-group", None, "required", "multicast group of the sync daemon", "address"),
    Opt("mcast-port", None, "required", "UDP port of the sync daemon", "port"),
    Opt("mcast-ttl", None, "required", "multicast TTL of the sync daemon", "ttl"),
    Opt("sync-maxlen", None, "required", "maximum sync message length", "length"),
    Opt("tun-info", None, help="list with tunnel information"),
    Opt("tun-type", None, "required", "tunnel type: ipip (default), gue, gre", "type"),
    Opt("tun-port", None, "required", "tunnel destination port (gue)", "port"),
    Opt("tun-nocsum", None, help="tunnel without checksum"),
    Opt("tun-csum", None, help="tunnel with checksum"),
    Opt("tun-remcsum", None, help="tunnel with remote checksum (gue)"),
    Opt("laddr", "z", "required", "FULLNAT local address (with -P/-Q)", "address"),
    Opt("synproxy", "j", "required", "SYNPROXY of the service: enable or disable",
        "enable|disable"),
    Opt("json", None, help="machine-readable listing (JSON)"),
    Opt("ext-stats", None, help="list the FULLNAT/SYNPROXY counters"),
]
BY_SHORT = {o.short: o for o in OPTIONS if o.short}
BY_NAME = {o.name: o for o in OPTIONS}
# On -a/-e, -b is FULLNAT (a forwarding method, no value), not sched-flags.
FULLNAT_B = dataclasses.replace(BY_NAME["fullnat"], short="b")

# ------------------------------------------------------------------ option rules
# Option names as ipvsadm prints them, in its table order, then ours.
OPTION_NAMES = [
    "numeric", "connection", "service-address", "scheduler", "persistent", "netmask",
    "real-server", "forwarding-method", "weight", "u-threshold", "l-threshold",
    "mcast-interface", "timeout", "daemon", "stats", "rate", "thresholds",
    "persistent-conn", "nosort", "syncid", "exact", "ops", "pe", "sched-flags",
    "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen", "tun-info", "tun-type",
    "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum",
    "laddr", "synproxy", "json", "ext-stats",
]

# Which options each command takes, in OPTION_NAMES' order: '+' required,
# 'x' illegal, '1' at most one of the '1's, '_' optional (ipvsadm's
# commands_v_options, extended by the last four columns).
_RULES = {
    #                 -n -c svc -s -p -M -r fwd -w -x -y mc to dm st rt th pc ns si ex op pe -b gr po tt ml ti ty tp nc cs rc | z  j  js es
    "add-service":    "x  x  +  _  _  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  _  _  x  x  x  x  x  x  x  x  x  x  x  _  x  x",
    "edit-service":   "x  x  +  _  _  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  _  _  x  x  x  x  x  x  x  x  x  x  x  _  x  x",
    "delete-service": "x  x  +  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "flush":          "x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "list":           "_  1  1  x  x  x  x  x  x  x  x  x  1  1  _  _  _  _  _  _  _  x  x  x  x  x  x  x  _  x  x  x  x  x  x  x  _  1",
    "add-server":     "x  x  +  x  x  x  +  _  _  _  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  _  _  _  _  x  x  x  x",
    "delete-server":  "x  x  +  x  x  x  +  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "edit-server":    "x  x  +  x  x  x  +  _  _  _  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  _  _  _  _  x  x  x  x",
    "set":            "x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "start-daemon":   "x  x  x  x  x  x  x  x  x  x  x  _  x  x  x  x  x  x  x  _  x  x  x  x  _  _  _  _  x  x  x  x  x  x  x  x  x  x",
    "stop-daemon":    "x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "restore":        "x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "save":           "_  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "zero":           "x  x  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x",
    "add-laddr":      "x  x  +  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  +  x  x  x",
    "del-laddr":      "x  x  +  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  +  x  x  x",
    "get-laddr":      "_  x  _  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  x  _  x",
}
OPTION_RULES = {cmd: [c if c != "_" else " " for c in row.split()] for cmd, row in _RULES.items()}
assert all(len(row) == len(OPTION_NAMES) for row in OPTION_RULES.values())
TUNNEL_OPTIONS = frozenset({"tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"})
