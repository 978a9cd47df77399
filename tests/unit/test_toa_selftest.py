"""tools/lvs_tools/toa_selftest.py's choice of addresses when toa trusts some peers only.

The checks themselves need the module and run in the guest
(tests/kernel/test_toa_installer.py).
"""

from __future__ import annotations

import ipaddress

from lvs_tools import toa_selftest as st


def nets(*items: str) -> list:
    return [ipaddress.ip_network(item) for item in items]


def test_any_peer_keeps_the_default_balancer():
    peers = st.plan_peers([])
    assert (peers.lb4, peers.lb6, peers.trusted4, peers.trusted6, peers.outsider) == \
        (st.LB4, st.LB6, True, True, None)


def test_the_balancer_moves_into_the_trusted_prefixes():
    peers = st.plan_peers(nets("10.0.3.0/24", "2001:db8:3::/64", "10.9.0.0/16"))
    assert (peers.lb4, peers.lb6) == ("10.0.3.1", "2001:db8:3::1")
    assert peers.trusted4 and peers.trusted6
    assert peers.outsider == "198.51.100.99"


def test_a_family_without_a_prefix_expects_the_real_peer():
    peers = st.plan_peers(nets("10.0.3.0/24"))
    assert peers.trusted4 and not peers.trusted6 and peers.lb6 == st.LB6


def test_host_prefixes_and_the_servers_own_address():
    assert st.plan_peers(nets("10.0.3.7/32")).lb4 == "10.0.3.7"
    assert st.plan_peers(nets("10.0.3.6/31")).lb4 == "10.0.3.6"
    # 192.0.2.1 is the self-test's "real server": the next address is taken.
    assert st.plan_peers(nets("192.0.2.0/24")).lb4 == "192.0.2.2"


def test_the_outsider_is_outside_every_prefix():
    peers = st.plan_peers(nets("198.51.100.0/24", "203.0.113.0/24"))
    assert peers.outsider == "100.64.0.99"
    assert st.plan_peers(nets("0.0.0.0/0")).outsider is None


def test_read_trusted(tmp_path):
    param = tmp_path / "trusted"
    param.write_text("10.0.3.0/24,2001:db8:3::/64\n")
    assert st.read_trusted(str(param)) == nets("10.0.3.0/24", "2001:db8:3::/64")
    param.write_text("\n")
    assert st.read_trusted(str(param)) == []
    assert st.read_trusted(str(tmp_path / "absent")) == []
