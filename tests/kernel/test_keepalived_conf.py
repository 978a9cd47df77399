"""``ipvsadm-py apply`` of a keepalived.conf and ``export --format
keepalived`` on the real module (own netns ``ipvs-t``, no traffic):

    keepalived.conf --apply--> IPVS table --export--> keepalived text
                                    ^                        |
                                    +---- apply (empty) -----+
"""

from __future__ import annotations

import json
import re

import pytest

from tests.kernel.test_ipvsadm_compat import ns, py  # noqa: F401 (fixture)
from tests.kernel.test_ipvsadm_ext import _fullnat_or_skip, _synproxy_or_skip

pytestmark = pytest.mark.kernel

CONF = """\
! keepalived.conf of a FULLNAT balancer: only the virtual servers are read
global_defs {
    router_id lb1
}
vrrp_instance VI_1 {
    state MASTER
    interface d0
    virtual_router_id 51
    virtual_ipaddress {
        10.0.0.100/24 dev d0
    }
}
local_address_group lips {
    10.0.3.1-3 d0                # DPVS's device name: not used
}
virtual_server 10.0.0.100 80
{
    delay_loop 6
    lb_algo wrr
    lb_kind FNAT
    protocol TCP
    syn_proxy
    laddr_group_name lips
    local_address { 10.0.3.10 }
    real_server 10.0.2.11 8080 {
        weight 3
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.2.12 8080 {
        weight 1
        uthreshold 100
        notify_down "/bin/echo { down }"
    }
}
virtual_server 2001:db8:100::100 443 {
    lb_algo sh
    sh-port
    lb_kind NAT
    protocol TCP
    persistence_timeout 600
    persistence_granularity 64
    real_server 2001:db8:2::11 8443 {
        weight 2
    }
}
"""

SAVED = """\
-A -t 10.0.0.100:80 -s wrr -j enable
-P -t 10.0.0.100:80 -z 10.0.3.1
-P -t 10.0.0.100:80 -z 10.0.3.2
-P -t 10.0.0.100:80 -z 10.0.3.3
-P -t 10.0.0.100:80 -z 10.0.3.10
-a -t 10.0.0.100:80 -r 10.0.2.11:8080 -b -w 3
-a -t 10.0.0.100:80 -r 10.0.2.12:8080 -b -w 1
-A -t [2001:db8:100::100]:443 -s sh -p 600 -M 64 -b sh-port
-a -t [2001:db8:100::100]:443 -r [2001:db8:2::11]:8443 -m -w 2
"""


def _state() -> tuple[list[str], dict, list[str]]:
    """The table as -Sn lines, as --json, and its local addresses (-G); the
    kernel lists local addresses in the order they were added, so they are
    compared sorted."""
    saved, listing, laddrs = py("-Sn"), py("-Ln --json"), py("-G -n")
    assert saved.returncode == listing.returncode == laddrs.returncode == 0
    doc = json.loads(listing.stdout)
    for svc in doc["services"]:
        svc.get("laddrs", []).sort(key=lambda la: la["address"])
    return sorted(saved.stdout.splitlines()), doc, sorted(laddrs.stdout.splitlines()[1:])


def test_apply_export_reapply(ns, tmp_path):
    _fullnat_or_skip()
    _synproxy_or_skip()
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    res = py(f"apply {conf}")
    assert res.returncode == 0, res.stderr
    saved, listing, laddrs = _state()
    assert saved == sorted(SAVED.splitlines()), saved
    text = py("-Ln").stdout
    assert "TCP  10.0.0.100:80 wrr synproxy" in text
    assert "  -> 10.0.2.11:8080               FullNat 3" in text
    assert len(listing["services"]) == 2, listing
    assert re.search(r"-> 10\.0\.2\.12:8080 +100 +0 ", py("-Ln --thresholds").stdout)
    assert py(f"apply {conf}").stdout == "nothing to change\n"

    exported = py("export --format keepalived")
    assert exported.returncode == 0, exported.stderr
    assert "local_address {\n        10.0.3.1-3\n        10.0.3.10\n    }" in exported.stdout
    again = tmp_path / "exported.conf"
    again.write_text(exported.stdout)
    assert py("-C").returncode == 0 and py("-Sn").stdout == ""
    res = py(f"apply {again}")
    assert res.returncode == 0, res.stderr
    assert _state() == (saved, listing, laddrs)
    assert py(f"apply {again}").stdout == "nothing to change\n"


def test_bad_file_changes_nothing(ns, tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.replace("local_address { 10.0.3.10 }", "local_address { 127.0.0.1 }"))
    res = py(f"apply {conf}")
    assert res.returncode == 2
    assert f"{conf}:24: local_address: invalid local address '127.0.0.1': a loopback " \
        "address" in res.stderr
    assert py("-Sn").stdout == ""
