"""The vocabulary of ipvsadm_py: what an IPVS table holds, in plain terms.

Services, real servers (``Dest``), FULLNAT local addresses, timeouts, sync
daemons, counters (:mod:`.entries`); forwarding methods, tunnel types,
checksum modes and scheduler flags as enums (:mod:`.kinds`); addresses,
kept packed and read as ``netaddr.IPAddress`` (:mod:`.addresses`); service
properties (persistence, one-packet scheduling, SYNPROXY) as booleans.
Nothing here knows the kernel's numbers: :mod:`ipvsadm_py.codec` translates
this vocabulary to netlink attributes and back.  Every name is importable
from ``ipvsadm_py.model`` itself.
"""

from ipvsadm_py.model.addresses import (AF_INET, AF_INET6, AddressField, addr_text, af_of,
                                        af_of_packed, family_of, hostport, ip, packed,
                                        packed_of)
from ipvsadm_py.model.entries import (DEFAULT_PERSISTENCE, DEFAULT_SCHEDULER, FULL_MASK4,
                                      MAX_TIMEOUT, STATS_FIELDS, Daemon, Dest, Info,
                                      LocalAddress, Service, Stats, Timeouts)
from ipvsadm_py.model.kinds import (SCHED_FLAG_NAMES, DaemonState, Forward, Protocol,
                                    SchedFlag, TunnelCsum, TunnelType, protocol_name,
                                    sched_flag_names)

__all__ = ["AF_INET", "AF_INET6", "AddressField", "addr_text", "af_of", "af_of_packed",
           "family_of", "hostport", "ip", "packed", "packed_of",
           "DEFAULT_PERSISTENCE", "DEFAULT_SCHEDULER", "FULL_MASK4", "MAX_TIMEOUT",
           "STATS_FIELDS", "Daemon", "Dest", "Info", "LocalAddress", "Service", "Stats",
           "Timeouts",
           "SCHED_FLAG_NAMES", "DaemonState", "Forward", "Protocol", "SchedFlag", "TunnelCsum",
           "TunnelType", "protocol_name", "sched_flag_names"]
