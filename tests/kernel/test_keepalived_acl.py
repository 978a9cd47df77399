"""Client lists from keepalived.conf (``deny_group``): our keepalived, started
on a file with a deny group, has the lists put into nftables by
``ipvsadm-py acl apply-keepalived`` (which its checker runs) before it makes
the SYNPROXY + FULLNAT service; a reload with a changed group changes the
set; a reload with a bad entry changes nothing; lvs-exporter shows the drops.

::

    client ------------------ lb ------------------------- rs1 rs2
    .2  real sockets           keepalived (ours): FNAT + syn_proxy
    .3  crafted SYNs (OTHER)   deny_group -> table inet lvs_toolkit
                               lvs-exporter --netns lb
"""

from __future__ import annotations

import random
import re

import pytest

from ipvsadm_py.acl import Kind, make_target, net_text
from ipvsadm_py.nft import AccessLists, Nft
from tests.kernel.fnat_support import conn_count, tcp_segment
from tests.kernel.keepalived_support import (KA_NS, explained, fnat_topo,  # noqa: F401
                                             keepalived, servers, whoami_via)
from tests.kernel.test_exporter import Exporter
from tools import netlab
from tools.keepalived_lab import IPVSADM_PY, wait_table
from tools.netlab import Capture

pytestmark = pytest.mark.kernel

PORT = 80
OTHER = "10.0.1.3"
KEY = f"tcp {netlab.VIP4}:{PORT}"
TARGET = make_target(netlab.VIP4, "tcp", PORT)


def config(deny: str) -> str:
    return (f"acl_apply_command {IPVSADM_PY}\n"
            f"deny_group abusers {{\n    {deny}\n}}\n"
            f"virtual_server {netlab.VIP4} {PORT} {{\n    lb_algo rr\n    lb_kind FNAT\n"
            "    protocol TCP\n    syn_proxy\n    local_address {\n        10.0.3.1\n    }\n"
            "    deny_group abusers\n"
            + "".join(f"    real_server {netlab.rs_addr(i)} {PORT} {{\n        weight 1\n    }}\n"
                      for i in (1, 2)) + "}\n")


def deny_set() -> tuple[list[str], int]:
    """The deny list's entries and dropped packets, read from nftables."""
    lst = AccessLists(Nft(netns=KA_NS)).read().get((Kind.DENY, TARGET))
    return (sorted(net_text(n) for n in lst.entries), lst.packets) if lst else ([], 0)


def syn_answers(topo, count: int, tmp_path) -> int:
    """SYN/ACKs to ``count`` crafted SYNs from OTHER to the VIP."""
    from scapy.all import TCP
    first = random.randrange(20000, 60000 - count)
    with Capture(topo, topo.client, "eth0", f"tcp and src port {PORT} and dst portrange "
                 f"{first}-{first + count}", tmp_path / f"syn-{first}.pcap") as cap:
        for sport in range(first, first + count):
            netlab.send_raw(topo, topo.client, tcp_segment(
                4, OTHER, netlab.VIP4, sport, PORT, random.getrandbits(32), 0, "S"), 4)
    return sum(1 for p in cap.packets() if TCP in p and p[TCP].flags & 0x12 == 0x12)


def acl_metric(text: str) -> float:
    """lvs_acl_dropped_packets_total of the deny list of VIP:80 in a scrape."""
    for line in text.splitlines():
        if line.startswith("lvs_acl_dropped_packets_total{") and 'list="deny"' in line \
                and f'vip="{netlab.VIP4}"' in line and f'port="{PORT}"' in line:
            return float(line.rpartition(" ")[2])
    raise AssertionError(f"no deny series in the scrape:\n{text[-2000:]}")


def test_config_test_accepts_groups_and_rejects_a_bad_entry(keepalived):
    good = keepalived.config_test(config(OTHER))
    assert good.returncode == 0, good.stderr
    bad = keepalived.config_test(config("10.0.1.3/24 timeout 1h"))
    assert bad.returncode != 0
    assert "deny_group abusers: invalid entry '10.0.1.3/24': has host bits set" in bad.stderr
    undefined = keepalived.config_test(config(OTHER).replace("    deny_group abusers\n",
                                                             "    deny_group nobody\n"))
    assert undefined.returncode != 0
    assert "deny_group nobody is not defined" in undefined.stderr


def test_keepalived_deny_group_drops_before_synproxy_and_follows_reloads(
        fnat_topo, keepalived, tmp_path):  # noqa: F811
    topo = fnat_topo
    topo.ip_batch(topo.client, [f"addr add {OTHER}/24 dev eth0"])
    rs = servers(topo, 4, PORT, 2)
    exporter = None
    try:
        with explained(keepalived):
            keepalived.start(config(OTHER))
            keepalived.wait_log(r"client lists of \S+ applied", timeout=120)
            wait_table(KA_NS, lambda t: KEY in t and t[KEY]["synproxy"])
            assert deny_set()[0] == [OTHER]
            # denied: no SYN/ACK, no session; the real client gets through
            sessions = conn_count(topo)
            assert syn_answers(topo, 10, tmp_path) == 0
            assert conn_count(topo) == sessions
            assert deny_set()[1] == 10
            assert whoami_via(topo, netlab.VIP4, PORT)[0] in ("rs1", "rs2")
            # the drops in lvs-exporter (its own process, --netns lb)
            exporter = Exporter(tmp_path, "lb", KA_NS)
            assert acl_metric(exporter.scrape()) == 10
            # reload with another group: the set follows, OTHER is answered
            offset = keepalived.reload(config("192.0.2.0/24"))
            keepalived.wait_log(r"client lists of \S+ applied", timeout=120, after=offset)
            assert deny_set()[0] == ["192.0.2.0/24"]
            assert syn_answers(topo, 3, tmp_path) == 3
            # reload with a bad entry: refused whole, the set stays
            offset = keepalived.reload(config("192.0.2.1/24"))
            keepalived.wait_log(r"client lists of \S+ NOT applied", timeout=120, after=offset)
            assert re.search(r"192\.0\.2\.1/24 has host bits set", keepalived.log()[offset:])
            assert deny_set()[0] == ["192.0.2.0/24"]
            keepalived.check_alive()
    finally:
        if exporter is not None:
            exporter.stop()
        for server in rs:
            server.stop()
