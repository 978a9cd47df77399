"""ipvsadm's checks of a parsed command, worded as ipvsadm words them.

:func:`check` judges and changes nothing: which options the command takes
(ipvsadm's option table), then the rules of :mod:`ipvsadm_py.rules` that
ipvsadm enforces, each with ipvsadm's message.  The first fault raises.
"""

from __future__ import annotations

from ipvsadm_py import rules
from ipvsadm_py.cli.parse import Command
from ipvsadm_py.cli.spec import OPTION_NAMES, OPTION_RULES, TUNNEL_OPTIONS, UsageError
from ipvsadm_py.model import TunnelCsum, packed
from ipvsadm_py.rules import Code

# The faults ipvsadm reports, in its words.  Others (SYNPROXY of a UDP
# service) it leaves to the kernel.
SERVICE_WORDS = {
    Code.ZERO_PORT: "Zero port specified for non-persistent service",
    Code.ONEPACKET_NOT_UDP: "One-Packet Scheduling is only for UDP virtual services",
}
DEST_WORDS = {
    Code.FAMILY_MISMATCH: "Different address family is allowed only for tunneling servers",
    Code.TUNNEL_WITHOUT_TUNNELING: "Tunnel options conflict with forward method",
}
TUNNEL_WORDS = {
    Code.TUN_PORT_MISSING: "You need to supply the 'tun-port' option for the {subject}",
    Code.TUN_PORT_ILLEGAL: "Illegal 'tun-port' option with the {subject}",
    Code.TUN_CSUM_ILLEGAL: "Illegal 'tun-{fault.word}' option with the {subject}",
    Code.TUN_CSUM_CONFLICT: "The option 'tun-{fault.word}' conflicts with the "
                            "'tun-{fault.other}' option in the {subject}",
}
LADDR_WORDS = {
    Code.LADDR_FAMILY: "the local address must be of the service's address family",
}


_SERVICE_CHANGES = frozenset({"add-service", "edit-service"})
_SERVER_CHANGES = frozenset({"add-server", "edit-server"})


def check(cmd: Command) -> None:
    """Raise UsageError for the first fault of a parsed command."""
    if cmd.name in ("help", "version"):
        return
    check_options(cmd)
    if cmd.name in _SERVICE_CHANGES:
        _report(rules.service_faults(cmd.service), SERVICE_WORDS)
    if cmd.name in _SERVER_CHANGES:
        _check_dest(cmd)
    if cmd.name == "list":
        given = cmd.given
        if (given & {"connection", "timeout", "daemon"} and given & {"stats", "rate",
                                                                     "thresholds"}) \
                or (given & {"timeout", "daemon"} and "persistent-conn" in given):
            raise UsageError("options conflicts in the list command")
    if cmd.name in ("add-laddr", "del-laddr") and cmd.laddr is not None:
        _report(rules.laddr_faults(cmd.service, [packed(cmd.laddr)]), LADDR_WORDS)


def _report(faults: list[rules.Fault], words: dict[Code, str], **names: str) -> None:
    for fault in faults:
        if fault.code in words:
            raise UsageError(words[fault.code].format(fault=fault, **names))


# ------------------------------------------------------------------ the option table
def _rule_sets(rules_row: list[str]) -> tuple[frozenset[str], ...]:
    """A command's row as sets of names: (required, illegal, at most one of)."""
    return tuple(frozenset(n for n, r in zip(OPTION_NAMES, rules_row) if r == rule)
                 for rule in "+x1")


_RULE_SETS = {cmd: _rule_sets(row) for cmd, row in OPTION_RULES.items()}


def check_options(cmd: Command) -> None:
    """ipvsadm's option table: '+' required, 'x' illegal, at most one of
    the '1's; the first fault in the table's order is reported."""
    need, illegal, one = _RULE_SETS[cmd.name]
    given = cmd.given
    if need <= given and not given & illegal and len(given & one) < 2:
        return      # the common case, found with sets
    subject = f"'{cmd.name}' command"
    last = None
    for name, rule in zip(OPTION_NAMES, OPTION_RULES[cmd.name]):
        if name not in given:
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


# ------------------------------------------------------------------ real servers
_CSUM_OPTIONS = [(csum, f"tun-{csum.value}") for csum in TunnelCsum]


def _check_dest(cmd: Command) -> None:
    dest, tunnel_options = cmd.dest, cmd.given & TUNNEL_OPTIONS
    _report(rules.dest_faults(cmd.service, dest, bool(tunnel_options)), DEST_WORDS)
    if not tunnel_options:
        return      # the default, an IPIP tunnel without options, has no faults
    csums = [csum for csum, option in _CSUM_OPTIONS if option in tunnel_options]
    _report(rules.tunnel_faults(dest.tun_type, "tun-port" in tunnel_options, csums),
            TUNNEL_WORDS, subject=f"'{dest.tun_type.value}' tunnel type")
