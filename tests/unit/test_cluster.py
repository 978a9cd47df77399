"""The ``cluster:`` section: validation (every problem with its line), BIRD's
configuration of a balancer (checked by BIRD itself with ``bird -p`` when
bird2 is installed, as ./inv installs it), the health rule, the command's
refusals (nothing changed)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from netaddr import IPAddress

from ipvsadm_py import config
from ipvsadm_py.model import Dest, Service
from lvs_tools.cluster import cli
from lvs_tools.cluster.announce import servable, sessions
from lvs_tools.cluster.bird import Bird, BirdError, render

SERVICES = """\
services:
  - {protocol: tcp, address: 10.0.0.100, port: 80, laddrs: [10.1.1.1],
     dests: [{address: 10.0.2.11, forward: fullnat}]}
  - {protocol: tcp, address: 2001:db8::100, port: 80, laddrs: ["2001:db8:1::1"],
     dests: [{address: "2001:db8:2::11", forward: fullnat}]}
"""
CLUSTER = """\
cluster:
  hold_time: 6
  balancers:
    - name: lb1
      router_id: 10.0.4.11
      asn: 65100
      local_addresses: [10.1.1.0/24, "2001:db8:1::/64"]
      peers:
        - {address: 10.0.4.1, asn: 65000}
        - {address: "2001:db8:4::1", asn: 65000}
    - name: lb2
      router_id: 10.0.4.12
      asn: 65100
      local_addresses: 10.1.2.0/24
      vips: [10.0.0.100]
      peers: [{address: 10.0.4.1, asn: 65000}]
"""
needs_bird = pytest.mark.skipif(shutil.which("bird") is None,
                                reason="bird2 is not installed (./inv installs it)")


def cluster_of(text: str):
    return config.validate(text, "c.yaml").cluster


def problems(text: str) -> list[str]:
    with pytest.raises(config.ConfigError) as err:
        config.validate(text, "c.yaml")
    return err.value.problems


def test_a_valid_section_reads_whole():
    cl = cluster_of(SERVICES + CLUSTER)
    assert cl.interface == "lvs-vips" and cl.hold_time == 6 and not cl.bfd
    lb1, lb2 = cl.balancers
    assert lb1.vips == [IPAddress("10.0.0.100"), IPAddress("2001:db8::100")]   # default: all
    assert lb1.local_prefixes == ["10.1.1.0/24", "2001:db8:1::/64"]
    assert [str(p.address) for p in lb1.peers] == ["10.0.4.1", "2001:db8:4::1"]
    assert lb2.vips == [IPAddress("10.0.0.100")] and lb2.local_prefixes == ["10.1.2.0/24"]
    assert cl.balancer("lb2") is lb2


def test_a_file_without_cluster_has_none():
    assert cluster_of(SERVICES) is None


@pytest.mark.parametrize("change,fault", [
    (("router_id: 10.0.4.12", "router_id: 2001:db8::12"), "router id is an IPv4 address"),
    (("router_id: 10.0.4.12", "router_id: 10.0.4.11"), "router id 10.0.4.11 on line"),
    (("name: lb2", "name: lb1"), "name lb1 on line"),
    (("name: lb2", "name: 2lb"), "must be a name"),
    (("asn: 65100\n      local_addresses: 10.1.2", "asn: 0\n      local_addresses: 10.1.2"),
     "asn: must be an integer 1-4294967295"),
    (("10.1.2.0/24", "10.1.2.1/24"), "not a prefix"),
    (("10.1.2.0/24", "10.1.0.0/16"), "overlap 10.1.1.0/24 of lb1"),
    (("vips: [10.0.0.100]", "vips: [10.0.0.101]"), "10.0.0.101 is no service's address"),
    (("peers: [{address: 10.0.4.1, asn: 65000}]", "peers: []"), "at least one peer"),
    (("peers: [{address: 10.0.4.1, asn: 65000}]", "peers: [{address: 10.0.4.1}]"),
     "a peer needs asn"),
    (("hold_time: 6", "hold_time: 2"), "hold_time: must be an integer 3-65535"),
    (("hold_time: 6", "interface: this-name-is-too-long"), "not an interface name"),
    (("hold_time: 6", "bfd: maybe"), "bfd: must be true or false"),
    (("hold_time: 6", "bfd: {interval: 5, multiplier: 3}"),
     "bfd.interval: must be an integer 10-60000"),
    (("hold_time: 6", "bfd: {interval: 300, multiplier: 0}"),
     "bfd.multiplier: must be an integer 1-255"),
    (("hold_time: 6", "bfd: {interval: 300}"), "needs multiplier"),
    (("hold_time: 6", "bfd: {interval: 300, multiplier: 3, echo: on}"), "unknown key 'echo'"),
    (("hold_time: 6", "color: blue"), "unknown key 'color'"),
])
def test_bad_sections_say_what_and_where(change, fault):
    text = SERVICES + CLUSTER
    assert change[0] in text
    found = problems(text.replace(change[0], change[1], 1))
    assert any(fault in p for p in found), found
    assert all(p.startswith("c.yaml:") for p in found)


def test_every_problem_at_once():
    text = (SERVICES + CLUSTER).replace("asn: 65000}\n    - name", "asn: x}\n    - name") \
        .replace("name: lb2", "name: lb1")
    found = problems(text)
    assert len(found) >= 2, found


def test_ipvsadm_py_reads_the_same_file():
    desired = config.validate(SERVICES + CLUSTER, "c.yaml")
    assert len(desired.services) == 2           # apply sees its services, not the cluster


def test_render_announces_the_vips_and_local_prefixes_only():
    cl = cluster_of(SERVICES + CLUSTER)
    text = render(cl, cl.balancer("lb1"), "c.yaml")
    assert "router id 10.0.4.11;" in text
    assert "if net ~ [ 10.0.0.100/32, 10.1.1.0/24 ] then accept;" in text
    assert "if net ~ [ 2001:db8::100/128, 2001:db8:1::/64 ] then accept;" in text
    assert 'interface "lvs-vips";' in text
    assert "route 10.1.1.0/24 blackhole;" in text and "route 2001:db8:1::/64 blackhole;" in text
    assert "neighbor 10.0.4.1 as 65000;" in text and "neighbor 2001:db8:4::1 as 65000;" in text
    assert "hold time 6;" in text and "keepalive time 2;" in text
    assert "import none;" in text and "protocol kernel" not in text   # the balancer installs nothing
    assert "bfd" not in text


def test_render_with_bfd():
    cl = cluster_of(SERVICES + CLUSTER.replace("hold_time: 6", "bfd: true"))
    text = render(cl, cl.balancer("lb2"))
    assert "protocol bfd {" in text and "    bfd on;" in text
    assert "interval" not in text                       # BIRD's own timers


def test_render_with_bfd_timers():
    cl = cluster_of(SERVICES + CLUSTER.replace("hold_time: 6",
                                               "bfd: {interval: 300, multiplier: 3}"))
    assert cl.bfd and cl.bfd_timers == (300, 3)
    text = render(cl, cl.balancer("lb1"))
    assert "min rx interval 300 ms;" in text and "min tx interval 300 ms;" in text
    assert "multiplier 3;" in text and text.count("    bfd on;") == 2


@needs_bird
@pytest.mark.parametrize("bfd", ["false", "true", "{interval: 300, multiplier: 3}"])
@pytest.mark.parametrize("node", ["lb1", "lb2"])
def test_bird_accepts_what_is_rendered(tmp_path, node, bfd):
    cl = cluster_of(SERVICES + CLUSTER.replace("hold_time: 6", f"bfd: {bfd}"))
    path = tmp_path / "bird.conf"
    path.write_text(render(cl, cl.balancer(node), log=str(tmp_path / "bird.log")))
    Bird.check_file(path)


@needs_bird
def test_a_refused_configuration_leaves_the_installed_one(tmp_path):
    bird = Bird(tmp_path / "bird.conf", tmp_path / "bird.ctl")
    cl = cluster_of(SERVICES + CLUSTER)
    good = render(cl, cl.balancer("lb1"))
    assert bird.install(good) is True                  # BIRD is not running: written only
    assert bird.install(good) is False
    with pytest.raises(BirdError) as err:
        bird.install(good + "protocol bgp broken { neighbor as; }\n")
    assert "syntax error" in str(err.value)             # BIRD's own words, with the line
    assert bird.conf.read_text() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bird.conf"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


def test_cli_render(tmp_path):
    code, out, _ = run_cli("render", str(write(tmp_path, SERVICES + CLUSTER)), "--node", "lb2")
    assert code == 0 and "router id 10.0.4.12;" in out


@pytest.mark.parametrize("text,node,fault", [
    (SERVICES, "lb1", "no cluster: section"),
    (SERVICES + CLUSTER, "lb9", "no balancer 'lb9' (there are: lb1, lb2)"),
    (SERVICES + CLUSTER.replace("asn: 65100", "asn: -1", 1), "lb1", "asn: must be an integer"),
])
def test_cli_refuses_and_changes_nothing(tmp_path, text, node, fault):
    conf = tmp_path / "bird.conf"
    code, _, err = run_cli("apply", str(write(tmp_path, text)), "--node", node,
                           "--conf", str(conf), "--socket", str(tmp_path / "ctl"),
                           "--state-dir", str(tmp_path / "state"))
    assert code == 2 and fault in err and "nothing was changed" in err
    assert not conf.exists() and not (tmp_path / "state").exists()


def svc(addr: str, port: int = 80) -> Service:
    return Service(addr=IPAddress(addr), port=port)


def test_a_vip_is_servable_while_each_of_its_services_has_a_weighted_server():
    up, zero = Dest(addr=IPAddress("10.0.2.11"), weight=1), Dest(addr=IPAddress("10.0.2.12"),
                                                                 weight=0)
    vip, other = IPAddress("10.0.0.100"), IPAddress("10.0.0.200")
    assert servable([(svc("10.0.0.100"), [zero, up])], [vip, other]) == {vip: True,
                                                                         other: False}
    assert servable([(svc("10.0.0.100"), [zero])], [vip]) == {vip: False}
    assert servable([(svc("10.0.0.100"), [])], [vip]) == {vip: False}
    # two ports on one VIP: both must be servable, or the VIP would draw
    # connections one of them cannot take
    assert servable([(svc("10.0.0.100"), [up]), (svc("10.0.0.100", 443), [zero])],
                    [vip]) == {vip: False}


def test_sessions_count_the_vips_services_only():
    a = Dest(addr=IPAddress("10.0.2.11"), active_conns=3, inact_conns=5)
    b = Dest(addr=IPAddress("10.0.2.12"), active_conns=1, inact_conns=0)
    table = [(svc("10.0.0.100"), [a, b]), (svc("10.0.0.200"), [a])]
    assert sessions(table, [IPAddress("10.0.0.100")]) == (4, 5)
