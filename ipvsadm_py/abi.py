"""The kernel's interface, as numbers: the IPVS generic netlink family.

This is the only module that knows the ABI.  The upstream numbers come from
the kernel's ``include/uapi/linux/ip_vs.h``; the FULLNAT/SYNPROXY extensions
(commands 18-20, command attribute 7, forwarding method 5, service flag
0x8000) from the project's ABI contract.  Upstream values are never renumbered
or reused.

The attribute sets are declared as pyroute2 declares them (``prefix`` and
``nla_map``: an attribute's number is its position in the map), so that they
can be read against ``ip_vs.h`` line by line.  :mod:`ipvsadm_py.wire` turns
them into an encoder and a decoder.  Nothing here runs.
"""

from __future__ import annotations

GENL_NAME = "IPVS"
GENL_VERSION = 1

# ---------------------------------------------------------------- netlink
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF       # an attribute's number without NLA_F_NESTED/NET_BYTEORDER

GENL_ID_CTRL = 16            # the generic netlink controller: name -> family id
CTRL_CMD_GETFAMILY = 3

# ---------------------------------------------------------------- commands
CMD_NEW_SERVICE = 1
CMD_SET_SERVICE = 2
CMD_DEL_SERVICE = 3
CMD_GET_SERVICE = 4          # one service, or a dump of all
CMD_NEW_DEST = 5
CMD_SET_DEST = 6
CMD_DEL_DEST = 7
CMD_GET_DEST = 8             # dump of a service's real servers
CMD_NEW_DAEMON = 9
CMD_DEL_DAEMON = 10
CMD_GET_DAEMON = 11
CMD_SET_CONFIG = 12          # timeouts
CMD_GET_CONFIG = 13
CMD_SET_INFO = 14            # the command of GET_INFO's reply
CMD_GET_INFO = 15
CMD_ZERO = 16
CMD_FLUSH = 17
CMD_NEW_LADDR = 18           # extension: add a FULLNAT local address
CMD_DEL_LADDR = 19           # extension
CMD_GET_LADDR = 20           # extension: dump of a service's local addresses

# ---------------------------------------------------------------- values
# Forwarding methods (IPVS_DEST_ATTR_FWD_METHOD, IP_VS_CONN_F_FWD_MASK).
FWD_MASQ = 0
FWD_LOCALNODE = 1
FWD_TUNNEL = 2
FWD_DROUTE = 3
FWD_BYPASS = 4
FWD_FULLNAT = 5              # extension
FWD_MASK = 0x7

# Service flags (IPVS_SVC_ATTR_FLAGS).
SVC_F_PERSISTENT = 0x0001
SVC_F_HASHED = 0x0002        # set by the kernel on every service of its table
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED1 = 0x0008        # sh-fallback, mh-fallback
SVC_F_SCHED2 = 0x0010        # sh-port, mh-port
SVC_F_SCHED3 = 0x0020
SVC_F_SYNPROXY = 0x8000      # extension

# Tunnel types and checksum flags (IPVS_DEST_ATTR_TUN_TYPE / _TUN_FLAGS).
TUN_TYPE_IPIP = 0
TUN_TYPE_GUE = 1
TUN_TYPE_GRE = 2
TUN_F_NOCSUM = 0
TUN_F_CSUM = 1
TUN_F_REMCSUM = 2

# Sync daemon states (IPVS_DAEMON_ATTR_STATE).
STATE_MASTER = 1
STATE_BACKUP = 2


# ---------------------------------------------------------------- attribute sets
class stats:  # noqa: N801 - named like the kernel's attribute set
    """IPVS_SVC_ATTR_STATS / IPVS_DEST_ATTR_STATS (32-bit counters)."""

    prefix = "IPVS_STATS_ATTR_"
    nla_map = (
        ("IPVS_STATS_ATTR_UNSPEC", "none"),
        ("IPVS_STATS_ATTR_CONNS", "uint32"),
        ("IPVS_STATS_ATTR_INPKTS", "uint32"),
        ("IPVS_STATS_ATTR_OUTPKTS", "uint32"),
        ("IPVS_STATS_ATTR_INBYTES", "uint64"),
        ("IPVS_STATS_ATTR_OUTBYTES", "uint64"),
        ("IPVS_STATS_ATTR_CPS", "uint32"),
        ("IPVS_STATS_ATTR_INPPS", "uint32"),
        ("IPVS_STATS_ATTR_OUTPPS", "uint32"),
        ("IPVS_STATS_ATTR_INBPS", "uint32"),
        ("IPVS_STATS_ATTR_OUTBPS", "uint32"),
        ("IPVS_STATS_ATTR_PAD", "none"),
    )


class stats64:  # noqa: N801
    """IPVS_SVC_ATTR_STATS64 / IPVS_DEST_ATTR_STATS64 (64-bit counters)."""

    prefix = "IPVS_STATS_ATTR_"
    nla_map = tuple((name, "none" if kind == "none" else "uint64")
                    for name, kind in stats.nla_map)


class svc_flags:  # noqa: N801
    """struct ip_vs_flags: the flag bits and the mask of bits to change."""

    fields = (("flags", "I"), ("mask", "I"))


class service:  # noqa: N801
    """IPVS_CMD_ATTR_SERVICE: a virtual service (nested)."""

    prefix = "IPVS_SVC_ATTR_"
    nla_map = (
        ("IPVS_SVC_ATTR_UNSPEC", "none"),
        ("IPVS_SVC_ATTR_AF", "uint16"),
        ("IPVS_SVC_ATTR_PROTOCOL", "uint16"),
        ("IPVS_SVC_ATTR_ADDR", "cdata"),       # 16 bytes, union nf_inet_addr
        ("IPVS_SVC_ATTR_PORT", "be16"),
        ("IPVS_SVC_ATTR_FWMARK", "uint32"),
        ("IPVS_SVC_ATTR_SCHED_NAME", "asciiz"),
        ("IPVS_SVC_ATTR_FLAGS", "svc_flags"),
        ("IPVS_SVC_ATTR_TIMEOUT", "uint32"),
        ("IPVS_SVC_ATTR_NETMASK", "cdata"),    # be32 mask (IPv4) / prefix length (IPv6)
        ("IPVS_SVC_ATTR_STATS", "stats"),
        ("IPVS_SVC_ATTR_PE_NAME", "asciiz"),   # 11: never reuse it
        ("IPVS_SVC_ATTR_STATS64", "stats64"),
    )
    svc_flags = svc_flags
    stats = stats
    stats64 = stats64


class dest:  # noqa: N801
    """IPVS_CMD_ATTR_DEST: a real server (nested)."""

    prefix = "IPVS_DEST_ATTR_"
    nla_map = (
        ("IPVS_DEST_ATTR_UNSPEC", "none"),
        ("IPVS_DEST_ATTR_ADDR", "cdata"),
        ("IPVS_DEST_ATTR_PORT", "be16"),
        ("IPVS_DEST_ATTR_FWD_METHOD", "uint32"),
        ("IPVS_DEST_ATTR_WEIGHT", "uint32"),
        ("IPVS_DEST_ATTR_U_THRESH", "uint32"),
        ("IPVS_DEST_ATTR_L_THRESH", "uint32"),
        ("IPVS_DEST_ATTR_ACTIVE_CONNS", "uint32"),
        ("IPVS_DEST_ATTR_INACT_CONNS", "uint32"),
        ("IPVS_DEST_ATTR_PERSIST_CONNS", "uint32"),
        ("IPVS_DEST_ATTR_STATS", "stats"),
        ("IPVS_DEST_ATTR_ADDR_FAMILY", "uint16"),
        ("IPVS_DEST_ATTR_STATS64", "stats64"),
        ("IPVS_DEST_ATTR_TUN_TYPE", "uint8"),
        ("IPVS_DEST_ATTR_TUN_PORT", "be16"),
        ("IPVS_DEST_ATTR_TUN_FLAGS", "uint16"),
    )
    stats = stats
    stats64 = stats64


class daemon:  # noqa: N801
    """IPVS_CMD_ATTR_DAEMON: a connection synchronisation daemon (nested)."""

    prefix = "IPVS_DAEMON_ATTR_"
    nla_map = (
        ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
        ("IPVS_DAEMON_ATTR_STATE", "uint32"),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
        ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
        ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
        ("IPVS_DAEMON_ATTR_MCAST_GROUP", "cdata"),   # 4 bytes
        ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "cdata"),  # 16 bytes
        ("IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),
        ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
    )


class laddr:  # noqa: N801
    """IPVS_CMD_ATTR_LADDR: a FULLNAT local address of a service (extension)."""

    prefix = "IPVS_LADDR_ATTR_"
    nla_map = (
        ("IPVS_LADDR_ATTR_UNSPEC", "none"),
        ("IPVS_LADDR_ATTR_ADDR", "cdata"),           # 16 bytes, the service's family
        ("IPVS_LADDR_ATTR_PORT_CONFLICT", "uint64"),
        ("IPVS_LADDR_ATTR_CONN_COUNTS", "uint32"),
    )


class ipvsmsg:  # noqa: N801
    """Every IPVS command and its reply (except GET_INFO's reply)."""

    prefix = "IPVS_CMD_ATTR_"
    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
        ("IPVS_CMD_ATTR_LADDR", "laddr"),            # extension
    )
    service = service
    dest = dest
    daemon = daemon
    laddr = laddr


class infomsg:  # noqa: N801
    """The reply to GET_INFO (command SET_INFO): version and table size."""

    prefix = "IPVS_INFO_ATTR_"
    nla_map = (
        ("IPVS_INFO_ATTR_UNSPEC", "none"),
        ("IPVS_INFO_ATTR_VERSION", "uint32"),
        ("IPVS_INFO_ATTR_CONN_TAB_SIZE", "uint32"),
    )


class ctrlmsg:  # noqa: N801
    """The generic netlink controller's request and reply (the part used)."""

    prefix = "CTRL_ATTR_"
    nla_map = (
        ("CTRL_ATTR_UNSPEC", "none"),
        ("CTRL_ATTR_FAMILY_ID", "uint16"),
        ("CTRL_ATTR_FAMILY_NAME", "asciiz"),
    )


# Every attribute set by the name its parent's nla_map gives it (nested sets),
# or by message (ipvsmsg, infomsg, ctrlmsg).
ATTR_SETS: dict[str, type] = {
    "stats": stats, "stats64": stats64, "service": service, "dest": dest,
    "daemon": daemon, "laddr": laddr, "ipvsmsg": ipvsmsg, "infomsg": infomsg,
    "ctrlmsg": ctrlmsg,
}
MESSAGES = frozenset({"ipvsmsg", "infomsg", "ctrlmsg"})
