"""lvs-exporter without a kernel: the metric table (names pinned, every
kernel counter named), the families of hand-made readings, ``lvs_up 0`` on
failures, the command line's errors, and ``promtool check metrics`` on a
scrape."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from netaddr import IPAddress
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ipvsadm_py import procfs
from ipvsadm_py.errors import KernelRefused, NotLoaded
from ipvsadm_py.exporter import cli, collect, health, names
from ipvsadm_py.model import (AF_INET6, Daemon, DaemonState, Dest, Forward, Info,
                              LocalAddress, Service, Stats)
from ipvsadm_py.nft import AccessLists, NftError

ROOT = Path(__file__).resolve().parents[2]

# The interface: alert rules and dashboards use these names.
PINNED_LB = {
    "lvs_up", "lvs_scrape_duration_seconds", "lvs_info", "lvs_connection_table_size",
    "lvs_feature", "lvs_sync_daemon_running", "lvs_fullnat_local_port_range_ports",
    "lvs_services", "lvs_service_info", "lvs_service_real_servers",
    "lvs_service_available_real_servers", "lvs_service_active_connections",
    "lvs_service_inactive_connections", "lvs_service_connections_total",
    "lvs_service_incoming_packets_total", "lvs_service_outgoing_packets_total",
    "lvs_service_incoming_bytes_total", "lvs_service_outgoing_bytes_total",
    "lvs_real_server_info", "lvs_real_server_weight", "lvs_real_server_up",
    "lvs_real_server_healthy",
    "lvs_real_server_active_connections", "lvs_real_server_inactive_connections",
    "lvs_real_server_persistent_connections", "lvs_real_server_connections_total",
    "lvs_real_server_incoming_packets_total", "lvs_real_server_outgoing_packets_total",
    "lvs_real_server_incoming_bytes_total", "lvs_real_server_outgoing_bytes_total",
    "lvs_local_address_sessions", "lvs_local_address_port_conflicts_total",
    "lvs_local_address_free_ports", "lvs_ext_other_total",
    "lvs_acl_dropped_packets_total", "lvs_acl_dropped_bytes_total",
    *(f"lvs_ext_{c}_total" for c in (
        "fullnat_add_toa_ok", "fullnat_add_toa_fail_len", "fullnat_add_toa_head_full",
        "fullnat_add_toa_fail_mem", "fullnat_add_toa_fail_proto", "fullnat_conn_reused",
        "fullnat_conn_reused_close", "fullnat_conn_reused_timewait",
        "fullnat_conn_reused_finwait", "fullnat_conn_reused_closewait",
        "fullnat_conn_reused_lastack", "fullnat_conn_reused_estab", "fullnat_no_laddr",
        "fullnat_lport_exhausted", "fullnat_timestamp_removed", "fullnat_mss_adjusted",
        "conn_expire_tcp_rst", "fullnat_csum_error", "synproxy_rs_error",
        "synproxy_null_ack", "synproxy_bad_ack", "synproxy_ok_ack", "synproxy_syn_cnt",
        "synproxy_ackstorm", "synproxy_synsend_qlen", "synproxy_conn_reused",
        "synproxy_conn_reused_close", "synproxy_conn_reused_timewait",
        "synproxy_conn_reused_finwait", "synproxy_conn_reused_closewait",
        "synproxy_conn_reused_lastack", "synproxy_no_dest", "synproxy_stale_ack",
        "synproxy_syn_retry", "synproxy_hs_fail", "synproxy_opts_lost",
        "sync_seq_ignored", "sync_fullnat_sent", "sync_fullnat_recv", "sync_fullnat_no_dest",
        "sync_fullnat_no_laddr", "sync_fullnat_conflict", "sync_fullnat_bad",
        "sync_msg_dropped", "sync_conn_skipped", "sync_msg_sent", "sync_msg_send_error",
        "sync_msg_queue_full", "sync_msg_recv", "defence_ip_frag_drop", "defence_tcp_drop",
        "defence_udp_drop")),
}
PINNED_RS = {
    "lvs_toa_loaded", "lvs_scrape_duration_seconds", "lvs_toa_other_total",
    *(f"lvs_toa_{c}_total" for c in (
        "syn_recv_sock_toa", "syn_recv_sock_no_toa", "data_seg_toa", "getname_toa_ok",
        "getname_toa_mismatch", "getname_toa_family", "getname_toa_bypass",
        "getname_toa_empty", "opt_bad_len", "opt_truncated", "opt_after_eol",
        "opt_duplicate", "store_fail", "entry_alloc", "entry_free", "opt_untrusted",
        "getname_toa_untrusted", "entry_stale_replaced", "getname_toa_stale",
        "probe_missed")),
}
ALLOWED_LABELS = {"vip", "port", "proto", "rs", "laddr", "version", "feature", "state",
                  "syncid", "mcast_ifn", "scheduler", "synproxy", "forward", "counter", "list"}


@pytest.fixture(autouse=True)
def ip_vs_loaded(monkeypatch):
    """The fake kernels below have ip_vs loaded (/sys/module/ip_vs), and
    no nft (the client lists' tests give theirs): no test reads the host's."""
    monkeypatch.setattr(procfs, "module_loaded", lambda name, *a: True)
    monkeypatch.setattr(collect, "AccessLists",
                        lambda: AccessLists(CountersNft(None)))


# ---------------------------------------------------------------- the table
def test_metric_names_are_pinned():
    assert {m.name for m in names.every_metric("lb")} == PINNED_LB
    assert {m.name for m in names.every_metric("rs")} == PINNED_RS


@pytest.mark.parametrize("role", ["lb", "rs"])
def test_names_follow_prometheus_conventions(role):
    metrics = names.every_metric(role)
    assert len({m.name for m in metrics}) == len(metrics)
    for m in metrics:
        assert re.fullmatch(r"lvs_[a-z0-9_]+", m.name), m.name
        assert m.name.endswith("_total") == (m.kind == names.COUNTER), m.name
        assert m.help and not m.help.endswith("."), m.name
        assert set(m.labels) <= ALLOWED_LABELS, m.name


def _c_names(path: str, table: str) -> set[str]:
    """The counter names of a C table ``[ENUM] = "name",``."""
    text = (ROOT / path).read_text()
    body = text[text.index(table):]
    body = body[:body.index("};")]
    return set(re.findall(r'\]\s*=\s*"([a-z0-9_]+)"', body))


def test_every_ext_counter_of_the_kernel_has_a_metric():
    kernel = _c_names("kernel/ip_vs/ip_vs_ext.c", "[IP_VS_EXT_FNAT_ADD_TOA_OK]")
    assert kernel and kernel == set(names.EXT_STATS)


def test_every_toa_counter_of_the_kernel_has_a_metric():
    kernel = _c_names("kernel/toa/toa_stats.c", "[TOA_STAT_SYN_RECV_SOCK_TOA]")
    assert kernel and kernel | {"probe_missed"} == set(names.TOA_STATS)


# ---------------------------------------------------------------- a fake kernel
def svc(addr: str, port: int, **kw) -> Service:
    af = AF_INET6 if ":" in addr else 2
    return Service(protocol=6, addr=IPAddress(addr), port=port, af=af, scheduler="rr",
                   stats=Stats(conns=10, inpkts=100, outpkts=90, inbytes=5000,
                               outbytes=70000), **kw)


def dest(addr: str, port: int, weight: int = 1, active: int = 0, inact: int = 0) -> Dest:
    af = AF_INET6 if ":" in addr else 2
    return Dest(addr=IPAddress(addr), port=port, af=af, forward=Forward.FULLNAT,
                weight=weight, active_conns=active, inact_conns=inact,
                stats=Stats(conns=5, inpkts=50, outpkts=45, inbytes=2500, outbytes=35000))


class FakeIPVS:
    """What the collector asks of :class:`ipvsadm_py.api.IPVS`."""

    def __init__(self, table, laddrs=None, ext=None, fail: Exception | None = None):
        self._table, self._laddrs, self._ext, self.fail = table, laddrs or {}, ext, fail
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def table(self):
        if self.fail:
            raise self.fail
        return self._table

    def fullnat_supported(self):
        return True

    def laddr_table(self, services):
        self.laddrs_asked = [s.key for s in services]
        return [(s, self._laddrs.get(s.key, [])) for s in services]

    def ext_stats(self, path):
        if self._ext is None:
            raise FileNotFoundError(path)
        return self._ext

    def info(self):
        return Info(version=(1 << 16) | (2 << 8) | 1, conn_tab_size=4096)

    def daemons(self):
        return [Daemon(state=DaemonState.MASTER, mcast_ifn="eth1", syncid=3)]

    @staticmethod
    def synproxy_supported():
        return True


def lab_table():
    web = svc("10.0.0.100", 80, synproxy=True)
    v6 = svc("2001:db8::100", 443)
    mark = Service(fwmark=7, scheduler="wlc", stats=Stats())
    table = [(web, [dest("10.0.2.11", 8080, active=3, inact=1),
                    dest("10.0.2.12", 8080, weight=0)]),
             (v6, [dest("2001:db8:2::11", 443, active=2)]),
             (mark, [])]
    laddrs = {web.key: [LocalAddress(addr=IPAddress("10.0.3.1"), port_conflicts=4,
                                     conns=60000)]}
    return table, laddrs


def scrape(collector) -> dict[tuple[str, tuple], float]:
    """Sample name and sorted labels -> value, of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def lb_collector(monkeypatch, **fake):
    table, laddrs = lab_table()
    monkeypatch.setattr(collect, "lport_range", lambda: 60536)
    ext = {"synproxy_syn_cnt": 12, "defence_tcp_drop": 3, "new_counter_x": 1}
    return collect.BalancerCollector(lambda: FakeIPVS(table, laddrs, ext, **fake))


WEB = (("port", "80"), ("proto", "tcp"), ("vip", "10.0.0.100"))


def labels(*pairs) -> tuple:
    return tuple(sorted(pairs))


def test_a_scrape_reports_services_real_servers_and_laddrs(monkeypatch):
    got = scrape(lb_collector(monkeypatch))
    assert got[("lvs_up", ())] == 1
    assert got[("lvs_info", (("version", "1.2.1"),))] == 1
    assert got[("lvs_connection_table_size", ())] == 4096
    assert got[("lvs_services", ())] == 3
    assert got[("lvs_service_active_connections", WEB)] == 3
    assert got[("lvs_service_inactive_connections", WEB)] == 1
    assert got[("lvs_service_connections_total", WEB)] == 10
    assert got[("lvs_service_outgoing_bytes_total", WEB)] == 70000
    assert got[("lvs_service_real_servers", WEB)] == 2
    assert got[("lvs_service_available_real_servers", WEB)] == 1
    assert got[("lvs_service_info", labels(*WEB, ("scheduler", "rr"),
                                           ("synproxy", "true")))] == 1
    rs1 = labels(*WEB, ("rs", "10.0.2.11:8080"))
    rs2 = labels(*WEB, ("rs", "10.0.2.12:8080"))
    assert got[("lvs_real_server_active_connections", rs1)] == 3
    assert got[("lvs_real_server_incoming_packets_total", rs1)] == 50
    assert got[("lvs_real_server_info", labels(*rs1, ("forward", "fullnat")))] == 1
    assert got[("lvs_real_server_up", rs1)] == 1
    assert got[("lvs_real_server_up", rs2)] == 0
    assert got[("lvs_real_server_weight", rs2)] == 0
    v6 = labels(("port", "443"), ("proto", "tcp"), ("vip", "2001:db8::100"),
                ("rs", "[2001:db8:2::11]:443"))
    assert got[("lvs_real_server_active_connections", v6)] == 2
    mark = (("port", "0"), ("proto", "fwmark"), ("vip", "fwmark:7"))
    assert got[("lvs_service_real_servers", mark)] == 0
    la = labels(*WEB, ("laddr", "10.0.3.1"))
    assert got[("lvs_local_address_sessions", la)] == 60000
    assert got[("lvs_local_address_port_conflicts_total", la)] == 4
    assert got[("lvs_local_address_free_ports", la)] == 536
    assert got[("lvs_fullnat_local_port_range_ports", ())] == 60536
    assert got[("lvs_ext_synproxy_syn_cnt_total", ())] == 12
    assert got[("lvs_ext_defence_tcp_drop_total", ())] == 3
    assert got[("lvs_ext_other_total", (("counter", "new_counter_x"),))] == 1
    assert got[("lvs_feature", (("feature", "synproxy"),))] == 1
    assert got[("lvs_sync_daemon_running", labels(("mcast_ifn", "eth1"), ("state", "master"),
                                                  ("syncid", "3")))] == 1


def test_free_ports_never_go_below_zero(monkeypatch):
    table, _ = lab_table()
    web = table[0][0]
    laddrs = {web.key: [LocalAddress(addr=IPAddress("10.0.3.1"), conns=70000)]}
    monkeypatch.setattr(collect, "lport_range", lambda: 100)
    got = scrape(collect.BalancerCollector(lambda: FakeIPVS(table, laddrs, {})))
    assert got[("lvs_local_address_free_ports", labels(*WEB, ("laddr", "10.0.3.1")))] == 0


@pytest.mark.parametrize("error", [NotLoaded("IPVS is not loaded"),
                                   KernelRefused("refused", 22), OSError(9, "bad fd"),
                                   RuntimeError("anything")])
def test_a_failed_read_reports_lvs_up_0_and_nothing_else(monkeypatch, error):
    got = scrape(lb_collector(monkeypatch, fail=error))
    assert got[("lvs_up", ())] == 0
    assert {name for name, _ in got} == {"lvs_up", "lvs_scrape_duration_seconds"}


def test_failing_to_open_reports_lvs_up_0_then_recovers(monkeypatch):
    table, laddrs = lab_table()
    state = {"loaded": False}

    def opener():
        if not state["loaded"]:
            raise NotLoaded("IPVS is not loaded")
        return FakeIPVS(table, laddrs, {})

    monkeypatch.setattr(collect, "lport_range", lambda: 60536)
    collector = collect.BalancerCollector(opener)
    assert scrape(collector)[("lvs_up", ())] == 0
    state["loaded"] = True
    assert scrape(collector)[("lvs_up", ())] == 1


def test_without_ip_vs_a_scrape_does_not_open_netlink(monkeypatch):
    """Opening the IPVS family would make the kernel load ip_vs."""
    opened = []
    monkeypatch.setattr(procfs, "module_loaded", lambda name, *a: name != "ip_vs")
    got = scrape(collect.BalancerCollector(lambda: opened.append(1)))
    assert got[("lvs_up", ())] == 0 and opened == []


def test_no_ext_stats_file_means_no_ext_metrics(monkeypatch):
    table, laddrs = lab_table()
    monkeypatch.setattr(collect, "lport_range", lambda: 60536)
    got = scrape(collect.BalancerCollector(lambda: FakeIPVS(table, laddrs, None)))
    assert got[("lvs_feature", (("feature", "ext_stats"),))] == 0
    assert not [n for n, _ in got if n.startswith("lvs_ext_")]


TOA_FILE = """counter                          CPU0         CPU1        total
syn_recv_sock_toa                   3            4            7
opt_bad_len                         0            1            1
brand_new                           0            2            2
probe_missed                        -            -            5
"""


def test_the_real_server_role_reads_toa_stats(tmp_path):
    stats = tmp_path / "toa_stats"
    stats.write_text(TOA_FILE)
    module = tmp_path / "toa"
    module.mkdir()
    got = scrape(collect.ToaCollector(stats, module))
    assert got[("lvs_toa_loaded", ())] == 1
    assert got[("lvs_toa_syn_recv_sock_toa_total", ())] == 7
    assert got[("lvs_toa_opt_bad_len_total", ())] == 1
    assert got[("lvs_toa_probe_missed_total", ())] == 5
    assert got[("lvs_toa_other_total", (("counter", "brand_new"),))] == 2


def test_without_toa_the_real_server_role_says_so(tmp_path):
    got = scrape(collect.ToaCollector(tmp_path / "none", tmp_path / "toa"))
    assert got[("lvs_toa_loaded", ())] == 0
    assert {n for n, _ in got} == {"lvs_toa_loaded", "lvs_scrape_duration_seconds"}


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")
def test_promtool_accepts_a_scrape_of_each_role(monkeypatch, tmp_path):
    stats = tmp_path / "toa_stats"
    stats.write_text(TOA_FILE)
    for collector in (lb_collector(monkeypatch), collect.ToaCollector(stats, tmp_path)):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collector)
        done = subprocess.run(["promtool", "check", "metrics"],
                              input=cli.scrape_text(collector), text=True,
                              capture_output=True)
        assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- the command line
@pytest.fixture(autouse=True)
def niced(monkeypatch) -> list[int]:
    """The priorities main() asked for: in this process it would renice
    pytest's own thread for good (test_nice_lowers_the_priority does it in
    a child)."""
    asked: list[int] = []
    monkeypatch.setattr(cli, "set_nice", asked.append)
    return asked


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def test_the_exporter_runs_at_the_lowest_priority_unless_told(monkeypatch, niced):
    monkeypatch.setattr(procfs, "module_loaded", lambda name: False)
    run_cli("--once")
    run_cli("--once", "--nice", "5")
    assert niced == [19, 5]


SET_NICE = """
import os, sys
from ipvsadm_py.exporter.cli import set_nice, UsageError
try:
    set_nice(int(sys.argv[1]))
except UsageError as exc:
    print("usage:", exc)
else:
    print("nice", os.getpriority(os.PRIO_PROCESS, 0))
"""


@pytest.mark.parametrize("value, said", [("19", "nice 19"), ("7", "nice 7"),
                                         ("20", "usage: --nice 20: expected -20 to 19"),
                                         ("-21", "usage: --nice -21: expected -20 to 19")])
def test_nice_lowers_the_priority(value, said):
    out = subprocess.run([sys.executable, "-c", SET_NICE, value], cwd=ROOT, text=True,
                         capture_output=True, check=True).stdout
    assert out.strip() == said


def test_an_unknown_namespace_is_a_clear_error():
    status, out, err = run_cli("--netns", "no-such-ns-here", "--once")
    assert status == 2 and out == ""
    assert "no such network namespace" in err and "/run/netns/no-such-ns-here" in err


@pytest.mark.parametrize("listen", ["9291", "host:", "host:http", ":70000"])
def test_a_bad_listen_address_is_a_clear_error(listen):
    status, _, err = run_cli("--listen", listen)
    assert status == 2 and f"--listen {listen}: expected ADDR:PORT" in err


def test_ipvs_not_loaded_at_start_is_a_clear_error_without_loading_it(monkeypatch):
    monkeypatch.setattr(procfs, "module_loaded", lambda name, *a: False)
    monkeypatch.setattr(cli, "IPVS", lambda: pytest.fail("IPVS opened"))
    status, out, err = run_cli("--once")
    assert status == 1 and out == "" and "modprobe ip_vs" in err


def test_ipvs_not_loaded_at_start_is_a_clear_error(monkeypatch):
    def missing():
        raise NotLoaded("IPVS is not loaded")

    monkeypatch.setattr(cli, "IPVS", missing)
    status, out, err = run_cli("--once")
    assert status == 1 and out == ""
    assert "IPVS is not loaded" in err and "modprobe ip_vs" in err


def test_once_writes_a_scrape(monkeypatch):
    table, laddrs = lab_table()
    monkeypatch.setattr(cli, "IPVS", lambda: FakeIPVS(table, laddrs, {}))
    monkeypatch.setattr(collect, "IPVS", lambda: FakeIPVS(table, laddrs, {}))
    monkeypatch.setattr(cli, "BalancerCollector",
                        lambda **kw: collect.BalancerCollector(
                            lambda: FakeIPVS(table, laddrs, {}), **kw))
    status, out, _ = run_cli("--once")
    assert status == 0 and "lvs_up 1.0" in out


def test_listen_addresses():
    assert cli.split_listen("0.0.0.0:9291") == ("0.0.0.0", 9291)
    assert cli.split_listen("[::]:9291") == ("::", 9291)
    assert cli.split_listen(":9291") == ("0.0.0.0", 9291)


# ---------------------------------------------------------------- client lists
# `nft -j list counters` in a netns of the host (unshare -n) after
# `ipvsadm-py acl apply-keepalived` of a deny and an allow list and one
# dropped SYN each (tests/host/test_nft.py makes the same with real nft);
# the last object, a counter of another table, was added by hand.
NFT_COUNTERS = (
    '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", '
    '"json_schema_version": 1}}, {"counter": {"family": "inet", "name": '
    '"deny_tcp_127.0.0.1_80", "table": "lvs_toolkit", "handle": 3, "packets": 1, '
    '"bytes": 60}}, {"counter": {"family": "inet", "name": "allow_tcp_127.0.0.1_443", '
    '"table": "lvs_toolkit", "handle": 5, "packets": 1, "bytes": 60}}, '
    '{"counter": {"family": "inet", "name": "deny_any_10.0.0.1", "table": "filter", '
    '"handle": 2, "packets": 9, "bytes": 900}}]}')


class CountersNft:
    """``nft -j list counters`` answered from a text (None: no nft)."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def available(self) -> bool:
        return self.text is not None

    def counters(self):
        return json.loads(self.text)["nftables"]


def acl_samples(got):
    return {(name, labels): v for (name, labels), v in got.items() if "_acl_" in name}


def test_acl_drop_counters_from_captured_nft_output(monkeypatch):
    table, laddrs = lab_table()
    monkeypatch.setattr(collect, "lport_range", lambda: 60536)
    got = acl_samples(scrape(collect.BalancerCollector(
        lambda: FakeIPVS(table, laddrs, {}), lists=AccessLists(CountersNft(NFT_COUNTERS)))))
    deny = (("list", "deny"), ("port", "80"), ("proto", "tcp"), ("vip", "127.0.0.1"))
    allow = (("list", "allow"), ("port", "443"), ("proto", "tcp"), ("vip", "127.0.0.1"))
    assert got == {("lvs_acl_dropped_packets_total", deny): 1,
                   ("lvs_acl_dropped_bytes_total", deny): 60,
                   ("lvs_acl_dropped_packets_total", allow): 1,
                   ("lvs_acl_dropped_bytes_total", allow): 60}


def test_acl_counters_of_a_vip_wide_list_and_without_ip_vs():
    text = ('{"nftables": [{"counter": {"family": "inet", "name": "deny_any_2001:db8::1", '
            '"table": "lvs_toolkit", "packets": 5, "bytes": 400}}]}')
    got = scrape(collect.BalancerCollector(lambda: None, loaded=lambda: False,
                                           lists=AccessLists(CountersNft(text))))
    assert got[("lvs_up", ())] == 0          # nftables drops whether or not ip_vs is there
    assert acl_samples(got)[("lvs_acl_dropped_packets_total", (
        ("list", "deny"), ("port", "0"), ("proto", "any"), ("vip", "2001:db8::1")))] == 5


@pytest.mark.parametrize("text", [None, '{"nftables": []}'])
def test_no_table_or_no_nft_is_no_series_and_no_error(monkeypatch, text):
    table, laddrs = lab_table()
    monkeypatch.setattr(collect, "lport_range", lambda: 60536)
    got = scrape(collect.BalancerCollector(lambda: FakeIPVS(table, laddrs, {}),
                                           lists=AccessLists(CountersNft(text))))
    assert got[("lvs_up", ())] == 1 and not acl_samples(got)


def test_a_failing_nft_is_no_series_and_the_scrape_goes_on(monkeypatch):
    class Broken(CountersNft):
        def counters(self):
            raise NftError("nftables refused: Operation not permitted")

    table, laddrs = lab_table()
    monkeypatch.setattr(collect, "lport_range", lambda: 60536)
    got = scrape(collect.BalancerCollector(lambda: FakeIPVS(table, laddrs, {}),
                                           lists=AccessLists(Broken("{}"))))
    assert got[("lvs_up", ())] == 1 and not acl_samples(got)


# ---------------------------------------------------------------- the text written
def test_the_text_is_what_the_client_library_writes(monkeypatch):
    """/metrics is written by exporter.text, not generate_latest (speed):
    byte for byte the same, including label values that need escaping."""
    collector = lb_collector(monkeypatch)
    fams = collector.families()
    fams.add(names.EXT_OTHER, 7, ['odd "name" \\ with\nnewline'])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(type("Once", (), {"collect": lambda self: iter(fams)})())
    assert "".join(fams.lines()) == generate_latest(registry).decode()
    assert 'counter="odd \\"name\\" \\\\ with\\nnewline"' in "".join(fams.lines())


def wsgi(app, method="GET", path="/metrics", encoding=""):
    got = {}

    def start_response(status, headers):
        got["status"], got["headers"] = status, dict(headers)
    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path,
                         "HTTP_ACCEPT_ENCODING": encoding}, start_response))
    return got["status"], got["headers"], body


def test_metrics_are_served_as_text_and_gzip_when_accepted(monkeypatch):
    import gzip

    app = cli.metrics_app(lb_collector(monkeypatch))
    status, headers, body = wsgi(app)
    assert status == "200 OK" and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"\nlvs_up 1.0\n" in body and "Content-Encoding" not in headers
    status, headers, body = wsgi(app, encoding="gzip, deflate")
    assert headers["Content-Encoding"] == "gzip" and b"\nlvs_up 1.0\n" in gzip.decompress(body)
    assert wsgi(app, method="POST")[0].startswith("405")


# ---------------------------------------------------------------- keepalived health
KA_CONF = """
virtual_server 10.0.0.100 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.2.11 8080 {
        weight 1
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.2.12 8080 {
        weight 3
        inhibit_on_failure
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.0.2.13 8080 {
        TCP_CHECK { connect_timeout 1 }
    }
}
virtual_server 10.0.0.200 80 {
    protocol TCP
    real_server 10.0.2.21 80 {
    }
}
"""


def test_keepalived_health_compares_the_configuration_with_the_table(monkeypatch, tmp_path):
    """In the table with a weight: 1; weight 0 (inhibit_on_failure) or
    absent: 0; a service missing from the table: its servers 0."""
    conf = tmp_path / "keepalived.conf"
    conf.write_text(KA_CONF)
    table, laddrs = lab_table()     # 10.0.2.11 weight 1, 10.0.2.12 weight 0
    monkeypatch.setattr(collect, "lport_range", lambda: 60536)
    ka = health.KeepalivedConf(conf)
    ka.check()
    got = scrape(collect.BalancerCollector(lambda: FakeIPVS(table, laddrs, {}), keepalived=ka))
    healthy = {dict(lab)["rs"]: v for (name, lab), v in got.items()
               if name == "lvs_real_server_healthy"}
    assert healthy == {"10.0.2.11:8080": 1, "10.0.2.12:8080": 0, "10.0.2.13:8080": 0,
                       "10.0.2.21:80": 0}


def test_keepalived_health_follows_the_file_and_keeps_a_good_reading(monkeypatch, tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(KA_CONF)
    ka = health.KeepalivedConf(conf)
    ka.check()
    assert len(ka.services()) == 2
    conf.write_text(KA_CONF.split("virtual_server 10.0.0.200")[0])
    assert len(ka.services()) == 1
    conf.write_text("virtual_server 10.0.0.100 80 {\n    lb_algo nosuch_sched\n")
    assert len(ka.services()) == 1          # broken: the last good reading stays


def test_no_keepalived_conf_means_no_health_metric(monkeypatch):
    assert not any(name == "lvs_real_server_healthy" for name, _ in scrape(lb_collector(monkeypatch)))


@pytest.mark.parametrize("text,words", [(None, "No such file"),
                                         ("virtual_server 10.0.0.1 80 {\n", "keepalived")])
def test_a_bad_keepalived_conf_is_a_clear_error_at_start(tmp_path, text, words):
    path = tmp_path / "keepalived.conf"
    if text is not None:
        path.write_text(text)
    status, out, err = run_cli("--keepalived-conf", str(path), "--once")
    assert status == 2 and out == "" and f"--keepalived-conf {path}" in err, err
    assert words in err, err


def test_keepalived_conf_is_for_the_balancer(tmp_path):
    path = tmp_path / "keepalived.conf"
    path.write_text(KA_CONF)
    status, _, err = run_cli("--role", "rs", "--keepalived-conf", str(path), "--once")
    assert status == 2 and "--keepalived-conf is for the balancer" in err


def test_local_addresses_are_read_only_for_services_with_fullnat_servers():
    """One dump fewer per NAT/DR/TUN service (a scrape of 1,000 NAT services
    made 1,000 dumps for nothing)."""
    table, laddrs = lab_table()
    nat = svc("10.0.0.101", 80)
    table.append((nat, [dataclasses.replace(dest("10.0.2.31", 80), forward=Forward.MASQ)]))
    fake = FakeIPVS(table, laddrs, {})
    reading = collect.read_balancer(fake)
    web, v6 = table[0][0], table[1][0]
    assert fake.laddrs_asked == [web.key, v6.key]
    assert reading.laddrs[web.key] == laddrs[web.key]
