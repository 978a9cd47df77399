"""keepalived.conf as a configuration file: the dialects, the errors with
their lines, what is skipped, format detection, and the round trip
YAML -> Desired -> keepalived text -> Desired."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from netaddr import IPAddress

from ipvsadm_py import config, model
from ipvsadm_py.acl import AccessList, Entry, Kind, make_target, net_text, parse_network
from ipvsadm_py.cli import acl as acl_cli
from ipvsadm_py.config import cli as config_cli
from ipvsadm_py.config.keepalived_conf import laddr_entry, looks_like, parse_blocks, validate
from ipvsadm_py.config.keepalived_export import export_text, laddr_entries
from ipvsadm_py.config.plan import LiveState
from ipvsadm_py.nft import AccessLists
from ipvsadm_py.model import (Dest, Forward, LocalAddress, Protocol, SchedFlag, Service,
                              Timeouts, TunnelCsum, TunnelType)

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "ipvsadm" / "config"


def one(text: str) -> config.ServiceSpec:
    desired = validate(text, "k.conf")
    assert len(desired.services) == 1
    return desired.services[0]


def problems(text: str) -> list[str]:
    with pytest.raises(config.ConfigError) as info:
        validate(text, "k.conf")
    return info.value.problems


def addrs(spec: config.ServiceSpec) -> list[str]:
    return sorted(str(a) for a in spec.laddrs)


# ------------------------------------------------------------------ words and blocks
def test_braces_comments_and_quotes_are_read_as_keepalived_reads_them():
    nodes = parse_blocks('a 1 { b 2 # c {\n  d "x { y" } ! e }\nf\n{ g }\nh')
    assert [(n.word, n.args, n.line) for n in nodes] == [("a", ["1"], 1), ("f", [], 3),
                                                         ("h", [], 5)]
    assert [(n.word, n.args) for n in nodes[0].block] == [("b", ["2"]), ("d", ["x { y"])]
    assert [n.word for n in nodes[1].block] == ["g"]


# ------------------------------------------------------------------ the dialects
SOURCE_DESIGN = """\
virtual_server 10.0.0.100 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind FNAT                 # FULLNAT for every real server of the service
    protocol TCP
    syn_proxy
    local_address {
        192.168.1.1
        192.168.1.2
    }
    local_address { 192.168.1.2 192.168.1.3 }
    real_server 192.168.10.11 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
"""


def test_source_design_local_address_block_and_syn_proxy():
    spec = one(SOURCE_DESIGN)
    svc = spec.service
    assert (svc.describe(), svc.scheduler, svc.synproxy) == ("TCP 10.0.0.100:80", "wrr", True)
    assert addrs(spec) == ["192.168.1.1", "192.168.1.2", "192.168.1.3"]   # union, once each
    assert [(d.describe(), d.forward, d.weight) for d in spec.dests] == [
        ("192.168.10.11:8080", Forward.FULLNAT, 1)]


def test_dpvs_local_address_group_ranges_and_device_names():
    spec = one("""\
virtual_server 10.0.0.100 80 {
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1          ! the group is defined after its use
    syn_proxy off
    real_server 192.168.10.11 80 { weight 2 }
}
local_address_group laddr_g1 {
    192.168.1.1-4
    192.168.2.10 dpdk0  192.168.2.20-192.168.2.21 dpdk1
}
""")
    assert addrs(spec) == ["192.168.1.1", "192.168.1.2", "192.168.1.3", "192.168.1.4",
                           "192.168.2.10", "192.168.2.20", "192.168.2.21"]
    assert not spec.service.synproxy and spec.dests[0].weight == 2


def test_ipv6_service_with_laddr_range_and_tunnel_options():
    spec = one("""\
virtual_server 2001:db8::100 443 {
    lb_algo sh
    sh-port
    sh-fallback
    lvs_method FULLNAT
    protocol UDP
    persistence_timeout 600
    persistence_granularity 64
    persistence_engine sip
    local_address {
        2001:db8:3::1-a
    }
    real_server 2001:db8:2::11 8443 {
        weight 3
        uthreshold 100
        lthreshold 10
    }
    real_server 10.0.2.40 443 {
        lvs_method TUN type gue port 6080 remcsum
    }
}
""")
    svc = spec.service
    assert (svc.af, svc.protocol, svc.timeout, svc.netmask, svc.pe_name) == \
        (model.AF_INET6, Protocol.UDP, 600, 64, "sip")
    assert svc.sched_flags == {SchedFlag.FLAG_1, SchedFlag.FLAG_2}
    assert len(spec.laddrs) == 10 and str(spec.laddrs[-1]) == "2001:db8:3::a"
    fnat, tun = spec.dests
    assert (fnat.forward, fnat.port, fnat.u_threshold, fnat.l_threshold) == \
        (Forward.FULLNAT, 8443, 100, 10)
    assert (tun.forward, tun.af, tun.tun_type, tun.tun_port, tun.tun_csum, tun.weight) == \
        (Forward.TUNNEL, model.AF_INET, TunnelType.GUE, 6080, TunnelCsum.REMCSUM, 1)


def test_fwmark_family_from_ip_family_or_real_servers_and_ports_as_keepalived():
    desired = validate("""\
virtual_server fwmark 7 {
    ip_family inet6
    lb_kind DR
    persistence_timeout
}
virtual_server fwmark 8 {
    lb_algo rr
    real_server 2001:db8:2::12 80 {
        lvs_method DR
    }
    real_server 2001:db8:2::13 8080 {
    }
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_kind DR
    real_server 10.0.2.11 { }
}
""", "k.conf")
    mark7, mark8, web = desired.services
    assert (mark7.service.af, mark7.service.timeout, mark7.dests) == (model.AF_INET6, 360, [])
    assert mark8.service.af == model.AF_INET6
    # DR of a mark: the port is cleared; NAT keeps its own
    assert [(d.port, d.forward) for d in mark8.dests] == [(0, Forward.ROUTE),
                                                           (8080, Forward.MASQ)]
    assert web.dests[0].port == 80           # no port: the virtual server's


def test_virtual_server_group_expands_to_services():
    desired = validate("""\
virtual_server_group web {
    10.0.0.1-3 80
    fwmark 9
}
virtual_server_group web6 { 2001:db8::1-2 80
    fwmark 9 inet6 }
virtual_server group web {
    protocol TCP
    lb_algo rr
    real_server 10.0.2.11 8080 { weight 1 }
}
virtual_server group web6 {
    protocol TCP
    real_server 2001:db8:2::11 8080 { weight 1 }
}
""", "k.conf")
    assert [s.service.describe() for s in desired.services] == [
        "TCP 10.0.0.1:80", "TCP 10.0.0.2:80", "TCP 10.0.0.3:80", "FWM 9",
        "TCP [2001:db8::1]:80", "TCP [2001:db8::2]:80", "FWM 9 IPv6"]
    assert {s.dests[0].port for s in desired.services} == {8080}
    # an IPv4 real server of an IPv6 NAT service is refused, as in YAML
    assert any("k.conf:8:" in p and "other address family" in p
               for p in problems("virtual_server_group g {\n 2001:db8::1 80\n}\n"
                                 "virtual_server group g {\n protocol TCP\n"
                                 " lb_kind NAT\n\n real_server 10.0.2.11 80 { }\n}\n"))


def test_virtual_server_group_prefix_is_not_supported():
    found = problems("virtual_server_group g {\n  10.0.0.0/30 80\n}\n"
                     "virtual_server group g {\n  protocol TCP\n}\n")
    assert found == ["k.conf:2: virtual_server_group g: a prefix entry (10.0.0.0/30) is not "
                     "supported here; write a range a.b.c.d-e"]


def test_defaults_are_keepalived_s():
    spec = one("virtual_server 10.0.0.1 53 {\n  weight 4\n  real_server 10.0.2.1 53 {\n  }\n}\n")
    svc, dest = spec.service, spec.dests[0]
    assert (svc.protocol, svc.scheduler, dest.forward, dest.weight) == \
        (Protocol.UDP, "wlc", Forward.MASQ, 4)


# ------------------------------------------------------------------ what is skipped
def test_non_ipvs_sections_are_skipped():
    spec = one("""\
! Configuration File for keepalived
include /etc/keepalived/other.conf
global_defs {
    router_id lb1
    lvs_timeouts tcp 900 tcpfin 120 udp 300
}
vrrp_script chk {
    script "/bin/check { x"
}
vrrp_instance VI_1 {
    state MASTER
    virtual_ipaddress {
        10.0.4.100/24 dev eth0
    }
    notify_master "/bin/echo master }"
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    delay_loop 2
    quorum 1
    sorry_server 10.0.9.9 80
    real_server 10.0.2.11 80 {
        inhibit_on_failure
        notify_up /bin/up
        HTTP_GET {
            url {
                path /
                status_code 200
            }
        }
        MISC_CHECK { misc_path "/bin/true" }
    }
}
""")
    assert spec.service.describe() == "TCP 10.0.0.1:80"
    assert [d.describe() for d in spec.dests] == ["10.0.2.11:80"]   # not the sorry server
    desired = validate("global_defs {\n}\n", "k.conf")
    assert (desired.services, desired.timeouts, desired.daemons, desired.sysctls) == \
        ([], None, None, {})


# ------------------------------------------------------------------ errors
BAD = [
    ("virtual_server 10.0.0.1 80 {\n  protocol TCP\n", 1,
     "the block opened here is not closed (missing '}')"),
    ("global_defs {\n}\n}\n", 3, "'}' without a block to close"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algoo rr\n}\n", 3,
     "virtual server [10.0.0.1]:tcp:80: unknown keyword 'lb_algoo'"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.2.1 80 {\n"
     "  weight x\n }\n}\n", 4,
     "virtual server [10.0.0.1]:tcp:80: real server 10.0.2.1:80: weight must be a number"),
    ("virtual_server 10.0.0.300 80 {\n}\n", 1,
     "virtual_server: invalid virtual server ip address/port 10.0.0.300 80"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind FNAT\n"
     " laddr_group_name nope\n real_server 10.0.2.1 80 { }\n}\n", 4,
     "virtual server [10.0.0.1]:tcp:80: local_address_group nope is not defined"),
    ("local_address_group g {\n 10.0.3.1 127.0.0.1\n}\nvirtual_server 10.0.0.1 80 {\n"
     " protocol TCP\n lb_kind FNAT\n laddr_group_name g\n real_server 10.0.2.1 80 { }\n}\n", 7,
     "local_address_group g has errors (reported at its lines)"),
    ("local_address_group g {\n 10.0.3.1 127.0.0.1\n}\n", 2,
     "local_address_group g: invalid local address '127.0.0.1': a loopback address"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind FNAT\n"
     " real_server 10.0.2.1 80 { }\n}\n", 3,
     "virtual server [10.0.0.1]:tcp:80: FNAT needs local addresses (local_address { ... } or "
     "laddr_group_name)"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind FNAT\n"
     " local_address {\n  2001:db8::1\n }\n real_server 10.0.2.1 80 { }\n}\n", 4,
     "virtual server [10.0.0.1]:tcp:80 is IPv4: local address 2001:db8::1 is IPv6"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind DR\n syn_proxy\n"
     " real_server 10.0.2.1 80 { }\n}\n", 4,
     "virtual server [10.0.0.1]:tcp:80: syn_proxy needs NAT or FNAT real servers, "
     "[10.0.2.1]:80 uses DR"),
    ("virtual_server 10.0.0.1 80 {\n protocol SCTP\n lb_kind FNAT\n local_address { 10.0.3.1 }\n"
     " real_server 10.0.2.1 80 { }\n}\n", 3,
     "virtual server [10.0.0.1]:sctp:80: FNAT forwards TCP and UDP only"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n local_address { 10.0.3.1 }\n"
     " real_server 10.0.2.1 80 { }\n}\n", 3,
     "virtual server [10.0.0.1]:tcp:80: local addresses are for FNAT real servers"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n ops\n}\n", 3,
     "virtual server [10.0.0.1]:tcp:80: one packet scheduling requires UDP"),
    ("virtual_server 10.0.0.1 80 {\n protocol UDP\n syn_proxy\n}\n", 3,
     "virtual server [10.0.0.1]:udp:80: syn_proxy is for TCP services"),
    ("virtual_server 10.0.0.1 0 {\n protocol TCP\n}\n", 1,
     "virtual server [10.0.0.1]:tcp:0: zero port only valid for persistent services"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n sh-port\n}\n", 4,
     "virtual server [10.0.0.1]:tcp:80: sh-port only applies to the sh scheduler, not rr"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind DR\n"
     " real_server 10.0.2.1 8080 { }\n}\n", 4,
     "virtual server [10.0.0.1]:tcp:80 and real server 10.0.2.1:8080 ports don't match"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.2.1 80 {\n"
     "  lvs_method TUN type gue\n }\n}\n", 4, "lvs_method: gue tunnels require a port"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.2.1 80 {\n"
     "  lvs_method TUN csum\n }\n}\n", 4,
     "lvs_method: ipip tunnels do not support the csum option"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind MASQ\n}\n", 3,
     "lb_kind: unknown [MASQ] routing method"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.2.1 80 { }\n"
     " real_server 10.0.2.1 80 { }\n}\n", 4,
     "real server 10.0.2.1:80 is duplicated (also at line 3)"),
    ("virtual_server 10.0.0.1 80 {\n protocol TCP\n}\nvirtual_server 10.0.0.1 80 {\n"
     " protocol TCP\n}\n", 4, "virtual server [10.0.0.1]:tcp:80 is also defined at line 1"),
    ("virtual_server 10.0.0.1 80 {\n syn_proxy maybe\n}\n", 2,
     "syn_proxy takes on/off, not 'maybe'"),
    ("virtual_server group nope {\n}\n", 1,
     "virtual_server: virtual_server_group nope is not defined"),
    ("virtual_server fwmark 5 {\n lb_kind FNAT\n local_address { 10.0.3.1 }\n"
     " real_server 10.0.2.1 80 { }\n}\n", 3,
     "virtual server FWM 5: local addresses need an address/port service, not a fwmark"),
]


@pytest.mark.parametrize("text,line,message", BAD)
def test_errors_name_the_line(text, line, message):
    found = problems(text)
    assert any(p.startswith(f"k.conf:{line}: ") and message in p for p in found), found


def test_every_problem_is_reported_and_nothing_is_returned():
    found = problems("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algoo rr\n}\n"
                     "virtual_server 10.0.0.2 80 {\n protocol TCP\n ops\n}\n"
                     "virtual_server 10.0.0.3 80 {\n protocol TCP\n}\n")
    assert [p.split(":")[1] for p in found] == ["3", "7"]


@pytest.mark.parametrize("word,why", [
    ("10.0.3.1/30", "a prefix is not a local address"),
    ("10.0.3.9-2", "the range ends before it starts"),
    ("10.0.0.1-10.0.8.1", "the range is longer than 1024 addresses"),
    ("10.0.3.1-2001:db8::1", "the range ends in the other address family"),
    ("2001:db8::1-2001:db9::1", "an IPv6 range may vary the last 32 bits only"),
    ("10.0.3.1-300", "the range end is not a number"),
    ("224.0.0.1", "a multicast address"),
    ("::ffff:10.0.0.1", "an IPv4-mapped address"),
    ("lb1", "not an IPv4 or IPv6 address"),
])
def test_local_address_entries_refused(word, why):
    with pytest.raises(ValueError, match=why):
        laddr_entry(word)


# ------------------------------------------------------------------ format detection
def test_apply_and_validate_detect_the_format(tmp_path):
    conf = tmp_path / "lb.conf"
    conf.write_text(SOURCE_DESIGN)
    yaml_file = tmp_path / "lb.yaml"
    yaml_file.write_text((CONFIGS / "good.yaml").read_text())
    other = tmp_path / "lb.txt"
    other.write_text("# keepalived\n" + SOURCE_DESIGN)
    assert len(config_cli.load(str(conf)).services) == 1
    assert len(config_cli.load(str(other)).services) == 1        # by its content
    assert len(config_cli.load(str(yaml_file)).services) == 5
    with pytest.raises(config.ConfigError, match="not valid YAML"):
        config_cli.load(str(conf), "yaml")


def test_validate_command_reads_keepalived_files(tmp_path, capsys):
    from ipvsadm_py import cli

    conf = tmp_path / "lb.conf"
    conf.write_text(SOURCE_DESIGN)
    assert cli.main(["validate", str(conf)]) == 0
    assert capsys.readouterr().out == f"{conf}: valid (1 services)\n"
    conf.write_text(SOURCE_DESIGN.replace("weight 1", "weight -1"))
    assert cli.main(["validate", "--format", "keepalived", str(conf)]) == 2
    assert f"{conf}:13: virtual server" in capsys.readouterr().err


# ------------------------------------------------------------------ export, round trip
def live_of(desired: config.Desired) -> LiveState:
    """A live state that holds exactly what a file asks for."""
    return LiveState([(s.service, s.dests) for s in desired.services],
                     {s.service.key: [LocalAddress(a) for a in s.laddrs]
                      for s in desired.services},
                     Timeouts(), {}, [])


def comparable(desired: config.Desired) -> dict[tuple, tuple]:
    return {s.service.key: (s.service, sorted(s.dests, key=lambda d: d.key),
                            sorted(int(a) for a in s.laddrs)) for s in desired.services}


def test_round_trip_yaml_to_keepalived_and_back():
    from_yaml = config.load(str(CONFIGS / "good.yaml"))
    text = export_text(live_of(from_yaml))
    back = validate(text, "export.conf")
    assert comparable(back) == comparable(from_yaml)
    assert config.plan(back, live_of(from_yaml)) == []
    assert "10.0.3.10-12" in text and "syn_proxy" in text and "persistence_engine sip" in text
    assert "virtual_server 10.0.0.101 0 {\n    protocol TCP\n    lb_algo wlc\n    # no real " \
        "servers: keepalived leaves this service out" in text


def test_round_trip_keepalived_text_is_stable():
    desired = validate(SOURCE_DESIGN, "k.conf")
    text = export_text(live_of(desired))
    assert export_text(live_of(validate(text, "again.conf"))) == text


def test_what_keepalived_cannot_say_is_left_out_with_a_comment():
    svc = Service(addr=IPAddress("10.0.0.1"), port=80, synproxy=True)
    dests = [Dest(addr=IPAddress("10.0.2.1"), port=80, forward=Forward.ROUTE),
             Dest(addr=IPAddress("10.0.2.2"), port=80, forward=Forward.BYPASS),
             Dest(addr=IPAddress("127.0.0.1"), port=80, forward=Forward.LOCAL)]
    odd = Service(protocol=47, addr=IPAddress("10.0.0.2"), port=1)
    live = LiveState([(svc, dests), (odd, [])],
                     {svc.key: [LocalAddress(IPAddress("10.0.3.1"))]}, Timeouts(), {}, [])
    text = export_text(live)
    assert "# left out: real server 10.0.2.2:80 (forwarding method bypass)" in text
    assert "# left out: syn_proxy" in text and "# left out: local addresses" in text
    assert "# left out: 47 10.0.0.2:1" in text or "keepalived has no protocol 47" in text
    back = validate(text, "export.conf").services[0]
    assert [d.forward for d in back.dests] == [Forward.ROUTE, Forward.MASQ]   # local: NAT


def test_laddr_entries_are_ranges_keepalived_reads():
    runs = [[IPAddress(f"10.0.0.{i}") for i in range(1, 4)],
            [IPAddress("10.0.0.255"), IPAddress("10.0.1.0")],
            [IPAddress(f"2001:db8::{i:x}") for i in range(8, 0x22)],
            [IPAddress(int(IPAddress("10.1.0.0")) + i, 4) for i in range(1, 1500)]]
    for addresses in runs:
        entries = laddr_entries(addresses)
        assert sorted(a for e in entries for a in laddr_entry(e)) == sorted(addresses)
    assert laddr_entries(runs[0]) == ["10.0.0.1-3"]
    assert laddr_entries(runs[2]) == ["2001:db8::8-21"]
    assert len(laddr_entries(runs[3])) == 2                     # at most 1024 per entry


# ---------------------------------------------------------------- client lists
LISTS_CONF = """
deny_group abusers {
    203.0.113.0/24
    198.51.100.7 timeout 1h
    2001:db8:bad::/48
}
deny_group more { 192.0.2.99 }
allow_group partners { 192.0.2.0/25 10.9.0.0/16 }
virtual_server 10.0.0.100 80 {
    lb_kind NAT
    protocol TCP
    deny_group abusers
    deny_group more
    allow_group partners
    real_server 10.0.2.11 80 { weight 1 }
}
virtual_server 2001:db8::100 443 {
    protocol TCP
    deny_group abusers
    real_server 2001:db8:2::11 443 { weight 1 }
}
virtual_server 10.0.0.101 53 {
    protocol UDP
    real_server 10.0.2.11 53 { weight 1 }
}
"""


def lists_of(desired):
    return {(lst.kind.value, lst.target.describe()):
            sorted((net_text(e.network), e.timeout) for e in lst.entries.values())
            for lst in desired.access_lists}


def test_groups_become_the_lists_of_their_services():
    desired = validate(LISTS_CONF)
    assert desired.owns_lists
    assert lists_of(desired) == {
        ("deny", "tcp 10.0.0.100:80"): [("192.0.2.99", None), ("198.51.100.7", 3600),
                                        ("203.0.113.0/24", None)],
        ("allow", "tcp 10.0.0.100:80"): [("10.9.0.0/16", None), ("192.0.2.0/25", None)],
        ("deny", "tcp [2001:db8::100]:443"): [("2001:db8:bad::/48", None)],
    }


def test_a_file_without_groups_leaves_the_lists_alone():
    plain = "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.2.1 80 {\n }\n}\n"
    desired = validate(plain)
    assert not desired.owns_lists and not desired.access_lists


def test_group_blocks_mark_a_keepalived_file():
    assert looks_like("deny_group g { 192.0.2.1 }\n")


@pytest.mark.parametrize("text,message", [
    ("deny_group g { 203.0.113.5/24 }", "2: deny_group g: 203.0.113.5/24 has host bits set"),
    ("deny_group g { nonsense }", "deny_group g: not an address or prefix: 'nonsense'"),
    ("deny_group g { 192.0.2.1 timeout soon }", "192.0.2.1: not a duration: 'soon'"),
    ("deny_group g { 192.0.2.1 timeout }", "192.0.2.1: timeout needs a duration"),
    ("deny_group g { 192.0.2.1 192.0.2.1 }", "deny_group g: 192.0.2.1 is listed twice"),
    ("deny_group g { 192.0.2.0/24 192.0.2.7 }", "deny list: 192.0.2.7 overlaps 192.0.2.0/24"),
    ("deny_group g { 192.0.2.1 }\ndeny_group g { 192.0.2.2 }",
     "deny_group g is defined twice (also at line 2)"),
    ("deny_group h { 192.0.2.1 }", "deny_group g is not defined"),
    ("allow_group g { 2001:db8::/32 }", "allow_group g has no IPv4 entries"),
    ("deny_group", "deny_group needs a name and a block"),
])
def test_list_errors_name_their_line(text, message):
    conf = (f"\n{text}\nvirtual_server 10.0.0.100 80 {{\n    protocol TCP\n"
            f"    {'allow' if 'allow_group g' in text else 'deny'}_group g\n"
            "    real_server 10.0.2.11 80 { weight 1 }\n}\n")
    with pytest.raises(config.ConfigError) as info:
        validate(conf, "ka.conf")
    assert any(message in p for p in info.value.problems), info.value.problems
    assert all(p.startswith("ka.conf:") for p in info.value.problems)


def test_groups_on_a_fwmark_service_are_an_error():
    conf = ("deny_group g { 192.0.2.1 }\nvirtual_server fwmark 7 {\n    deny_group g\n"
            "    real_server 10.0.2.11 80 { weight 1 }\n}\n")
    with pytest.raises(config.ConfigError, match="3: virtual server FWM 7: deny_group needs "
                       "a service with an address and a port"):
        validate(conf)


def test_a_group_of_servers_gives_each_service_the_lists():
    conf = ("deny_group g { 192.0.2.1 }\nvirtual_server_group web { 10.0.0.1-2 80 }\n"
            "virtual_server group web {\n    protocol TCP\n    deny_group g\n"
            "    real_server 10.0.2.11 80 { weight 1 }\n}\n")
    assert set(lists_of(validate(conf))) == {("deny", "tcp 10.0.0.1:80"),
                                             ("deny", "tcp 10.0.0.2:80")}


def test_lists_round_trip_through_export():
    desired = validate(LISTS_CONF)
    vip_wide = AccessList(Kind.DENY, make_target("10.0.0.100"),
                          {parse_network("192.0.2.7"): Entry(parse_network("192.0.2.7"))})
    lists = [*desired.access_lists, vip_wide]
    text = export_text(live_of(desired), lists)
    assert "deny_group deny_tcp_10.0.0.100_80 {" in text
    assert "    deny_group deny_tcp_10.0.0.100_80" in text
    assert "# left out: the deny list of 10.0.0.100 (all ports)" in text
    again = validate(text)
    assert again.owns_lists and lists_of(again) == lists_of(desired)


def test_export_writes_what_is_left_of_a_timeout():
    desired = validate(LISTS_CONF)
    lst = next(x for x in desired.access_lists if x.kind == Kind.DENY and x.target.port == 80)
    net = parse_network("198.51.100.7")
    lst.entries[net] = Entry(net, 3600, 1234)
    assert "    198.51.100.7 timeout 1234" in export_text(live_of(desired),
                                                       desired.access_lists)


def test_apply_keepalived_sends_the_lists_in_one_transaction(tmp_path):
    from tests.unit.test_nft import FakeNft

    conf = tmp_path / "keepalived.conf"
    conf.write_text(LISTS_CONF)
    fake = FakeNft()
    out, err = io.StringIO(), io.StringIO()
    assert acl_cli.main(["acl", "apply-keepalived", "-f", str(conf)], out, err,
                        AccessLists(fake)) == 0
    assert len(fake.sent) == 1 and "+ deny tcp 10.0.0.100:80 203.0.113.0/24" in out.getvalue()
    conf.write_text(LISTS_CONF.replace("203.0.113.0/24", "203.0.113.1/24"))
    out, err = io.StringIO(), io.StringIO()
    assert acl_cli.main(["acl", "apply-keepalived", "-f", str(conf)], out, err,
                        AccessLists(fake)) == 2
    assert "deny_group abusers: 203.0.113.1/24 has host bits set" in err.getvalue()
    assert "nothing was changed" in err.getvalue()
    assert len(fake.sent) == 1                  # nothing sent for a bad file
