"""The kinds of things IPVS tells apart, as enums: protocols, forwarding
methods, tunnel types and checksums, scheduler flags (with the names some
schedulers give them), sync daemon states.

Their values are the names used by ``--json`` and the YAML configuration;
the kernel's numbers are :mod:`ipvsadm_py.codec`'s.
"""

from __future__ import annotations

import enum


class Protocol(enum.IntEnum):
    """The IP protocols of a virtual service (their IANA numbers)."""

    TCP = 6
    UDP = 17
    SCTP = 132


class Forward(enum.StrEnum):
    """How a real server gets its packets (the forwarding method)."""

    MASQ = "masq"          # NAT
    LOCAL = "local"        # the balancer itself
    TUNNEL = "tunnel"      # IP-in-IP, GUE or GRE
    ROUTE = "route"        # direct routing
    BYPASS = "bypass"
    FULLNAT = "fullnat"    # both addresses rewritten (extension)
    UNKNOWN = "unknown"    # a method another tool set that has no name here


class TunnelType(enum.StrEnum):
    """The encapsulation of a tunneling real server."""

    IPIP = "ipip"
    GUE = "gue"
    GRE = "gre"
    UNKNOWN = "unknown"


class TunnelCsum(enum.StrEnum):
    """The checksum of a tunnel's outer header."""

    NOCSUM = "nocsum"
    CSUM = "csum"
    REMCSUM = "remcsum"    # remote checksum offload (GUE)
    UNKNOWN = "unknown"


class SchedFlag(enum.StrEnum):
    """Scheduler flags; some schedulers give them names of their own."""

    FLAG_1 = "flag-1"
    FLAG_2 = "flag-2"
    FLAG_3 = "flag-3"


# The names a scheduler gives its flags (ipvsadm prints these for sh and mh).
SCHED_FLAG_NAMES: dict[str, dict[SchedFlag, str]] = {
    "sh": {SchedFlag.FLAG_1: "sh-fallback", SchedFlag.FLAG_2: "sh-port"},
    "mh": {SchedFlag.FLAG_1: "mh-fallback", SchedFlag.FLAG_2: "mh-port"},
}


class DaemonState(enum.StrEnum):
    MASTER = "master"
    BACKUP = "backup"


_GENERIC_FLAG_NAMES = {flag: flag.value for flag in SchedFlag}


def sched_flag_names(scheduler: str, flags: frozenset[SchedFlag] | set[SchedFlag]) -> list[str]:
    """The names ipvsadm prints for a service's scheduler flags (a scheduler
    with names of its own shows only those)."""
    names = SCHED_FLAG_NAMES.get(scheduler, _GENERIC_FLAG_NAMES)
    return [name for flag, name in names.items() if flag in flags]


def protocol_name(number: int) -> str:
    """``tcp``, ``udp``, ``sctp``, or the number as text."""
    try:
        return Protocol(number).name.lower()
    except ValueError:
        return str(number)
