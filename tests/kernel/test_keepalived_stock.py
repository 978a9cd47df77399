"""Debian's own keepalived drives our IPVS modules as it drives the stock ones.

::

    client ---- lb (Debian's keepalived: a NAT file, a DR file) ---- rs1 rs2
                stock ip_vs*.ko of the running kernel, then ours

The same files are loaded twice in this guest: on the kernel's own IPVS
modules (ours unloaded, the stock ones inserted by path, since modprobe
resolves to ours) and on ours; stock ``ipvsadm -Ln`` must print the same
table, and NAT traffic must pass on ours.  Runs last: it swaps modules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools import netlab
from tools.keepalived_lab import Keepalived, debian_binary, services, wait_table
from tools.kbuild import ROOT
from tools.netlab import Topology
from tests.kernel.keepalived_support import KA_NS, explained, servers, whoami_via

pytestmark = [pytest.mark.kernel, pytest.mark.last]


def rs(port: int, count: int = 2) -> str:
    return "".join(f"    real_server {netlab.rs_addr(i)} {port} {{\n        weight {i}\n"
                   f"        TCP_CHECK {{\n            connect_timeout 2\n        }}\n    }}\n"
                   for i in range(1, count + 1))


NAT = (f"virtual_server {netlab.VIP4} 80 {{\n    delay_loop 3\n    lb_algo wlc\n"
       f"    lb_kind NAT\n    protocol TCP\n    persistence_timeout 120\n{rs(8080)}}}\n"
       f"virtual_server {netlab.VIP4} 53 {{\n    delay_loop 3\n    lb_algo rr\n"
       f"    lb_kind NAT\n    protocol UDP\n"
       f"    real_server {netlab.rs_addr(1)} 5353 {{\n        MISC_CHECK {{\n"
       f"            misc_path /bin/true\n        }}\n    }}\n}}\n"
       f"virtual_server {netlab.VIP6} 80 {{\n    delay_loop 3\n    lb_algo rr\n"
       f"    lb_kind NAT\n    protocol TCP\n"
       + "".join(f"    real_server {netlab.rs_addr(i, 6)} 8080 {{\n        TCP_CHECK {{\n"
                 f"            connect_timeout 2\n        }}\n    }}\n" for i in (1, 2))
       + "}\n")
DR = (f"virtual_server {netlab.VIP4} 81 {{\n    delay_loop 3\n    lb_algo rr\n"
      f"    lb_kind DR\n    protocol TCP\n{rs(81)}}}\n"
      f"virtual_server fwmark 5 {{\n    delay_loop 3\n    lb_algo sh\n    lb_kind DR\n"
      f"    real_server {netlab.rs_addr(1)} 0 {{\n        MISC_CHECK {{\n"
      f"            misc_path /bin/true\n        }}\n    }}\n}}\n")
SERVICES = {"nat": 3, "dr": 2}


def loaded() -> set[str]:
    return {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}


def ipvs_modules(kver: str) -> list[str]:
    return sorted(ko.stem for ko in (ROOT / "build" / kver / "modules").glob("ip_vs*.ko"))


def unload(names: list[str]) -> None:
    present = [n for n in names if n in loaded()]
    helpers = [n for n in present if n != "ip_vs"]
    if helpers:
        subprocess.run(["modprobe", "-r", *helpers], check=True)
    if "ip_vs" in loaded():     # modprobe -r takes an unused ip_vs with the helpers
        subprocess.run(["rmmod", "ip_vs"], check=True)


def insert_stock(kver: str) -> list[str]:
    """The kernel's own ip_vs and schedulers, by path (modprobe would pick ours)."""
    folder = Path("/lib/modules") / kver / "kernel" / "net" / "netfilter" / "ipvs"
    files = {p.name.split(".ko")[0]: p for p in folder.glob("ip_vs*.ko*")}
    names = ["ip_vs"] + sorted(n for n in files if n not in ("ip_vs", "ip_vs_ftp", "ip_vs_pe_sip"))
    depends = subprocess.run(["modinfo", "-F", "depends", str(files["ip_vs"])], text=True,
                             capture_output=True, check=True).stdout.strip()
    if depends:      # what modprobe -r took away with ours (the kernel's own)
        subprocess.run(["modprobe", "-a", *depends.split(",")], check=True)
    for name in names:
        subprocess.run(["insmod", str(files[name])], check=True)
    return names


def tables(topo: Topology, tmp_path: Path, tag: str) -> dict[str, str]:
    """``ipvsadm -Ln`` of Debian's keepalived with each file (stopped after)."""
    out = {}
    for name, text in (("nat", NAT), ("dr", DR)):
        ka = Keepalived(KA_NS, tmp_path, name=f"{tag}-{name}", binary=debian_binary())
        ka.start(text)
        try:
            with explained(ka):     # a failure shows the table and keepalived's log
                wait_table(KA_NS, lambda t, n=name: len(t) == SERVICES[n]
                           and all(s["dests"] for s in t.values()))
                out[name] = topo.ipvsadm("-Ln").stdout
                if name == "nat" and tag == "ours":
                    assert {whoami_via(topo, netlab.VIP4, 80)[0]} <= {"rs1", "rs2"}
        finally:
            ka.stop()
        assert services(KA_NS) == {}
    return out


def test_debian_keepalived_same_table_on_stock_and_our_modules(kver, tmp_path):
    ours = ipvs_modules(kver)
    assert ours, f"no modules built for {kver}"
    found: dict[str, dict[str, str]] = {}
    try:
        unload(ours)
        insert_stock(kver)
        with Topology(n_rs=2) as topo:
            for family in (4, 6):
                servers(topo, family, 8080, 2)
            servers(topo, 4, 81, 2)
            found["stock"] = tables(topo, tmp_path, "stock")
    finally:    # the stock modules go (also after a failure), ours come back
        unload(sorted(n for n in loaded() if n.startswith("ip_vs")))
        subprocess.run(["modprobe", "-a", *ours], check=True)
    with Topology(n_rs=2) as topo:
        for family in (4, 6):
            servers(topo, family, 8080, 2)
        servers(topo, 4, 81, 2)
        found["ours"] = tables(topo, tmp_path, "ours")
    for name in ("nat", "dr"):
        stock_lines = found["stock"][name].splitlines()
        our_lines = found["ours"][name].splitlines()
        assert our_lines[1:] == stock_lines[1:], (found["stock"][name], found["ours"][name])
        assert len(our_lines) > 3
