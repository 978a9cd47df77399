"""apply/export: YAML validation (good and bad files), plans, export round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from netaddr import IPAddress

from ipvsadm_py import config, model
from ipvsadm_py.model import Dest, Forward, SchedFlag, Service, Timeouts, TunnelCsum, TunnelType
from ipvsadm_py.verbs import Verb

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "ipvsadm" / "config"


def test_good_file_is_understood():
    desired = config.load(str(CONFIGS / "good.yaml"))
    assert len(desired.services) == 5
    web = desired.services[0]
    assert web.service.describe() == "TCP 10.0.0.100:80" and web.service.synproxy
    assert [str(a) for a in web.laddrs] == ["10.0.3.1", "10.0.3.10", "10.0.3.11", "10.0.3.12",
                                            "10.0.4.0", "10.0.4.1", "10.0.4.2", "10.0.4.3"]
    assert [d.forward for d in web.dests] == [Forward.FULLNAT, Forward.FULLNAT]
    assert web.dests[0].port == 8080 and web.dests[1].u_threshold == 100
    dns = desired.services[1].service
    assert dns.sched_flags == {SchedFlag.FLAG_1, SchedFlag.FLAG_2}
    assert dns.onepacket and desired.services[1].dests[0].port == 53
    sctp = desired.services[2]
    assert sctp.service.netmask == 64 and sctp.service.timeout == 600
    assert sctp.dests[1].tun_type == TunnelType.GUE \
        and sctp.dests[1].tun_csum == TunnelCsum.REMCSUM
    fwm = desired.services[3].service
    assert (fwm.fwmark, fwm.af, fwm.timeout) == (7, model.AF_INET6, 360)
    assert desired.services[4].service.netmask == 0xFFFFFF00
    assert desired.timeouts == Timeouts(900, 120, 300)
    assert desired.sysctls == {"expire_nodest_conn": 1}
    assert desired.daemons[0].mcast_port == 8849


def test_bad_file_reports_every_problem_with_its_line():
    with pytest.raises(config.ConfigError) as info:
        config.load(str(CONFIGS / "bad.yaml"))
    problems = info.value.problems
    text = "\n".join(problems)
    expected = [
        (3, "services[0].protocol: must be one of tcp, udp, sctp"),
        (7, "services[1].address: not an IP address"),
        (10, "services[1].dests[0].weight: must be an integer"),
        (6, "services[1]: FULLNAT real servers need local addresses"),
        (14, "services[2].port: must be an integer 0-65535"),
        (15, "services[2]: unknown key 'colour'"),
        (18, "services[3].laddr_group: no local_address_groups entry 'nothere'"),
        (16, "services[3]: port 0 (or none) needs persistent"),
        (19, "timeouts.tcp: must be an integer"),
    ]
    for line, message in expected:
        assert f"bad.yaml:{line}: {message}" in text, (line, message, text)


@pytest.mark.parametrize("text,message", [
    ("services: [", "not valid YAML"),
    ("services: {}", "services: must be a list"),
    ("version: 2", "version: must be an integer 1-1"),
    ("services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80}\n"
     "  - {protocol: tcp, address: 10.0.0.1, port: 80}", "also defined at line 2"),
    ("services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, ops: true}",
     "one-packet scheduling is only for UDP"),
    ("services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, laddrs: [10.0.3.0-10.2.0.0]}",
     "at most 65536"),
    ("services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, sched_flags: [sh-port]}",
     "needs scheduler sh"),
    ("services:\n  - protocol: tcp\n    address: 10.0.0.1\n    port: 80\n    dests:\n"
     "      - {address: 10.0.2.1, forward: route, port: 81}", "keep the service port"),
    ("services:\n  - protocol: tcp\n    address: 10.0.0.1\n    port: 80\n    dests:\n"
     "      - {address: 10.0.2.1, forward: masq, tunnel: {type: gre}}", "need forward: tunnel"),
    ("services:\n  - protocol: tcp\n    address: 10.0.0.1\n    port: 80\n    dests:\n"
     "      - {address: '2001:db8::1', forward: masq}", "only for tunneling"),
    ("daemons: [{state: master}, {state: master}]", "at most one master"),
    ("daemons: [{state: master, mcast_group: 10.0.0.1}]", "is not multicast"),
    ("sysctls: {'a/b': 1}", "not a sysctl name"),
])
def test_bad_snippets(text, message):
    with pytest.raises(config.ConfigError) as info:
        config.validate(text, "x.yaml")
    assert message in str(info.value)


# ------------------------------------------------------------------ plans
def _live(table=(), laddrs=None, timeouts=Timeouts(900, 120, 300), sysctls=None,
          daemons=()):
    return config.LiveState(list(table), laddrs or {}, timeouts,
                            sysctls if sysctls is not None else {"expire_nodest_conn": 0},
                            list(daemons))


SIMPLE = """
services:
  - protocol: tcp
    address: 10.0.0.1
    port: 80
    scheduler: rr
    dests:
      - {address: 10.0.2.11, forward: masq, weight: 2}
      - {address: 10.0.2.12, forward: masq}
"""


def _svc(scheduler="rr"):
    return Service(addr=IPAddress("10.0.0.1"), port=80, scheduler=scheduler)


def _dest(last, weight=1):
    return Dest(addr=IPAddress(f"10.0.2.{last}"), port=80, forward=Forward.MASQ,
                weight=weight)


def test_plan_from_empty_adds_everything():
    steps = config.plan(config.validate(SIMPLE), _live())
    assert [(s.action, s.what) for s in steps] == [("add", "service"), ("add", "dest"),
                                                   ("add", "dest")]
    assert all(s.request is not None for s in steps)


def test_plan_is_empty_when_live_matches():
    live = _live([(_svc(), [_dest(11, 2), _dest(12)])])
    assert config.plan(config.validate(SIMPLE), live) == []


def test_weight_change_edits_the_dest_and_keeps_the_service():
    live = _live([(_svc(), [_dest(11, 5), _dest(12)])])
    steps = config.plan(config.validate(SIMPLE), live)
    assert [(s.action, s.what) for s in steps] == [("edit", "dest")]
    assert steps[0].request.verb == Verb.EDIT_DEST and steps[0].request.dest.weight == 2


def test_scheduler_change_edits_the_service():
    live = _live([(_svc("wlc"), [_dest(11, 2), _dest(12)])])
    steps = config.plan(config.validate(SIMPLE), live)
    assert [(s.action, s.what, s.request.verb) for s in steps] == [("edit", "service",
                                                                    Verb.EDIT_SERVICE)]


def test_extras_are_deleted_unless_no_prune():
    extra = Service(addr=IPAddress("10.9.9.9"), port=80)
    live = _live([(_svc(), [_dest(11, 2), _dest(12), _dest(13)]), (extra, [])])
    steps = config.plan(config.validate(SIMPLE), live)
    assert sorted((s.action, s.what, s.text.split()[1]) for s in steps) == [
        ("delete", "dest", "10.0.0.1:80"), ("delete", "service", "10.9.9.9:80")]
    assert config.plan(config.validate(SIMPLE), live, prune=False) == []


def test_laddrs_timeouts_sysctls_and_daemons_are_planned():
    text = SIMPLE + """    laddrs: [10.0.3.1-10.0.3.2]
timeouts: {tcp: 100}
sysctls: {expire_nodest_conn: 1}
daemons: [{state: backup, mcast_interface: eth1, syncid: 9}]
"""
    la = model.LocalAddress(IPAddress("10.0.3.2"))
    old = model.LocalAddress(IPAddress("10.0.3.9"))
    live = _live([(_svc(), [_dest(11, 2), _dest(12)])], {_svc().key: [la, old]})
    steps = config.plan(config.validate(text), live)
    kinds = [(s.action, s.what) for s in steps]
    assert kinds == [("edit", "sysctl"), ("edit", "timeouts"), ("add", "laddr"),
                     ("delete", "laddr"), ("add", "daemon")]
    assert steps[1].request.timeouts.tcp == 100
    assert steps[1].request.timeouts.tcp_fin == 120  # unchanged


def test_unknown_sysctl_is_refused_at_plan_time():
    with pytest.raises(config.InvalidInput, match="does not exist"):
        config.plan(config.validate("sysctls: {fullnat_lport_min: 6000}"), _live())


def test_plan_text():
    steps = config.plan(config.validate(SIMPLE), _live())
    assert config.plan_text(steps).splitlines()[0] == "+ service TCP 10.0.0.1:80 rr"
    assert config.plan_text([]) == "nothing to change\n"


# ------------------------------------------------------------------ export
def test_export_validates_and_plans_nothing():
    desired = config.load(str(CONFIGS / "good.yaml"))
    # live state = what the good file asks for
    table = [(spec.service, spec.dests) for spec in desired.services]
    laddrs = {spec.service.key: [model.LocalAddress(a) for a in spec.laddrs]
              for spec in desired.services if spec.laddrs}
    live = _live(table, laddrs, desired.timeouts, {"expire_nodest_conn": 1},
                 desired.daemons)
    text = config.export_text(live)
    again = config.validate(text, "export.yaml")
    assert config.plan(again, live) == []
    doc = yaml.safe_load(text)
    assert doc["services"][0]["laddrs"] == ["10.0.3.1", "10.0.3.10-10.0.3.12",
                                            "10.0.4.0-10.0.4.3"]


def test_daemon_defaults_of_the_kernel_are_not_a_change():
    text = "daemons: [{state: master, mcast_interface: d0, syncid: 3}]"
    running = model.Daemon("master", "d0", 3, 1472, IPAddress("224.0.0.81"), 8848, 1)
    assert config.plan(config.validate(text), _live(daemons=[running])) == []
    moved = model.Daemon("master", "d0", 4, 1472, IPAddress("224.0.0.81"), 8848, 1)
    steps = config.plan(config.validate(text), _live(daemons=[moved]))
    assert [(s.action, s.what) for s in steps] == [("delete", "daemon"), ("add", "daemon")]


def test_validate_command(capsys):
    from ipvsadm_py import cli
    assert cli.main(["validate", str(CONFIGS / "good.yaml")]) == 0
    assert "valid (5 services)" in capsys.readouterr().out
    assert cli.main(["validate", str(CONFIGS / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:3: services[0].protocol" in err and "nothing was applied" in err


# ------------------------------------------------------------------ allow / deny lists
LISTS = """
services:
  - protocol: tcp
    address: 10.0.0.100
    port: 80
    dests: [{address: 10.0.2.11, forward: masq}]
    deny:
      - 203.0.113.0/24
      - {address: 198.51.100.7, timeout: 1h}
    allow: [10.0.1.0/24]
vips:
  - address: 2001:db8::100
    deny: ["2001:db8:bad::/48"]
  - {address: 10.0.0.200, protocol: udp, port: 53, allow: [192.0.2.0/24]}
"""


def test_lists_of_services_and_vips():
    from ipvsadm_py.acl import Kind, make_target
    desired = config.validate(LISTS, "x.yaml")
    got = {(lst.kind, lst.target): lst for lst in desired.access_lists}
    assert set(got) == {(Kind.DENY, make_target("10.0.0.100", "tcp", 80)),
                        (Kind.ALLOW, make_target("10.0.0.100", "tcp", 80)),
                        (Kind.DENY, make_target("2001:db8::100")),
                        (Kind.ALLOW, make_target("10.0.0.200", "udp", 53))}
    deny = got[(Kind.DENY, make_target("10.0.0.100", "tcp", 80))]
    assert sorted((str(e.network), e.timeout) for e in deny.entries.values()) == \
        [("198.51.100.7/32", 3600), ("203.0.113.0/24", None)]
    assert desired.owns_lists


@pytest.mark.parametrize("text,message", [
    ("services: [{protocol: tcp, address: 10.0.0.1, port: 80, deny: [10.0.0.1/8]}]",
     "x.yaml:1: services[0].deny[0]: 10.0.0.1/8 has host bits set"),
    ("services: [{protocol: tcp, address: 10.0.0.1, port: 80, deny: ['2001:db8::/32']}]",
     "services[0].deny: 2001:db8::/32 is not IPv4 like 10.0.0.1"),
    ("services: [{protocol: tcp, address: 10.0.0.1, port: 80, deny: [10.0.0.0/8, 10.1.0.0/16]}]",
     "services[0].deny: 10.1.0.0/16 overlaps 10.0.0.0/8"),
    ("services: [{protocol: tcp, address: 10.0.0.1, port: 80, deny: [1.2.3.4, 1.2.3.4]}]",
     "services[0].deny[1]: 1.2.3.4/32 is listed twice"),
    ("services: [{protocol: tcp, address: 10.0.0.1, port: 80,\n"
     "             deny: [{address: 1.2.3.4, timeout: soon}]}]",
     "x.yaml:2: services[0].deny[0].timeout: not a duration: 'soon'"),
    ("services: [{protocol: tcp, address: 10.0.0.1, port: 80, deny: [{timeout: 1h}]}]",
     "services[0].deny[0]: an entry needs an address"),
    ("services: [{fwmark: 3, deny: [1.2.3.4]}]",
     "services[0]: allow and deny need a service with address and port"),
    ("vips: [{address: 10.0.0.1, port: 80, deny: [1.2.3.4]}]",
     "vips[0]: protocol and port go together"),
    ("vips: [{address: 10.0.0.1}, {address: 10.0.0.1}]",
     "vips[1]: 10.0.0.1 (all ports) is listed twice"),
    ("vips: [{address: 10.0.0.1, deny: 1.2.3.4}]", "vips[0].deny: must be a list"),
    ("services: [{protocol: tcp, address: 10.0.0.1, port: 80, deny: [1.2.3.4]}]\n"
     "vips: [{address: 10.0.0.1, protocol: tcp, port: 80, deny: [1.2.3.5]}]",
     "the deny list of tcp 10.0.0.1:80 is given twice"),
])
def test_bad_lists(text, message):
    with pytest.raises(config.ConfigError) as info:
        config.validate(text, "x.yaml")
    assert message in str(info.value)


class _Lists:
    """AccessLists stand-in for list_plan: the live lists are given."""

    def __init__(self, live, available=True):
        from ipvsadm_py import nft

        class Fake(nft.Nft):
            def available(self):
                return available

            def table(self):
                raise AssertionError("not read") if not available else None

        self.nft = Fake()
        self.live = live

    def plan(self, wanted, prune=True):
        from ipvsadm_py import nft
        return nft.AccessLists(self.nft).plan(wanted, prune, current=self.live)


def test_list_plan_steps_and_owner():
    desired = config.validate(LISTS, "x.yaml")
    steps, tx = config.list_plan(desired, _Lists({}))
    assert tx and ("add", "deny", "tcp 10.0.0.100:80 198.51.100.7 timeout 1h") in \
        [(s.action, s.what, s.text) for s in steps]
    assert config.plan_text(steps[:1]) == "+ allow tcp 10.0.0.100:80 new list\n"
    desired.owns_lists = False          # keepalived.conf: the lists are left alone
    assert config.list_plan(desired, _Lists({})) == ([], tx.__class__())
    empty = config.validate("services: []", "x.yaml")
    assert config.list_plan(empty, _Lists({}, available=False))[0] == []


def test_export_carries_the_lists_and_plans_nothing():
    from ipvsadm_py import nft
    desired = config.validate(LISTS, "x.yaml")
    table = [(spec.service, spec.dests) for spec in desired.services]
    live = _live(table)
    lists = desired.access_lists
    text = config.export_text(live, lists=lists)
    doc = yaml.safe_load(text)
    assert doc["services"][0]["deny"] == [{"address": "198.51.100.7", "timeout": "1h"},
                                          "203.0.113.0/24"]
    assert doc["services"][0]["allow"] == ["10.0.1.0/24"]
    assert doc["vips"] == [{"address": "10.0.0.200", "protocol": "udp", "port": 53,
                            "allow": ["192.0.2.0/24"]},
                           {"address": "2001:db8::100", "deny": ["2001:db8:bad::/48"]}]
    again = config.validate(text, "export.yaml")
    current = {lst.key: lst for lst in lists}
    assert not nft.diff(current, {lst.key: lst for lst in again.access_lists})
