"""What a configuration file asks for, once read and checked: the result
of :func:`ipvsadm_py.config.schema.validate`, or the error listing every
problem.  The keepalived.conf reader gives the same (``keepalived_conf``).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from netaddr import IPAddress

from ipvsadm_py import acl
from ipvsadm_py.errors import InvalidInput
from ipvsadm_py.model import Daemon, Dest, Service, Timeouts


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
    # A YAML file owns the allow/deny lists (apply prunes the others); so
    # does a keepalived.conf with deny_group/allow_group blocks; one
    # without any leaves the lists alone.
    owns_lists: bool = False
    cluster: "Cluster | None" = None     # read by lvs-cluster; ipvsadm-py apply leaves it

    @property
    def access_lists(self) -> list[acl.AccessList]:
        """Every allow and deny list of the file (services' and VIPs')."""
        return [lst for spec in self.services for lst in spec.lists] + self.vip_lists


class ConfigError(InvalidInput):
    """Every problem of a file, one per line: ``FILE:LINE: path: message``."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclasses.dataclass
class Peer:
    """A router a balancer speaks BGP with."""

    address: IPAddress
    asn: int


@dataclasses.dataclass
class Balancer:
    """One balancer of the cluster: its BGP identity, peers, what it announces."""

    name: str
    router_id: IPAddress
    asn: int
    peers: list[Peer]
    local_prefixes: list[str]          # "10.1.1.0/24": announced always (the replies' way back)
    vips: list[IPAddress]              # announced while a service of theirs can be served
    line: int = 0


@dataclasses.dataclass
class Cluster:
    """The ``cluster:`` section: balancers side by side behind ECMP routers."""

    balancers: list[Balancer]
    interface: str = "lvs-vips"        # dummy interface: a VIP on it is announced
    hold_time: int = 9                 # BGP hold time, seconds (keepalive: a third)
    bfd: bool = False
    #: (interval in ms, multiplier) of ``bfd: {interval: .., multiplier: ..}``;
    #: None: BIRD's own defaults
    bfd_timers: tuple[int, int] | None = None

    def balancer(self, name: str) -> Balancer:
        for bal in self.balancers:
            if bal.name == name:
                return bal
        raise KeyError(name)
