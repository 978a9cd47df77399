"""Bad FULLNAT/SYNPROXY configuration: an error that names the line, the
virtual server left out as a whole, the rest of the file loaded.

::

    client ---- lb (keepalived: one file, good and bad virtual servers) ---- rs1 rs2

Each bad virtual server has its own port; the error is looked for in
``keepalived --config-test`` output (which names the file and line) and in
the running daemon's log, and the kernel's table must hold the good ones
only, complete.
"""

from __future__ import annotations

import re

import pytest

from tools import netlab
from tools.keepalived_lab import dests, laddrs, services, wait_table
from tests.kernel.keepalived_support import (KA_NS, LADDRS, fnat_topo, keepalived,  # noqa: F401
                                             servers)

pytestmark = pytest.mark.kernel


def rs_block(port: int, method: str = "") -> str:
    return (f"    real_server {netlab.rs_addr(1)} {port} {{\n"
            + (f"        lvs_method {method}\n" if method else "")
            + "        TCP_CHECK {\n            connect_timeout 2\n        }\n    }\n")


def vs(port: int, body: str, rs: str | None = None, proto: str = "TCP") -> str:
    return (f"virtual_server {netlab.VIP4} {port} {{\n    delay_loop 3\n    lb_algo rr\n"
            f"    protocol {proto}\n{body}{rs if rs is not None else rs_block(port)}}}\n")


#: (port, the virtual server, the line's text the error is about, what it says)
BAD = [
    (9001, vs(9001, "    lb_kind FNAT\n    laddr_group_name nosuch\n"),
     "laddr_group_name nosuch", r"local_address_group nosuch is not defined"),
    (9002, vs(9002, "    lb_kind FNAT\n    local_address {\n        2001:db8:3::1\n    }\n"),
     "        2001:db8:3::1", r"is IPv4: local address 2001:db8:3::1 is IPv6"),
    (9003, vs(9003, "    lb_kind DR\n    syn_proxy\n"),
     "syn_proxy", r"syn_proxy needs NAT or FNAT real servers, .* uses DR"),
    (9004, vs(9004, "    lb_kind NAT\n    syn_proxy\n", rs_block(9004, "TUN")),
     "syn_proxy", r"syn_proxy needs NAT or FNAT real servers, .* uses TUN"),
    (9005, vs(9005, "    lb_kind FNAT\n    local_address {\n        10.0.3.1\n    }\n",
              proto="SCTP"),
     "lb_kind FNAT", r"FNAT forwards TCP and UDP only"),
    (9006, vs(9006, "    lb_kind FNAT\n    local_address {\n        10.0.3.1\n"
                    "        10.0.3.999\n    }\n"),
     "        10.0.3.999", r"invalid local address '10\.0\.3\.999'"),
    (9007, vs(9007, "    lb_kind FNAT\n"),
     "lb_kind FNAT", r"FNAT needs local addresses"),
    (9008, vs(9008, "    lb_kind NAT\n    local_address {\n        10.0.3.1\n    }\n"),
     "local_address {", r"local addresses are for FNAT real servers"),
]

GOOD = (vs(80, "    lb_kind FNAT\n    syn_proxy\n    local_address {\n        10.0.3.1-2\n    }\n")
        + vs(8080, "    lb_kind NAT\n"))


def the_file() -> tuple[str, dict[int, int]]:
    """Good and bad virtual servers in one file; the line of each bad one's error."""
    text = GOOD
    lines: dict[int, int] = {}
    for port, block, needle, _ in BAD:
        start = text.count("\n")
        text += block
        offset = next(i for i, line in enumerate(block.splitlines())
                      if line.strip() == needle.strip())
        lines[port] = start + offset + 1
    return text, lines


def test_errors_name_the_line_and_only_the_bad_virtual_servers_are_left_out(fnat_topo,
                                                                             keepalived):
    servers(fnat_topo, 4, 80, 1)
    servers(fnat_topo, 4, 8080, 1)
    text, lines = the_file()
    checked = keepalived.config_test(text)
    assert checked.returncode != 0, "config errors must make --config-test fail"
    for port, _, _, what in BAD:
        assert re.search(rf"Line {lines[port]}\) .*{what}", checked.stderr), (
            port, lines[port], checked.stderr)
        assert re.search(rf"\]:\w+:{port}: skipped for its FULLNAT/SYNPROXY errors",
                         checked.stderr), (port, checked.stderr)

    keepalived.start(text)
    table = wait_table(KA_NS, lambda t: all(
        len(t.get(f"tcp {netlab.VIP4}:{p}", {}).get("dests", [])) == 1 for p in (80, 8080)))
    keepalived.wait_log(r"skipped for its FULLNAT/SYNPROXY errors")
    log = keepalived.log()
    for port, _, _, what in BAD:
        assert re.search(rf"Line {lines[port]}\) .*{what}", log), (port, log[-4000:])
    assert sorted(table) == [f"tcp {netlab.VIP4}:80", f"tcp {netlab.VIP4}:8080"]
    fnat = table[f"tcp {netlab.VIP4}:80"]
    assert fnat["synproxy"] and laddrs(fnat) == LADDRS[4]
    assert [d["forward"] for d in dests(fnat).values()] == ["fullnat"]
    assert [d["forward"] for d in dests(table[f"tcp {netlab.VIP4}:8080"]).values()] == ["masq"]


def test_a_good_file_passes_the_config_test(keepalived):
    text = GOOD + ("local_address_group g1 {\n    10.0.3.1\n    10.0.3.2 dpdk0\n}\n"
                   + vs(81, "    lb_kind FNAT\n    laddr_group_name g1\n"))
    checked = keepalived.config_test(text)
    assert checked.returncode == 0, checked.stderr


def test_bad_reload_keeps_the_virtual_server_out_and_the_rest_running(fnat_topo, keepalived):
    """A reload that breaks one virtual server's FULLNAT settings removes it
    (as any virtual server gone from the file) and leaves the others."""
    servers(fnat_topo, 4, 80, 1)
    servers(fnat_topo, 4, 8080, 1)
    keepalived.start(GOOD)
    wait_table(KA_NS, lambda t: len(t) == 2 and all(s["dests"] for s in t.values()))
    broken = GOOD.replace("10.0.3.1-2", "10.0.3.1-2\n        2001:db8:3::9")
    offset = keepalived.reload(broken)
    keepalived.wait_log(r"local address 2001:db8:3::9 is IPv6", after=offset)
    table = wait_table(KA_NS, lambda t: sorted(t) == [f"tcp {netlab.VIP4}:8080"])
    assert dests(table[f"tcp {netlab.VIP4}:8080"])
    offset = keepalived.reload(GOOD)
    wait_table(KA_NS, lambda t: len(t) == 2 and all(s["dests"] for s in t.values())
               and laddrs(t[f"tcp {netlab.VIP4}:80"]) == LADDRS[4])
    assert services(KA_NS)
