"""Every metric of lvs-exporter: name, type, help text and labels, in one
table.  Names are part of the exporter's interface (alert rules and
dashboards refer to them), so they are fixed here and pinned by
tests/unit/test_exporter.py; docs/monitoring/README.md lists them.

Conventions (Prometheus): counters end in ``_total``, sizes are in bytes,
a service is labelled ``vip``, ``port``, ``proto``; a real server adds
``rs`` (``address:port``), a local address ``laddr``.  Client addresses
never appear in a label.
"""

from __future__ import annotations

import dataclasses
import re

GAUGE = "gauge"
COUNTER = "counter"

SERVICE = ("vip", "port", "proto")
REAL_SERVER = (*SERVICE, "rs")
LOCAL_ADDRESS = (*SERVICE, "laddr")
# a client list: its kind (deny, allow) and its target; a list for every
# port of a VIP has port "0" and proto "any"
ACCESS_LIST = ("list", *SERVICE)


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric family the exporter may write."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()


def _m(name: str, kind: str, help: str, labels: tuple[str, ...] = ()) -> Metric:
    return Metric(name, kind, help, labels)


# ---------------------------------------------------------------- balancer
BALANCER = [
    _m("lvs_up", GAUGE, "1 if the IPVS table could be read at this scrape, 0 if not "
       "(ip_vs not loaded, namespace gone, or the kernel refused)"),
    _m("lvs_scrape_duration_seconds", GAUGE, "Time this scrape spent reading the kernel"),
    _m("lvs_info", GAUGE, "Always 1; the version of the ip_vs module in a label",
       ("version",)),
    _m("lvs_connection_table_size", GAUGE,
       "Buckets of the connection hash table (ip_vs conn_tab_bits); the number of "
       "connections is the sum of lvs_real_server_*_connections"),
    _m("lvs_feature", GAUGE, "1 if the ip_vs module has the feature (fullnat, synproxy, "
       "ext_stats), 0 if not", ("feature",)),
    _m("lvs_sync_daemon_running", GAUGE, "1 for each running connection sync daemon",
       ("state", "syncid", "mcast_ifn")),
    _m("lvs_fullnat_local_port_range_ports", GAUGE,
       "Local ports a FULLNAT local address can use: fullnat_lport_max - "
       "fullnat_lport_min + 1"),
    _m("lvs_services", GAUGE, "Virtual services in the table"),
    # services
    _m("lvs_service_info", GAUGE, "Always 1; the scheduler and whether SYNPROXY is on",
       (*SERVICE, "scheduler", "synproxy")),
    _m("lvs_service_real_servers", GAUGE, "Real servers of the service", SERVICE),
    _m("lvs_service_available_real_servers", GAUGE,
       "Real servers of the service with a weight above 0", SERVICE),
    _m("lvs_service_active_connections", GAUGE,
       "Active connections of the service (sum over its real servers)", SERVICE),
    _m("lvs_service_inactive_connections", GAUGE,
       "Inactive connections of the service (sum over its real servers)", SERVICE),
    _m("lvs_service_connections_total", COUNTER,
       "Connections scheduled by the service", SERVICE),
    _m("lvs_service_incoming_packets_total", COUNTER,
       "Packets from clients to the service", SERVICE),
    _m("lvs_service_outgoing_packets_total", COUNTER,
       "Packets from the real servers back to clients", SERVICE),
    _m("lvs_service_incoming_bytes_total", COUNTER,
       "Bytes from clients to the service", SERVICE),
    _m("lvs_service_outgoing_bytes_total", COUNTER,
       "Bytes from the real servers back to clients", SERVICE),
    # real servers
    _m("lvs_real_server_info", GAUGE, "Always 1; the forwarding method in a label",
       (*REAL_SERVER, "forward")),
    _m("lvs_real_server_weight", GAUGE, "Scheduling weight of the real server",
       REAL_SERVER),
    _m("lvs_real_server_up", GAUGE,
       "1 if the real server takes new connections (weight above 0), 0 if not: "
       "keepalived sets weight 0 on a failed server with inhibit_on_failure, "
       "otherwise it removes the server", REAL_SERVER),
    _m("lvs_real_server_healthy", GAUGE,
       "Only with --keepalived-conf, for each real server of that configuration: 1 "
       "if it is in the kernel's table with a weight (keepalived's checks pass), 0 if "
       "keepalived took it out (absent, or weight 0 with inhibit_on_failure)",
       REAL_SERVER),
    _m("lvs_real_server_active_connections", GAUGE,
       "Active (established) connections to the real server", REAL_SERVER),
    _m("lvs_real_server_inactive_connections", GAUGE,
       "Inactive connections to the real server (handshake, closing, UDP)",
       REAL_SERVER),
    _m("lvs_real_server_persistent_connections", GAUGE,
       "Persistence templates pointing to the real server", REAL_SERVER),
    _m("lvs_real_server_connections_total", COUNTER,
       "Connections scheduled to the real server", REAL_SERVER),
    _m("lvs_real_server_incoming_packets_total", COUNTER,
       "Packets from clients to the real server", REAL_SERVER),
    _m("lvs_real_server_outgoing_packets_total", COUNTER,
       "Packets from the real server back to clients", REAL_SERVER),
    _m("lvs_real_server_incoming_bytes_total", COUNTER,
       "Bytes from clients to the real server", REAL_SERVER),
    _m("lvs_real_server_outgoing_bytes_total", COUNTER,
       "Bytes from the real server back to clients", REAL_SERVER),
    # FULLNAT local addresses
    _m("lvs_local_address_sessions", GAUGE,
       "Sessions using the FULLNAT local address (each holds one local port)",
       LOCAL_ADDRESS),
    _m("lvs_local_address_port_conflicts_total", COUNTER,
       "Local ports of this address found taken towards the chosen real server",
       LOCAL_ADDRESS),
    _m("lvs_local_address_free_ports", GAUGE,
       "Local ports of the range not held by a session of this address "
       "(lvs_fullnat_local_port_range_ports - sessions, at least 0)", LOCAL_ADDRESS),
]

# ---------------------------------------------------------------- client lists
# The named counters of nftables' table inet lvs_toolkit (docs/acl.md): no
# series when there is no such table (or no nft).
ACL = [
    _m("lvs_acl_dropped_packets_total", COUNTER,
       "Packets dropped by the client list (deny: the client is listed; allow: it "
       "is not), before IPVS and SYNPROXY", ACCESS_LIST),
    _m("lvs_acl_dropped_bytes_total", COUNTER,
       "Bytes of the packets dropped by the client list", ACCESS_LIST),
]

# ---------------------------------------------------------------- extended counters
# /proc/net/ip_vs_ext_stats: kernel name -> help.  Each is exported as
# lvs_ext_<name>_total; a counter the table does not know (a newer module)
# as lvs_ext_other_total{counter="<name>"}.
EXT_STATS = {
    "fullnat_add_toa_ok": "FULLNAT segments that got a TOA option",
    "fullnat_add_toa_fail_len": "TOA not added: the segment would exceed the MTU",
    "fullnat_add_toa_head_full": "TOA not added: no room left in the TCP option space",
    "fullnat_add_toa_fail_mem": "TOA not added: no memory",
    "fullnat_add_toa_fail_proto": "TOA not added: a protocol that cannot carry it",
    "fullnat_conn_reused": "FULLNAT sessions reused by a new client connection",
    "fullnat_conn_reused_close": "FULLNAT sessions reused from CLOSE",
    "fullnat_conn_reused_timewait": "FULLNAT sessions reused from TIME_WAIT",
    "fullnat_conn_reused_finwait": "FULLNAT sessions reused from FIN_WAIT",
    "fullnat_conn_reused_closewait": "FULLNAT sessions reused from CLOSE_WAIT",
    "fullnat_conn_reused_lastack": "FULLNAT sessions reused from LAST_ACK",
    "fullnat_conn_reused_estab": "FULLNAT sessions reused from ESTABLISHED",
    "fullnat_no_laddr": "New FULLNAT connections dropped: the service has no local address",
    "fullnat_lport_exhausted": "New FULLNAT connections dropped: no local port left",
    "fullnat_timestamp_removed": "TCP timestamp options removed on FULLNAT sessions",
    "fullnat_mss_adjusted": "MSS options lowered on FULLNAT sessions",
    "conn_expire_tcp_rst": "RSTs sent to both ends of expiring ESTABLISHED sessions",
    "fullnat_csum_error": "Segments and ICMP errors dropped for a wrong checksum",
    "synproxy_rs_error": "SYNPROXY handshakes the real server refused or never answered",
    "synproxy_null_ack": "Client ACKs without data dropped while a handshake was pending",
    "synproxy_bad_ack": "ACKs to a SYNPROXY service with a wrong or stale cookie (dropped)",
    "synproxy_ok_ack": "ACKs that proved a SYN cookie",
    "synproxy_syn_cnt": "SYNs answered with a SYN cookie",
    "synproxy_ackstorm": "ACKs dropped by the ack-storm defence",
    "synproxy_synsend_qlen": "Client segments dropped: the hold queue was full",
    "synproxy_conn_reused": "SYNPROXY sessions reused by a new client connection",
    "synproxy_conn_reused_close": "SYNPROXY sessions reused from CLOSE",
    "synproxy_conn_reused_timewait": "SYNPROXY sessions reused from TIME_WAIT",
    "synproxy_conn_reused_finwait": "SYNPROXY sessions reused from FIN_WAIT",
    "synproxy_conn_reused_closewait": "SYNPROXY sessions reused from CLOSE_WAIT",
    "synproxy_conn_reused_lastack": "SYNPROXY sessions reused from LAST_ACK",
    "synproxy_no_dest": "Cookie ACKs for which the scheduler found no real server",
    "synproxy_stale_ack": "Cookie ACKs right but older than synproxy_cookie_max_age",
    "synproxy_syn_retry": "SYNs sent again to a silent real server",
    "synproxy_hs_fail": "SYNPROXY handshakes not started (no memory, ip_vs_ftp bound)",
    "synproxy_opts_lost": "Cookie ACKs whose TCP options offer had expired",
    "sync_seq_ignored": "Sequence data of sync messages not copied into a FULLNAT or "
                        "SYNPROXY session",
    "sync_fullnat_sent": "FULLNAT and SYNPROXY sessions a master put into sync messages "
                         "with their state",
    "sync_fullnat_recv": "FULLNAT and SYNPROXY sessions a backup took from sync messages",
    "sync_fullnat_no_dest": "Synced FULLNAT sessions refused: their real server is not "
                            "configured here",
    "sync_fullnat_no_laddr": "Synced FULLNAT sessions refused: their local address is not "
                             "one of the service's here",
    "sync_fullnat_conflict": "Synced FULLNAT sessions refused: their local tuple is held by "
                             "another session",
    "sync_fullnat_bad": "Synced FULLNAT or SYNPROXY entries refused: malformed, unknown "
                        "version, or without their state",
    "sync_msg_dropped": "Sync messages a backup dropped whole (short, inconsistent "
                        "sizes, undecodable)",
    "sync_conn_skipped": "Entries of sync messages a backup skipped (unknown mandatory "
                         "option, bad flags, state or protocol)",
    "sync_msg_sent": "Sync messages a master sent",
    "sync_msg_send_error": "Sync messages a master lost to a send error",
    "sync_msg_queue_full": "Sync messages a master dropped because its send queue was full "
                           "(sync_qlen_max): the daemon lags behind the table",
    "sync_msg_recv": "Sync messages a backup received",
    "defence_ip_frag_drop": "Fragments to a SYNPROXY address dropped by the defence",
    "defence_tcp_drop": "TCP segments without session to a SYNPROXY address dropped",
    "defence_udp_drop": "UDP datagrams without session or service to a SYNPROXY "
                        "address dropped",
}
EXT_OTHER = _m("lvs_ext_other_total", COUNTER,
               "An extended counter of /proc/net/ip_vs_ext_stats this exporter has no "
               "name for", ("counter",))

# ---------------------------------------------------------------- real servers
TOA_STATS = {
    "syn_recv_sock_toa": "New sockets whose creating segment carried a usable TOA",
    "syn_recv_sock_no_toa": "New sockets without a usable TOA",
    "data_seg_toa": "Clients taken later, from a socket's first segments",
    "getname_toa_ok": "accept()/getpeername() results replaced by the client",
    "getname_toa_mismatch": "Results left alone: the peer is no longer the one that "
                            "carried the option",
    "getname_toa_family": "Results left alone: IPv6 client on an AF_INET socket",
    "getname_toa_bypass": "Results left alone on TOA sockets while switched off",
    "getname_toa_empty": "TCP peer names of sockets without a client",
    "opt_bad_len": "TOA options with a length of no variant",
    "opt_truncated": "Options past the end of the header or without their length",
    "opt_after_eol": "Headers with non-zero bytes after End of Option List",
    "opt_duplicate": "Headers with more than one TOA option",
    "store_fail": "Clients not remembered: no memory",
    "entry_alloc": "Client records made",
    "entry_free": "Client records freed",
    "opt_untrusted": "TOA options from a peer outside the trusted prefixes (not taken)",
    "getname_toa_untrusted": "Results left alone: the peer is no longer trusted",
    "entry_stale_replaced": "Records of freed sockets replaced by the next socket's client",
    "getname_toa_stale": "Results left alone: the record was a freed socket's",
    "probe_missed": "accept()/getpeername() calls the return probes could not follow",
}
TOA = [
    _m("lvs_toa_loaded", GAUGE, "1 if toa.ko is loaded on this real server, 0 if not"),
    _m("lvs_scrape_duration_seconds", GAUGE, "Time this scrape spent reading the kernel"),
]
TOA_OTHER = _m("lvs_toa_other_total", COUNTER,
               "A counter of /proc/net/toa_stats this exporter has no name for",
               ("counter",))

_NAME = re.compile(r"[^a-zA-Z0-9_]")


def ext_metric(counter: str) -> Metric:
    """The metric of an extended counter of ip_vs."""
    return _m(f"lvs_ext_{counter}_total", COUNTER, EXT_STATS[counter])


def toa_metric(counter: str) -> Metric:
    """The metric of a toa.ko counter."""
    return _m(f"lvs_toa_{counter}_total", COUNTER, TOA_STATS[counter])


def every_metric(role: str = "lb") -> list[Metric]:
    """Every metric family a role may export (what the docs and tests list)."""
    if role == "rs":
        return [*TOA, *(toa_metric(c) for c in TOA_STATS), TOA_OTHER]
    return [*BALANCER, *ACL, *(ext_metric(c) for c in EXT_STATS), EXT_OTHER]


def safe(counter: str) -> str:
    """A counter name as a label value (kept as is, unprintables replaced)."""
    return _NAME.sub("_", counter)
