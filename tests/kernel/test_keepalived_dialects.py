"""Our keepalived loads each configuration dialect into the kernel.

::

    client -------------- lb (keepalived) ------------------ rs1 rs2 rs3
    connects to the       VIPs, local addresses on vip0       whoami/HTTP servers,
    VIPs; its address     10.0.3.1-2, 2001:db8:3::1-2         toa.ko on: accept()
    must reach the RS                                         shows the client

* the source design's: ``lb_kind FNAT``, ``local_address { }``, ``syn_proxy``;
* Alibaba LVS / DPVS: ``local_address_group NAME { IP; a.b.c.d-e }`` and
  ``laddr_group_name NAME``;
* stock keepalived 2.2 (NAT, DR, TUN, virtual_server_group, fwmark, IPv6):
  ours builds the same table as Debian's keepalived from the same file.
"""

from __future__ import annotations

import pytest

from tools import netlab
from tools.keepalived_lab import (Keepalived, debian_binary, dests, laddrs, services,
                                  wait_table)
from tests.kernel.keepalived_support import (KA_NS, LADDRS, fnat_topo, keepalived,  # noqa: F401
                                             servers, toa_on, whoami_via)
from tools.netlab import Topology

pytestmark = pytest.mark.kernel

RS_CHECK = "TCP_CHECK {{ connect_timeout 2 }}"


def real_servers(family: int, port: int, count: int = 2, extra: str = "") -> str:
    return "\n".join(
        f"    real_server {netlab.rs_addr(i, family)} {port} {{\n"
        f"        weight 1\n{extra}"
        f"        {RS_CHECK.format()}\n    }}" for i in range(1, count + 1))


SOURCE_DESIGN = """
global_defs {{ router_id lb }}
virtual_server {vip4} 80 {{
    delay_loop 3
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    syn_proxy
    local_address {{
        10.0.3.1
        10.0.3.2
    }}
{rs4}
}}
virtual_server {vip6} 80 {{
    delay_loop 3
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    local_address {{
        2001:db8:3::1
        2001:db8:3::2
    }}
{rs6}
}}
virtual_server {vip4} 53 {{
    delay_loop 3
    lb_algo rr
    lvs_method FNAT
    protocol UDP
    local_address {{ 10.0.3.1 }}
    real_server {rs1} 53 {{
        MISC_CHECK {{ misc_path "/bin/true" }}
    }}
}}
virtual_server_group GRP {{
    10.0.0.101-102 8080
}}
virtual_server group GRP {{
    delay_loop 3
    lb_algo wrr
    lb_kind FNAT
    protocol TCP
    local_address {{ 10.0.3.1-2 }}
{rs8080}
}}
"""

DPVS = """
local_address_group laddr_g1 {{
    10.0.3.1-2
}}
local_address_group laddr_g6 {{ 2001:db8:3::1 dpdk0 2001:db8:3::2 dpdk0 }}
virtual_server {vip4} 80 {{
    delay_loop 3
    lb_algo wlc
    lb_kind FNAT
    protocol TCP
    syn_proxy
    laddr_group_name laddr_g1
{rs4}
}}
virtual_server {vip6} 80 {{
    delay_loop 3
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    syn_proxy
    laddr_group_name laddr_g6
{rs6}
}}
"""


def fnat_config(template: str) -> str:
    return template.format(vip4=netlab.VIP4, vip6=netlab.VIP6,
                           rs4=real_servers(4, 80), rs6=real_servers(6, 80),
                           rs8080=real_servers(4, 8080), rs1=netlab.rs_addr(1))


def assert_fullnat_service(table: dict, key: str, family: int, synproxy: bool,
                           want_laddrs: list[str]) -> None:
    svc = table[key]
    assert laddrs(svc) == sorted(want_laddrs), svc
    assert svc["synproxy"] is synproxy, svc
    got = dests(svc)
    assert sorted(got) == sorted(netlab.hostport(netlab.rs_addr(i, family), svc["port"])
                                 for i in (1, 2)), svc
    assert {d["forward"] for d in got.values()} == {"fullnat"}, svc


def assert_traffic_with_toa(topo: Topology) -> None:
    """Both families reach both servers, which see the client (TOA)."""
    for family in (4, 6):
        seen = set()
        for _ in range(4):
            name, peer, _ = whoami_via(topo, netlab.vip(family), 80)
            assert peer == netlab.client_addr(family), (name, peer)
            seen.add(name)
        assert seen == {"rs1", "rs2"}


@pytest.mark.parametrize("dialect", ["source_design", "dpvs"])
def test_fullnat_dialect_loads_and_forwards(fnat_topo, keepalived, toa_on, dialect):
    topo = fnat_topo
    for family in (4, 6):
        servers(topo, family, 80, 2)
    servers(topo, 4, 8080, 2)
    template = SOURCE_DESIGN if dialect == "source_design" else DPVS
    keepalived.start(fnat_config(template))

    def loaded(table: dict) -> bool:
        return all(len(table.get(f"tcp {netlab.hostport(netlab.vip(f), 80)}", {})
                       .get("dests", [])) == 2 for f in (4, 6))
    table = wait_table(KA_NS, loaded)
    assert_fullnat_service(table, f"tcp {netlab.VIP4}:80", 4, True, LADDRS[4])
    assert_fullnat_service(table, f"tcp [{netlab.VIP6}]:80", 6, dialect == "dpvs", LADDRS[6])
    if dialect == "source_design":
        udp = table[f"udp {netlab.VIP4}:53"]
        assert laddrs(udp) == ["10.0.3.1"] and not udp["synproxy"]
        for vip in ("10.0.0.101", "10.0.0.102"):      # every service of the group
            assert_fullnat_service(table, f"tcp {vip}:8080", 4, False, LADDRS[4])
        assert table["tcp 10.0.0.101:8080"]["scheduler"] == "wrr"
    else:
        assert table[f"tcp {netlab.VIP4}:80"]["scheduler"] == "wlc"
    assert_traffic_with_toa(topo)
    keepalived.stop()
    assert services(KA_NS) == {}, "keepalived left services behind on exit"


STOCK = """
virtual_server_group WEB {{
    10.0.0.110-111 80
    fwmark 7
}}
virtual_server {vip4} 80 {{
    delay_loop 3
    lb_algo rr
    lb_kind NAT
    protocol TCP
    persistence_timeout 60
    sorry_server 10.0.2.99 80
{nat4}
}}
virtual_server {vip6} 80 {{
    delay_loop 3
    lb_algo wlc
    lb_kind NAT
    protocol TCP
{nat6}
}}
virtual_server {vip4} 81 {{
    delay_loop 3
    lb_algo sh
    sh-port
    lb_kind DR
    protocol TCP
{dr4}
}}
virtual_server {vip4} 82 {{
    delay_loop 3
    lb_algo rr
    lb_kind TUN
    protocol UDP
    real_server {rs1} 82 {{ weight 3 MISC_CHECK {{ misc_path "/bin/true" }} }}
}}
virtual_server fwmark 9 {{
    delay_loop 3
    lb_algo rr
    lb_kind DR
    real_server {rs1} 0 {{ weight 2 MISC_CHECK {{ misc_path "/bin/true" }} }}
}}
virtual_server group WEB {{
    delay_loop 3
    lb_algo lc
    lb_kind DR
    protocol TCP
{dr80}
}}
"""


def stock_config() -> str:
    return STOCK.format(vip4=netlab.VIP4, vip6=netlab.VIP6, rs1=netlab.rs_addr(1),
                        nat4=real_servers(4, 8080), nat6=real_servers(6, 8080),
                        dr4=real_servers(4, 81), dr80=real_servers(4, 80))


def without_counters(table: dict) -> dict:
    """Services and real servers without statistics and connection counts."""
    out = {}
    for key, svc in table.items():
        svc = {k: v for k, v in svc.items() if k not in ("stats",)}
        svc["dests"] = sorted(({k: v for k, v in d.items()
                                if k not in ("stats", "active_conns", "inact_conns",
                                             "persist_conns")} for d in svc["dests"]),
                              key=lambda d: (d["address"], d["port"]))
        out[key] = svc
    return out


def test_stock_dialect_gives_debians_table(tmp_path):
    """NAT/DR/TUN, persistence, a sorry server, sh-port, virtual_server_group
    (range and fwmark), fwmark services, IPv6: ours configures exactly what
    Debian's keepalived configures from the same file (on our module)."""
    topo = Topology(n_rs=2)
    with topo:
        for family in (4, 6):
            servers(topo, family, 8080, 2)
        for port in (80, 81):
            servers(topo, 4, port, 2)

        def complete(table: dict) -> bool:
            return len(table) == 8 and all(s["dests"] for s in table.values())

        tables = {}
        for name, binary in (("debian", debian_binary()), ("ours", keepalived_binary())):
            ka = Keepalived(KA_NS, tmp_path, name=name, binary=binary)
            ka.start(stock_config())
            try:
                tables[name] = without_counters(wait_table(KA_NS, complete))
            finally:
                ka.stop()
            assert services(KA_NS) == {}, f"{name} keepalived left services behind"
        assert tables["ours"] == tables["debian"]
        # NAT through the table ours built
        ka = Keepalived(KA_NS, tmp_path, name="ours-traffic")
        ka.start(stock_config())
        try:
            wait_table(KA_NS, complete)
            # (persistent: every connection of the client to the same server)
            assert len({whoami_via(topo, netlab.VIP4, 80)[0] for _ in range(3)}) == 1
        finally:
            ka.stop()


def keepalived_binary():
    from tests.kernel.keepalived_support import require_keepalived
    return require_keepalived()
