"""Client allow and deny lists (nftables, ``table inet lvs_toolkit``) in
front of SYNPROXY + FULLNAT services, in a booted kernel.

::

    client ------------- lb ------------------------- rs1 rs2
    .2 / ::2  real        SYNPROXY + FULLNAT on VIP:80  whoami servers
    .3 / ::3  "other"     table inet lvs_toolkit
              (scapy SYNs) (prerouting, priority raw)

The client namespace has two addresses per family: the first connects with
real sockets, the second (OTHER) sends crafted SYNs over a raw socket and
is the one put on a list.  A SYN the balancer answers shows up as a
SYN/ACK in a capture on the client's link; a dropped one leaves no SYN/ACK,
no SYNPROXY count and no session.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import pytest

from ipvsadm_py.acl import Entry, Kind, make_target, parse_network
from ipvsadm_py.nft import TABLE, AccessLists, Nft
from tests.kernel.fnat_support import conn_count, tcp_segment
from tests.kernel.test_synproxy import PORT, Lab, make_topo
from tools import netlab
from tools.netlab import Capture

pytestmark = pytest.mark.kernel

OTHER = {4: "10.0.1.3", 6: "2001:db8:1::3"}
PY = str(Path(sys.executable).parent / "ipvsadm-py")


@pytest.fixture(params=["fnat-4", "fnat-6"])
def lab(request):
    family = int(request.param.split("-")[1])
    topo = make_topo()
    try:
        # OTHER is never a socket's source: a secondary IPv4 address, a
        # deprecated IPv6 one (crafted packets name it themselves)
        prefix = 24 if family == 4 else 64
        topo.ip_batch(topo.client, [f"addr add {OTHER[family]}/{prefix} dev eth0"
                                    + (" nodad preferred_lft 0" if family == 6 else "")])
        the_lab = Lab(topo, family, "fnat")
        try:
            yield the_lab
        finally:
            the_lab.close()
    finally:
        topo.down()


def lists_of(lab: Lab) -> AccessLists:
    return AccessLists(Nft(netns=lab.topo.lb))


def cli(lab: Lab, args: str):
    """The installed ``ipvsadm-py ARGS``, in the balancer's namespace."""
    return lab.topo.sh(lab.topo.lb, f"{PY} {args}", check=False)


def syn_answers(lab: Lab, src: str, count: int, tmp_path: Path) -> int:
    """Send ``count`` SYNs from ``src`` to VIP:80 (crafted, ever new source
    ports); how many SYN/ACKs came back."""
    from scapy.all import TCP
    first = random.randrange(20000, 60000 - count)
    pcap = tmp_path / f"syn-{first}.pcap"
    with Capture(lab.topo, lab.topo.client, "eth0",
                 f"tcp and src port {PORT} and dst portrange {first}-{first + count}",
                 pcap) as cap:
        for sport in range(first, first + count):
            netlab.send_raw(lab.topo, lab.topo.client,
                            tcp_segment(lab.family, src, lab.vip, sport, PORT,
                                        random.getrandbits(32), 0, "S"), lab.family)
    return sum(1 for p in cap.packets() if TCP in p and p[TCP].flags & 0x12 == 0x12)


def counter(lab: Lab, kind: str) -> int:
    """Packets dropped by the list of ``kind`` for VIP:80."""
    target = make_target(lab.vip, "tcp", PORT)
    return lists_of(lab).read()[(Kind(kind), target)].packets


def test_denied_client_gets_no_synack_and_no_session(lab, tmp_path):
    """Before: OTHER's SYNs get SYN/ACKs.  Denied (one transaction through
    the command line): none, no SYNPROXY count, no session, the list's
    counter has them; the real client still gets through."""
    other = OTHER[lab.family]
    assert syn_answers(lab, other, 3, tmp_path) == 3, "control: SYNPROXY answers OTHER"
    vip = netlab.hostport(lab.vip, PORT)
    res = cli(lab, f"deny add {other} --vip {vip}")
    assert res.returncode == 0, res.stderr
    before, sessions = lab.stats(), conn_count(lab.topo)
    assert syn_answers(lab, other, 10, tmp_path) == 0
    after = lab.stats()
    assert after["synproxy_syn_cnt"] == before["synproxy_syn_cnt"]
    assert conn_count(lab.topo) == sessions
    assert counter(lab, "deny") == 10
    name, _, _ = lab.echo(64 * 1024)
    assert name in ("rs1", "rs2")
    listed = json.loads(cli(lab, "deny list --json").stdout)["lists"]
    assert [e["network"] for e in listed[0]["entries"]] == [other]


def test_ban_expires_on_time(lab, tmp_path):
    """A temporary ban (an hour, then shortened to ``--timeout 10s``: the
    entry is deleted and added again in one transaction) drops OTHER's
    SYNs, leaves the set by itself, and then SYNPROXY answers OTHER again."""
    other = OTHER[lab.family]
    vip = netlab.hostport(lab.vip, PORT)
    res = cli(lab, f"deny add {other} --vip {vip} --timeout 1h")
    assert res.returncode == 0, res.stderr
    res = cli(lab, f"deny add {other} --vip {vip} --timeout 10s")
    assert res.returncode == 0, res.stderr
    entry = lists_of(lab).read()[(Kind.DENY, make_target(lab.vip, "tcp", PORT))].entries
    assert [e.timeout for e in entry.values()] == [10]
    assert syn_answers(lab, other, 2, tmp_path) == 0
    target = make_target(lab.vip, "tcp", PORT)
    netlab.wait_for(lambda: not lists_of(lab).read()[(Kind.DENY, target)].entries,
                    timeout=30)
    assert syn_answers(lab, other, 2, tmp_path) == 2


def test_allow_list_admits_only_its_prefixes(lab, tmp_path):
    """An allow list of the real client's address: the client connects,
    OTHER (same subnet) gets no SYN/ACK; a VIP-wide allow list works the
    same for every port."""
    me = netlab.client_addr(lab.family)
    other = OTHER[lab.family]
    lists = lists_of(lab)
    lists.add(Kind.ALLOW, make_target(lab.vip, "tcp", PORT), [Entry(parse_network(me))])
    assert syn_answers(lab, other, 5, tmp_path) == 0
    assert counter(lab, "allow") == 5
    lab.echo(16 * 1024)
    lists.flush(Kind.ALLOW, make_target(lab.vip, "tcp", PORT))
    assert syn_answers(lab, other, 2, tmp_path) == 2
    lists.add(Kind.ALLOW, make_target(lab.vip), [Entry(parse_network(me))])
    assert syn_answers(lab, other, 2, tmp_path) == 0
    lab.echo(16 * 1024)


def test_100000_deny_entries_in_one_transaction(lab, tmp_path):
    """100,000 entries (plus OTHER) go in with one nft transaction; OTHER is
    dropped, the real client is not, and the list reads back whole."""
    other = OTHER[lab.family]
    if lab.family == 4:
        nets = [parse_network(f"100.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
                for i in range(100_000)]
    else:
        nets = [parse_network(f"2001:db8:beef::{i >> 16:x}:{i & 0xffff:x}")
                for i in range(100_000)]
    entries = [Entry(n) for n in nets] + [Entry(parse_network(other))]
    target = make_target(lab.vip, "tcp", PORT)
    lists = lists_of(lab)
    calls: list = []
    run = lists.nft.run
    lists.nft.run = lambda commands: (calls.append(1), run(commands))  # type: ignore
    started = time.monotonic()
    lists.add(Kind.DENY, target, entries)
    took = time.monotonic() - started
    assert len(calls) == 1
    assert len(lists.read()[(Kind.DENY, target)].entries) == 100_001
    assert syn_answers(lab, other, 3, tmp_path) == 0
    lab.echo(16 * 1024)
    print(f"100,001 entries loaded in {took:.1f} s")


NFT_OTHER = {"nftables": [
    {"add": {"table": {"family": "inet", "name": "host_fw"}}},
    {"add": {"chain": {"family": "inet", "table": "host_fw", "name": "input",
                       "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}},
    {"add": {"set": {"family": "inet", "table": "host_fw", "name": "blocked",
                     "type": "ipv4_addr", "flags": ["interval"]}}},
    {"add": {"element": {"family": "inet", "table": "host_fw", "name": "blocked",
                         "elem": [{"prefix": {"addr": "192.0.2.0", "len": 24}}]}}},
    {"add": {"rule": {"family": "inet", "table": "host_fw", "chain": "input", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": "@blocked"}},
        {"counter": {"packets": 0, "bytes": 0}}, {"drop": None}]}}},
]}


def _ruleset(lab: Lab, table: str) -> str:
    return lab.topo.sh(lab.topo.lb, f"nft list table inet {table}", check=False).stdout


def test_our_table_and_the_hosts_rules_are_independent(lab, tmp_path):
    """The host's own table stays as it was while ours comes and goes, and
    ours keeps working when the host's goes."""
    lab.topo.sh(lab.topo.lb, f"nft -j -f - <<'EOF'\n{json.dumps(NFT_OTHER)}\nEOF")
    theirs = _ruleset(lab, "host_fw")
    lists = lists_of(lab)
    target = make_target(lab.vip, "tcp", PORT)
    lists.add(Kind.DENY, target, [Entry(parse_network(OTHER[lab.family]))])
    lists.remove()
    assert _ruleset(lab, "host_fw") == theirs
    assert TABLE not in lab.topo.sh(lab.topo.lb, "nft list tables").stdout
    lists.add(Kind.DENY, target, [Entry(parse_network(OTHER[lab.family]))])
    ours = _ruleset(lab, TABLE)
    lab.topo.sh(lab.topo.lb, "nft delete table inet host_fw")
    assert _ruleset(lab, TABLE) == ours
    assert syn_answers(lab, OTHER[lab.family], 2, tmp_path) == 0


APPLY = """
version: 1
services:
  - protocol: tcp
    address: {vip}
    port: 80
    synproxy: true
    laddrs: ["{laddr}"]
    dests:
      - {{address: "{rs}", forward: fnat}}
    deny:
{deny}
"""


def test_apply_sets_the_lists_and_touches_only_the_difference(lab, tmp_path):
    """``apply`` of a file with a deny list: OTHER dropped; the same file
    again plans nothing; one entry more plans (and sends) only that one,
    and the temporary entry keeps its clock."""
    from tests.kernel.test_synproxy import LADDRS
    lab.ipvs.flush()
    other = OTHER[lab.family]
    plen = 24 if lab.family == 4 else 64
    spare = "192.0.2.0/24" if lab.family == 4 else "2001:db8:ffff::/48"
    spare2 = "198.51.100.0/24" if lab.family == 4 else "2001:db8:fffe::/48"

    def write(entries: list[str]) -> Path:
        path = tmp_path / f"lb{len(entries)}.yaml"
        path.write_text(APPLY.format(vip=lab.vip, laddr=LADDRS[lab.family][0],
                                     rs=netlab.rs_addr(1, lab.family),
                                     deny="\n".join(f"      - {e}" for e in entries)))
        return path

    first = [f'{{address: "{other}", timeout: 1h}}', f'"{spare}"']
    res = cli(lab, f"apply {write(first)}")
    assert res.returncode == 0, res.stderr
    assert f"+ deny tcp {netlab.hostport(lab.vip, 80)} {other} timeout 1h" in res.stdout
    assert syn_answers(lab, other, 2, tmp_path) == 0
    target = make_target(lab.vip, "tcp", PORT)
    ban = parse_network(other)

    def expires() -> int:
        return lists_of(lab).read()[(Kind.DENY, target)].entries[ban].expires

    netlab.wait_for(lambda: expires() <= 3597, timeout=30)
    again = cli(lab, f"apply {write(first)}")
    assert (again.returncode, again.stdout) == (0, "nothing to change\n")
    res = cli(lab, f"apply {write(first + [repr(spare2)])}")
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"+ deny tcp {netlab.hostport(lab.vip, 80)} {spare2}\n"
    bad = cli(lab, f"apply {write(first + [repr(other + '/' + str(plen))])}")
    assert bad.returncode == 2 and "has host bits set" in bad.stderr
    live = lists_of(lab).read()[(Kind.DENY, target)].entries
    assert len(live) == 3
    assert expires() <= 3597, "an unchanged temporary entry was added again"
