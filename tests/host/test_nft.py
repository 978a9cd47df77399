"""The nftables layer (ipvsadm_py.nft) against this host's own nf_tables,
in a throwaway network namespace per test (``ip netns add``; deleted
afterwards, whatever happened).  No IPVS here: what the lists do to
packets in front of SYNPROXY is tested in a guest (tests/kernel/test_acl.py).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess

import pytest

from ipvsadm_py import nft as nft_module
from ipvsadm_py.acl import AccessList, Entry, Kind, make_target, parse_network
from ipvsadm_py.cli import acl as acl_cli
from ipvsadm_py.errors import InvalidInput
from ipvsadm_py.nft import (CHAIN, PRIORITY, TABLE, AccessLists, Nft, NftError,
                             attach_commands, detach_commands)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and nftables: needs root"),
    pytest.mark.skipif(shutil.which("nft", path="/usr/sbin:/sbin:/usr/bin") is None,
                       reason="nft (Debian package nftables) is not installed"),
]

VIP = make_target("10.0.0.100", "tcp", 80)
VIP6 = make_target("2001:db8:100::100")


def sh(ns: str, *argv: str, stdin: str | None = None) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, text=True,
                          capture_output=True, check=True).stdout


@pytest.fixture
def ns():
    name = f"lvsacl{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
    assert name not in subprocess.run(["ip", "netns", "list"], text=True,
                                      capture_output=True).stdout


def entries(*texts: str, timeout: int | None = None) -> list[Entry]:
    return [Entry(parse_network(t), timeout) for t in texts]


def ruleset(ns: str) -> str:
    return sh(ns, "nft", "list", "ruleset")


def test_lists_round_trip_and_table_layout(ns):
    lists = AccessLists(Nft(netns=ns))
    lists.add(Kind.DENY, VIP, entries("203.0.113.0/24", "198.51.100.7"))
    lists.add(Kind.DENY, VIP, entries("192.0.2.9", timeout=3600))
    lists.add(Kind.ALLOW, VIP6, entries("2001:db8:1::/48"))
    got = lists.read()
    assert set(got) == {(Kind.DENY, VIP), (Kind.ALLOW, VIP6)}
    deny = got[(Kind.DENY, VIP)].entries
    assert sorted(str(n) for n in deny) == ["192.0.2.9/32", "198.51.100.7/32",
                                            "203.0.113.0/24"]
    assert deny[parse_network("192.0.2.9")].timeout == 3600
    assert 3500 < deny[parse_network("192.0.2.9")].expires <= 3600
    objects = json.loads(sh(ns, "nft", "-j", "list", "table", "inet", TABLE))["nftables"]
    chain = next(o["chain"] for o in objects if "chain" in o)
    assert (chain["name"], chain["hook"], chain["prio"], chain["type"]) == \
        (CHAIN, "prerouting", PRIORITY, "filter")
    sets = {o["set"]["name"]: o["set"] for o in objects if "set" in o}
    lists = {"deny_tcp_10.0.0.100_80", "allow_any_2001:db8:100::100"}
    assert set(sets) == lists | {name + "_hosts" for name in lists}
    assert all(sets[name]["flags"] == ["interval", "timeout"] for name in lists)
    assert all(sets[name + "_hosts"]["flags"] == ["timeout"] for name in lists)
    assert all(sets[name]["gc-interval"] == sets[name + "_hosts"]["gc-interval"]
               == nft_module.GC_INTERVAL for name in lists)
    # single addresses in the hash set, prefixes in the interval set
    assert "198.51.100.7" in sets["deny_tcp_10.0.0.100_80_hosts"]["elem"]
    assert len(sets["deny_tcp_10.0.0.100_80_hosts"]["elem"]) == 2
    assert len(sets["deny_tcp_10.0.0.100_80"]["elem"]) == 1
    counters = {o["counter"]["name"] for o in objects if "counter" in o}
    assert counters == lists
    rules = [o["rule"] for o in objects if "rule" in o]
    assert len(rules) == 3 and all(r["expr"][-1] == {"drop": None} for r in rules)
    text = ruleset(ns)
    assert "ip daddr 10.0.0.100 tcp dport 80 ip saddr @deny_tcp_10.0.0.100_80_hosts" in text
    assert "ip daddr 10.0.0.100 tcp dport 80 ip saddr @deny_tcp_10.0.0.100_80 " in text
    assert ("ip6 daddr 2001:db8:100::100 ip6 saddr != @allow_any_2001:db8:100::100_hosts "
            "ip6 saddr != @allow_any_2001:db8:100::100 ") in text


def test_detach_and_attach_keep_the_sets_loaded(ns):
    nft = Nft(netns=ns)
    lists = AccessLists(nft)
    lists.add(Kind.DENY, VIP, entries("203.0.113.0/24", "198.51.100.7"))
    lists.add(Kind.ALLOW, VIP6, entries("2001:db8:1::/48"))
    before = ruleset(ns)
    nft.run(detach_commands())
    detached = ruleset(ns)
    assert "chain" not in detached and "hook" not in detached
    assert "203.0.113.0/24" in detached and "2001:db8:1::/48" in detached
    nft.run(attach_commands([AccessList(Kind.ALLOW, VIP6), AccessList(Kind.DENY, VIP)]))
    assert ruleset(ns) == before


def test_a_table_of_the_first_layout_is_moved_by_the_next_change(ns):
    """A table made before lists had a hash set (one interval set per list,
    single addresses in it): read whole, and the next change moves them."""
    nft = Nft(netns=ns)
    old = AccessList(Kind.DENY, VIP)
    nft.run([{"add": {"table": {"family": "inet", "name": TABLE}}},
             {"add": nft_module._chain()}, {"add": nft_module._sets(old)[0]},
             {"add": nft_module._obj("counter", name=old.name)},
             {"add": nft_module._elements(old.name, entries("203.0.113.0/24", "198.51.100.7"))},
             {"add": nft_module.encode_rules(old)[1]}])
    lists = AccessLists(nft)
    [read] = lists.read().values()
    assert read.legacy and sorted(map(str, read.entries)) == ["198.51.100.7/32",
                                                               "203.0.113.0/24"]
    lists.add(Kind.DENY, VIP, entries("192.0.2.1"))
    [now] = lists.read().values()
    assert not now.legacy
    assert sorted(map(str, now.entries)) == ["192.0.2.1/32", "198.51.100.7/32", "203.0.113.0/24"]
    text = ruleset(ns)
    assert text.count("saddr @deny_tcp_10.0.0.100_80_hosts") == 1
    assert text.count("saddr @deny_tcp_10.0.0.100_80 ") == 1


def test_bad_entries_change_nothing(ns):
    lists = AccessLists(Nft(netns=ns))
    lists.add(Kind.DENY, VIP, entries("203.0.113.0/24"))
    before = ruleset(ns)
    for bad in (entries("203.0.113.7"), entries("2001:db8::1"),
                entries("198.51.100.0/24", "198.51.100.0/25")):
        with pytest.raises(InvalidInput):
            lists.add(Kind.DENY, VIP, bad)
    with pytest.raises(InvalidInput, match="not in the deny list"):
        lists.delete(Kind.DENY, VIP, [parse_network("192.0.2.1")])
    out, err = io.StringIO(), io.StringIO()
    status = acl_cli.main(["deny", "add", "203.0.113.5/24", "198.51.100.1", "--vip",
                           "10.0.0.100:80"], out, err, lists)
    assert status == 2 and "host bits set" in err.getvalue()
    assert "nothing was changed" in err.getvalue()
    assert re.sub(r" expires \S+", "", ruleset(ns)) == before


def test_a_refused_transaction_changes_nothing(ns):
    """nftables itself refusing (a set of ours that someone changed by
    hand: the add of an overlapping interval fails in the kernel) leaves
    every part of the transaction undone."""
    lists = AccessLists(Nft(netns=ns))
    lists.add(Kind.DENY, VIP, entries("203.0.113.0/24"))
    sh(ns, "nft", "-j", "-f", "-", stdin=json.dumps({"nftables": [{"add": {"element": {
        "family": "inet", "table": TABLE, "name": "deny_tcp_10.0.0.100_80",
        "elem": [{"prefix": {"addr": "192.0.2.0", "len": 24}}]}}}]}))
    before = ruleset(ns)
    stale = lists.read()
    del stale[(Kind.DENY, VIP)].entries[parse_network("192.0.2.0/24")]
    wanted = [AccessList(Kind.DENY, VIP, {e.network: e for e in
                                          entries("203.0.113.0/24", "192.0.2.128/25")}),
              AccessList(Kind.ALLOW, VIP6, {e.network: e for e in entries("2001:db8::/32")})]
    with pytest.raises(NftError, match="nftables refused"):
        lists.commit(lists.plan(wanted, current=stale))
    assert re.sub(r" expires \S+", "", ruleset(ns)) == before


def test_apply_plans_only_the_difference(ns):
    lists = AccessLists(Nft(netns=ns))
    wanted = [AccessList(Kind.DENY, VIP, {e.network: e for e in
                                          entries("203.0.113.0/24", "198.51.100.7")})]
    lists.commit(lists.plan(wanted))
    assert not lists.plan(wanted)
    wanted[0].entries[parse_network("192.0.2.0/24")] = entries("192.0.2.0/24")[0]
    del wanted[0].entries[parse_network("198.51.100.7")]
    tx = lists.plan(wanted)
    assert tx.steps == [("delete", "deny", "tcp 10.0.0.100:80 198.51.100.7"),
                        ("add", "deny", "tcp 10.0.0.100:80 192.0.2.0/24")]
    assert not any("flush" in c or "rule" in c.get("add", {}) for c in tx.commands)
    lists.commit(tx)
    assert not lists.plan(wanted)
    assert set(lists.read()[(Kind.DENY, VIP)].entries) == set(wanted[0].entries)
    lists.commit(lists.plan([]))
    assert TABLE not in sh(ns, "nft", "list", "tables")


def test_100000_entries_in_one_transaction(ns):
    nft = Nft(netns=ns)
    calls = []
    run = nft.run
    nft.run = lambda commands: (calls.append(len(commands)), run(commands))  # type: ignore
    lists = AccessLists(nft)
    nets = entries(*(f"100.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(100_000)))
    lists.add(Kind.DENY, VIP, nets)
    assert len(calls) == 1
    assert len(lists.read()[(Kind.DENY, VIP)].entries) == 100_000


def test_our_table_leaves_other_tables_alone(ns):
    other = {"nftables": [
        {"add": {"table": {"family": "inet", "name": "host_fw"}}},
        {"add": {"chain": {"family": "inet", "table": "host_fw", "name": "pre",
                           "type": "filter", "hook": "prerouting", "prio": -300,
                           "policy": "accept"}}},
        {"add": {"rule": {"family": "inet", "table": "host_fw", "chain": "pre",
                          "expr": [{"counter": None}]}}}]}
    sh(ns, "nft", "-j", "-f", "-", stdin=json.dumps(other))
    theirs = sh(ns, "nft", "list", "table", "inet", "host_fw")
    lists = AccessLists(Nft(netns=ns))
    lists.add(Kind.DENY, VIP, entries("203.0.113.0/24"))
    lists.remove()
    assert sh(ns, "nft", "list", "table", "inet", "host_fw") == theirs
    lists.add(Kind.DENY, VIP, entries("203.0.113.0/24"))
    ours = sh(ns, "nft", "list", "table", "inet", TABLE)
    sh(ns, "nft", "delete", "table", "inet", "host_fw")
    assert sh(ns, "nft", "list", "table", "inet", TABLE) == ours


def test_command_line(ns):
    lists = AccessLists(Nft(netns=ns))

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return acl_cli.main(list(argv), out, err, lists), out.getvalue(), err.getvalue()

    assert run("deny", "add", "203.0.113.0/24", "--vip", "10.0.0.100:80",
               "--timeout", "1h") == (0, "+ deny tcp 10.0.0.100:80 new list\n"
                                         "+ deny tcp 10.0.0.100:80 203.0.113.0/24 timeout 1h\n",
                                      "")
    status, out, _ = run("deny", "add", "203.0.113.0/24", "--vip", "10.0.0.100:80",
                         "--timeout", "2h")
    assert status == 0 and "timeout 2h" in out
    assert lists.read()[(Kind.DENY, VIP)].entries[parse_network("203.0.113.0/24")].timeout \
        == 7200
    assert run("allow", "add", "2001:db8::/32", "--vip", "[2001:db8:100::100]:443",
               "--protocol", "udp")[0] == 0
    status, out, _ = run("acl", "list")
    assert status == 0
    assert out.splitlines()[0] == ("allow udp [2001:db8:100::100]:443: 1 entry, dropped 0 "
                                   "packets (0 bytes)")
    status, out, _ = run("deny", "list", "--json")
    doc = json.loads(out)
    assert [lst["address"] for lst in doc["lists"]] == ["10.0.0.100"]
    assert run("deny", "del", "203.0.113.0/24", "--vip", "10.0.0.100:80") == \
        (0, "- deny tcp 10.0.0.100:80 203.0.113.0/24\n", "")
    assert run("deny", "flush", "--vip", "10.0.0.100:80")[0] == 0
    assert run("deny", "flush", "--vip", "10.0.0.100:80")[0] == 2
    assert run("acl", "remove")[0] == 0
    assert TABLE not in sh(ns, "nft", "list", "tables")


# ---------------------------------------------------------------- keepalived.conf
KA_CONF = """
deny_group abusers {
    203.0.113.0/24
    198.51.100.7 timeout 1h
}
allow_group partners { 192.0.2.0/24 }
virtual_server 10.0.0.100 80 {
    protocol TCP
    deny_group abusers
    real_server 10.0.2.11 80 { weight 1 }
}
virtual_server 10.0.0.100 443 {
    protocol TCP
    allow_group partners
    real_server 10.0.2.11 443 { weight 1 }
}
"""


class RecordingNft(Nft):
    """The real nft of a namespace; keeps every transaction it sent."""

    def __init__(self, netns: str) -> None:
        super().__init__(netns=netns)
        self.sent: list[list[dict]] = []

    def run(self, commands):
        self.sent.append(commands)
        super().run(commands)


def apply_keepalived(nft: Nft, path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = acl_cli.main(["acl", "apply-keepalived", "-f", str(path)], out, err,
                          AccessLists(nft))
    return status, out.getvalue(), err.getvalue()


def test_keepalived_conf_lists_are_applied_and_a_change_sends_only_the_difference(
        ns, tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(KA_CONF)
    nft = RecordingNft(ns)
    assert apply_keepalived(nft, conf)[0] == 0
    first = AccessLists(Nft(netns=ns)).read()
    deny = first[(Kind.DENY, VIP)].entries
    assert sorted(str(n) for n in deny) == ["198.51.100.7/32", "203.0.113.0/24"]
    assert deny[parse_network("198.51.100.7")].timeout == 3600
    allow = make_target("10.0.0.100", "tcp", 443)
    assert [str(n) for n in first[(Kind.ALLOW, allow)].entries] == ["192.0.2.0/24"]
    # the same file again: nothing to send
    status, out, _ = apply_keepalived(nft, conf)
    assert status == 0 and out == "nothing to change\n" and len(nft.sent) == 1
    # one entry replaced: one delete and one add of elements, rules untouched
    conf.write_text(KA_CONF.replace("203.0.113.0/24", "203.0.113.0/25"))
    assert apply_keepalived(nft, conf)[0] == 0
    verbs = [(next(iter(c)), next(iter(next(iter(c.values()))))) for c in nft.sent[-1]]
    assert [v for v in verbs if v not in (("add", "table"), ("add", "chain"))] == \
        [("delete", "element"), ("add", "element")]       # no flush, no rule, no set
    dels = [c["delete"]["element"]["elem"] for c in nft.sent[-1] if "delete" in c]
    adds = [c["add"]["element"]["elem"] for c in nft.sent[-1]
            if "add" in c and "element" in c["add"]]
    assert dels == [[{"prefix": {"addr": "203.0.113.0", "len": 24}}]]
    assert adds == [[{"prefix": {"addr": "203.0.113.0", "len": 25}}]]
    later = AccessLists(Nft(netns=ns)).read()[(Kind.DENY, VIP)].entries
    kept = later[parse_network("198.51.100.7")]
    assert kept.timeout == 3600           # the temporary entry kept its clock


def test_a_bad_keepalived_conf_changes_nothing(ns, tmp_path):
    conf = tmp_path / "keepalived.conf"
    conf.write_text(KA_CONF)
    nft = RecordingNft(ns)
    assert apply_keepalived(nft, conf)[0] == 0
    before = re.sub(r" expires \S+", "", ruleset(ns))     # the clock runs
    conf.write_text(KA_CONF.replace("192.0.2.0/24", "192.0.2.1/24").replace(
        "203.0.113.0/24", "203.0.113.0/23"))
    status, _, err = apply_keepalived(nft, conf)
    assert status == 2 and len(nft.sent) == 1
    assert "allow_group partners: 192.0.2.1/24 has host bits set" in err
    assert re.sub(r" expires \S+", "", ruleset(ns)) == before


# ---------------------------------------------------------------- exporter
def test_exporter_shows_what_each_list_dropped(ns, tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from ipvsadm_py.exporter import collect

    def acl_series(nft: Nft) -> dict:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(collect.BalancerCollector(loaded=lambda: False,
                                                    lists=AccessLists(nft)))
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(generate_latest(registry).decode())
                for s in fam.samples if "_acl_" in s.name}

    assert acl_series(Nft(netns=ns)) == {}            # no table: no series, no error
    sh(ns, "ip", "link", "set", "lo", "up")
    conf = tmp_path / "keepalived.conf"
    conf.write_text("deny_group me { 127.0.0.1 }\nvirtual_server 127.0.0.1 80 {\n"
                    "    protocol TCP\n    deny_group me\n"
                    "    real_server 127.0.0.2 80 { weight 1 }\n}\n")
    assert apply_keepalived(Nft(netns=ns), conf)[0] == 0
    # a SYN to the listed VIP from the listed client: dropped (and retried)
    sh(ns, "python3", "-c", "import socket\ns = socket.socket()\ns.settimeout(1.5)\n"
       "try:\n    s.connect(('127.0.0.1', 80))\nexcept OSError:\n    pass\n")
    got = acl_series(Nft(netns=ns))
    labels = (("list", "deny"), ("port", "80"), ("proto", "tcp"), ("vip", "127.0.0.1"))
    counter = json.loads(sh(ns, "nft", "-j", "list", "counters"))["nftables"]
    packets = next(o["counter"]["packets"] for o in counter if "counter" in o)
    assert got[("lvs_acl_dropped_packets_total", labels)] == packets >= 1
    assert got[("lvs_acl_dropped_bytes_total", labels)] >= 40 * packets
