"""``ipvsadm-py apply`` / ``export`` on the real module (own netns ``ipvs-t``)."""

from __future__ import annotations

import pytest
import yaml

from tests.kernel.test_ipvsadm_compat import c, ns, py  # noqa: F401 (fixture)

pytestmark = pytest.mark.kernel

CONFIG = """
version: 1
timeouts: {tcp: 800, tcp_fin: 100, udp: 250}
services:
  - protocol: tcp
    address: 10.0.0.100
    port: 80
    scheduler: wrr
    dests:
      - {address: 10.0.2.11, port: 8080, forward: masq, weight: 3}
      - {address: 10.0.2.12, port: 8080, forward: masq, u_threshold: 100, l_threshold: 10}
  - protocol: udp
    address: 10.0.0.100
    port: 53
    scheduler: sh
    sched_flags: [sh-port]
    ops: true
    dests:
      - {address: 10.0.2.11, forward: masq}
  - protocol: sctp
    address: 2001:db8:100::100
    port: 3868
    persistent: 600
    netmask: 64
    dests:
      - {address: "2001:db8:2::11", forward: nat}
      - address: "2001:db8:2::40"
        forward: tunnel
        tunnel: {type: gue, port: 6080, csum: csum}
  - fwmark: 7
    family: 6
    scheduler: lblc
    persistent: true
    dests:
      - {address: "2001:db8:2::12", port: 0, forward: dr}
daemons:
  - {state: master, mcast_interface: d0, syncid: 3, mcast_group: 239.1.1.1, mcast_port: 8849}
"""

SAVED = """\
-A -t 10.0.0.100:80 -s wrr
-a -t 10.0.0.100:80 -r 10.0.2.11:8080 -m -w 3
-a -t 10.0.0.100:80 -r 10.0.2.12:8080 -m -w 1
-A -u 10.0.0.100:53 -s sh -o -b sh-port
-a -u 10.0.0.100:53 -r 10.0.2.11:53 -m -w 1
-A --sctp-service [2001:db8:100::100]:3868 -s wlc -p 600 -M 64
-a --sctp-service [2001:db8:100::100]:3868 -r [2001:db8:2::11]:3868 -m -w 1
-a --sctp-service [2001:db8:100::100]:3868 -r [2001:db8:2::40]:3868 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-A -f 7 -6 -s lblc -p 360
-a -f 7 -6 -r [2001:db8:2::12]:0 -g -w 1
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "lb.yaml"
    path.write_text(CONFIG)
    return path


def test_apply_builds_the_table_and_is_idempotent(ns, cfg):
    res = py(f"apply {cfg}")
    assert res.returncode == 0, res.stderr
    assert c("-Sn").stdout == SAVED
    assert c("-L --timeout").stdout == "Timeout (tcp tcpfin udp): 800 100 250\n"
    assert "master sync daemon (mcast=d0, syncid=3" in c("-L --daemon").stdout
    again = py(f"apply {cfg}")
    assert (again.returncode, again.stdout) == (0, "nothing to change\n")


def test_dry_run_changes_nothing(ns, cfg):
    res = py(f"apply --dry-run {cfg}")
    assert res.returncode == 0 and "+ service TCP 10.0.0.100:80 wrr" in res.stdout
    assert c("-Sn").stdout == ""


def test_weight_change_edits_in_place(ns, cfg, tmp_path):
    assert py(f"apply {cfg}").returncode == 0
    changed = tmp_path / "changed.yaml"
    changed.write_text(CONFIG.replace("forward: masq, weight: 3", "forward: masq, weight: 9"))
    res = py(f"apply {changed}")
    assert res.returncode == 0
    assert res.stdout == "~ dest TCP 10.0.0.100:80 -> 10.0.2.11:8080 masq weight 9\n"
    assert "-r 10.0.2.11:8080 -m -w 9" in c("-Sn").stdout


def test_bad_file_applies_nothing(ns, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("daemons:", "  - protocol: tcp\n    address: 10.0.0.1\n"
                                              "    port: 99999\ndaemons:"))
    res = py(f"apply {bad}")
    assert res.returncode == 2
    assert "bad.yaml:38: services[4].port: must be an integer 0-65535" in res.stderr
    assert c("-Sn").stdout == ""


def test_export_apply_round_trip(ns, tmp_path):
    from tests import record_ipvsadm as rec

    for rule in rec.RULES:
        assert c(rule).returncode == 0, rule
    before = c("-Sn").stdout
    exported = py("export")
    assert exported.returncode == 0, exported.stderr
    doc = yaml.safe_load(exported.stdout)
    assert len(doc["services"]) == before.count("-A ")
    path = tmp_path / "export.yaml"
    path.write_text(exported.stdout)
    assert py(f"apply {path}").stdout == "nothing to change\n"
    c("-C")
    c("--stop-daemon master")
    c("--stop-daemon backup")
    res = py(f"apply {path}")
    assert res.returncode == 0, res.stderr
    assert c("-Sn").stdout == before
    assert py(f"apply {path}").stdout == "nothing to change\n"
