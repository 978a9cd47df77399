"""ipvsadm_py.nft without a kernel: the JSON it writes, what it reads back,
and the one transaction of a change (a fake ``nft`` keeps the table)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ipvsadm_py import nft
from ipvsadm_py.acl import AccessList, Entry, Kind, make_target, parse_network
from ipvsadm_py.cli import acl as acl_cli
from ipvsadm_py.errors import InvalidInput

VIP = make_target("10.0.0.100", "tcp", 80)
VIP6 = make_target("2001:db8::100")


def lst(kind: Kind, target, *texts: str, timeout: int | None = None) -> AccessList:
    return AccessList(kind, target, {parse_network(t): Entry(parse_network(t), timeout)
                                     for t in texts})


class FakeNft(nft.Nft):
    """Keeps the table as decoded lists; records every transaction."""

    def __init__(self, lists: dict | None = None, legacy: bool = False) -> None:
        super().__init__()
        self.lists = lists or {}
        self.legacy = legacy        # the first layout: one set per list
        self.sent: list[list[dict[str, Any]]] = []

    def available(self) -> bool:
        return True

    def table(self):
        if not self.lists:
            return None
        out: list[dict[str, Any]] = []
        for one in self.lists.values():
            sets = {one.name: [], one.name + nft.HOSTS: []}
            for e in one.entries.values():
                single = e.network.prefixlen == e.network.max_prefixlen
                sets[one.name + nft.HOSTS if single and not self.legacy else one.name].append(
                    nft.encode_entry(e) if e.timeout is None else
                    {"elem": {"val": nft.encode_entry(Entry(e.network)), "timeout": e.timeout,
                              "expires": e.timeout - 1}})
            for name, elem in sets.items():
                if not (self.legacy and name.endswith(nft.HOSTS)):
                    out.append({"set": {"name": name, "elem": elem}})
            out.append({"counter": {"name": one.name, "packets": 7, "bytes": 420}})
        return out

    def run(self, commands):
        json.dumps(commands)            # must be JSON
        self.sent.append(commands)


def test_encoding_of_entries_and_rules():
    assert nft.encode_entry(Entry(parse_network("203.0.113.7"))) == "203.0.113.7"
    assert nft.encode_entry(Entry(parse_network("203.0.113.0/24"), 60)) == \
        {"elem": {"val": {"prefix": {"addr": "203.0.113.0", "len": 24}}, "timeout": 60}}
    hosts_rule, prefix_rule = (r["rule"] for r in nft.encode_rules(lst(Kind.DENY, VIP)))
    assert (hosts_rule["family"], hosts_rule["table"], hosts_rule["chain"]) == \
        ("inet", "lvs_toolkit", "prerouting")
    target = [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                   "right": "10.0.0.100"}},
        {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}},
                   "right": 80}}]
    verdict = [{"counter": "deny_tcp_10.0.0.100_80"}, {"drop": None}]
    for rule, name in ((hosts_rule, "@deny_tcp_10.0.0.100_80_hosts"),
                       (prefix_rule, "@deny_tcp_10.0.0.100_80")):
        assert rule["expr"] == target + [
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": name}}] + verdict
    # an allow list drops what is in neither set: one rule, both matches
    [allow] = (r["rule"]["expr"] for r in nft.encode_rules(lst(Kind.ALLOW, VIP6)))
    assert len(allow) == 5
    assert [(m["match"]["op"], m["match"]["right"]) for m in allow[1:3]] == \
        [("!=", "@allow_any_2001:db8::100_hosts"), ("!=", "@allow_any_2001:db8::100")]
    assert allow[1]["match"]["left"]["payload"] == {"protocol": "ip6", "field": "saddr"}


def test_decode_reads_ours_and_skips_the_rest():
    objects = [{"metainfo": {}}, {"table": {"name": "lvs_toolkit"}},
               {"set": {"name": "deny_tcp_10.0.0.100_80", "elem": [
                   "198.51.100.7", {"prefix": {"addr": "203.0.113.0", "len": 24}},
                   {"range": ["192.0.2.0", "192.0.2.5"]},
                   {"elem": {"val": "192.0.2.9", "timeout": 60, "expires": 42}}]}},
               {"set": {"name": "someone_elses"}},
               {"counter": {"name": "deny_tcp_10.0.0.100_80", "packets": 3, "bytes": 180}}]
    lists = nft.decode(objects)
    assert list(lists) == [(Kind.DENY, VIP)]
    got = lists[(Kind.DENY, VIP)]
    assert (got.packets, got.bytes) == (3, 180)
    assert sorted(str(n) for n in got.entries) == [
        "192.0.2.0/30", "192.0.2.4/31", "192.0.2.9/32", "198.51.100.7/32", "203.0.113.0/24"]
    assert got.entries[parse_network("192.0.2.9")] == Entry(parse_network("192.0.2.9"), 60, 42)
    assert got.legacy           # no set of single addresses: the first layout
    assert nft.decode(None) == {}


def test_decode_merges_a_list_s_two_sets():
    objects = [{"set": {"name": "deny_tcp_10.0.0.100_80_hosts", "type": "ipv4_addr",
                        "elem": ["198.51.100.7"]}},
               {"set": {"name": "deny_tcp_10.0.0.100_80", "type": "ipv4_addr",
                        "elem": [{"prefix": {"addr": "203.0.113.0", "len": 24}}]}}]
    [got] = nft.decode(objects).values()
    assert got.key == (Kind.DENY, VIP) and not got.legacy
    assert sorted(str(n) for n in got.entries) == ["198.51.100.7/32", "203.0.113.0/24"]


def test_first_list_creates_table_chain_set_counter_rule():
    tx = nft.diff({}, {(Kind.DENY, VIP): lst(Kind.DENY, VIP, "203.0.113.0/24")})
    verbs = [(verb, next(iter(obj))) for c in tx.commands for verb, obj in c.items()]
    assert verbs == [("add", "table"), ("add", "chain"), ("flush", "chain"), ("add", "set"),
                     ("add", "set"), ("add", "counter"), ("add", "element"), ("add", "rule"),
                     ("add", "rule")]
    chain = tx.commands[1]["add"]["chain"]
    assert (chain["hook"], chain["prio"], chain["type"], chain["policy"]) == \
        ("prerouting", -300, "filter", "accept")
    prefixes, hosts = (tx.commands[i]["add"]["set"] for i in (3, 4))
    assert (prefixes["name"], prefixes["flags"]) == ("deny_tcp_10.0.0.100_80",
                                                     ["interval", "timeout"])
    assert (hosts["name"], hosts["flags"]) == ("deny_tcp_10.0.0.100_80_hosts", ["timeout"])
    assert prefixes["gc-interval"] == hosts["gc-interval"] == nft.GC_INTERVAL
    assert tx.commands[6]["add"]["element"]["name"] == "deny_tcp_10.0.0.100_80"


def test_changed_entries_only_and_rules_untouched():
    current = {(Kind.DENY, VIP): lst(Kind.DENY, VIP, "203.0.113.0/24", "198.51.100.7")}
    wanted = {(Kind.DENY, VIP): lst(Kind.DENY, VIP, "203.0.113.0/24", "192.0.2.0/24")}
    tx = nft.diff(current, wanted)
    body = tx.commands[2:]
    assert body == [{"delete": {"element": {"family": "inet", "table": "lvs_toolkit",
                                            "name": "deny_tcp_10.0.0.100_80_hosts",
                                            "elem": ["198.51.100.7"]}}},
                    {"add": {"element": {"family": "inet", "table": "lvs_toolkit",
                                         "name": "deny_tcp_10.0.0.100_80",
                                         "elem": [{"prefix": {"addr": "192.0.2.0",
                                                              "len": 24}}]}}}]
    assert not nft.diff(wanted, wanted)


def test_timed_entries_keep_their_clock_unless_refreshed_or_made_permanent():
    have = {(Kind.DENY, VIP): lst(Kind.DENY, VIP, "198.51.100.7", timeout=3600)}
    same = {(Kind.DENY, VIP): lst(Kind.DENY, VIP, "198.51.100.7", timeout=60)}
    assert not nft.diff(have, same)
    refreshed = nft.diff(have, same, [((Kind.DENY, VIP), parse_network("198.51.100.7"))])
    assert [next(iter(c)) for c in refreshed.commands[2:]] == ["delete", "add"]
    permanent = {(Kind.DENY, VIP): lst(Kind.DENY, VIP, "198.51.100.7")}
    assert [next(iter(c)) for c in nft.diff(have, permanent).commands[2:]] == \
        ["delete", "add"]


def test_list_going_away_rewrites_rules_and_last_one_removes_table():
    a = lst(Kind.DENY, VIP, "203.0.113.0/24")
    b = lst(Kind.ALLOW, VIP6, "2001:db8:1::/48")
    tx = nft.diff({a.key: a, b.key: b}, {b.key: b})
    verbs = [(verb, next(iter(obj))) for c in tx.commands for verb, obj in c.items()]
    assert verbs == [("add", "table"), ("add", "chain"), ("flush", "chain"),
                     ("delete", "set"), ("delete", "set"), ("delete", "counter"),
                     ("add", "rule")]
    gone = nft.diff({b.key: b}, {})
    assert gone.commands == [{"delete": {"table": {"family": "inet", "name": "lvs_toolkit"}}}]


def test_deny_rules_come_before_allow_rules():
    lists = [lst(Kind.ALLOW, VIP, "10.0.1.0/24"), lst(Kind.DENY, VIP6, "2001:db8::/32"),
             lst(Kind.DENY, VIP, "10.0.1.3")]
    tx = nft.diff({}, {x.key: x for x in lists})
    rules = [c["add"]["rule"]["expr"][-2]["counter"] for c in tx.commands
             if "rule" in c.get("add", {})]
    assert rules == ["deny_tcp_10.0.0.100_80"] * 2 + ["deny_any_2001:db8::100"] * 2 + \
        ["allow_tcp_10.0.0.100_80"]


def test_a_table_of_the_first_layout_is_moved_to_two_sets_by_the_next_change():
    """One interval set per list, single addresses in it too: the next
    change adds the hash set, moves the single addresses there (not a
    change of the list: no step) and rewrites the rules."""
    fake = FakeNft({(Kind.DENY, VIP): lst(Kind.DENY, VIP, "203.0.113.0/24", "198.51.100.7")},
                   legacy=True)
    lists = nft.AccessLists(fake)
    current = lists.read()
    assert current[(Kind.DENY, VIP)].legacy
    tx = lists.add(Kind.DENY, VIP, [Entry(parse_network("192.0.2.1"))])
    assert tx.steps == [("add", "deny", "tcp 10.0.0.100:80 192.0.2.1")]
    [sent] = fake.sent
    assert {"flush": {"chain": {"family": "inet", "table": "lvs_toolkit",
                                "name": "prerouting"}}} in sent
    elements = [(verb, obj["element"]["name"], obj["element"]["elem"]) for c in sent
                for verb, obj in c.items() if "element" in obj]
    assert elements == [("add", "deny_tcp_10.0.0.100_80_hosts", ["192.0.2.1", "198.51.100.7"]),
                        ("delete", "deny_tcp_10.0.0.100_80", ["198.51.100.7"])]
    assert {"add": nft._sets(current[(Kind.DENY, VIP)])[1]} in sent
    assert sum("rule" in c.get("add", {}) for c in sent) == 2
    # and a table of the new layout, unchanged, sends nothing
    assert not nft.diff(nft.decode(FakeNft(fake.lists).table()), fake.lists)


def test_many_entries_are_one_step():
    many = lst(Kind.DENY, VIP, *(f"100.0.{i >> 8}.{i & 255}" for i in range(500)))
    tx = nft.diff({}, {many.key: many})
    assert tx.steps == [("add", "deny", "tcp 10.0.0.100:80 new list"),
                        ("add", "deny", "tcp 10.0.0.100:80 500 entries (100.0.0.0 ... "
                                        "100.0.1.243)")]


def test_bad_wanted_lists_raise_before_anything_is_sent():
    fake = FakeNft()
    lists = nft.AccessLists(fake)
    with pytest.raises(InvalidInput, match="overlaps"):
        lists.add(Kind.DENY, VIP, [Entry(parse_network("10.0.0.0/8")),
                                   Entry(parse_network("10.1.0.0/16"))])
    fake.lists = {(Kind.DENY, VIP): lst(Kind.DENY, VIP, "10.0.0.0/8")}
    with pytest.raises(InvalidInput, match="10.1.2.3 overlaps 10.0.0.0/8"):
        lists.add(Kind.DENY, VIP, [Entry(parse_network("10.1.2.3"))])
    with pytest.raises(InvalidInput, match="no allow list"):
        lists.flush(Kind.ALLOW, VIP)
    assert fake.sent == []


def test_an_entry_given_twice_is_an_error_although_the_list_would_hold_it_once():
    fake = FakeNft({(Kind.DENY, VIP): lst(Kind.DENY, VIP, "192.0.2.1")})
    lists = nft.AccessLists(fake)
    with pytest.raises(InvalidInput, match=r"^deny tcp 10.0.0.100:80: 198.51.100.7 is listed "
                                           r"twice$"):
        lists.add(Kind.DENY, VIP, [Entry(parse_network("198.51.100.7"))] * 2)
    assert fake.sent == []


def test_an_error_names_the_first_hundred_faults_and_counts_the_rest():
    lists = nft.AccessLists(FakeNft())
    with pytest.raises(InvalidInput) as error:
        lists.add(Kind.DENY, VIP, [Entry(parse_network(f"2001:db8::{i:x}"))
                                   for i in range(250)])
    lines = str(error.value).splitlines()
    assert len(lines) == 101 and lines[-1] == "... and 150 more faults"
    assert lines[0] == "deny tcp 10.0.0.100:80: 2001:db8:: is not IPv4 like 10.0.0.100"


def test_decode_takes_each_set_s_family():
    objects = [{"set": {"name": VIP6.name(Kind.DENY), "type": "ipv6_addr",
                        "elem": ["2001:db8::7", {"prefix": {"addr": "2001:db8:1::", "len": 48}}]}},
               {"set": {"name": VIP.name(Kind.ALLOW), "type": "ipv4_addr",
                        "elem": ["192.0.2.7", {"elem": {"val": {"prefix": {
                            "addr": "198.51.100.0", "len": 24}}, "timeout": 60,
                            "expires": 42}}]}}]
    lists = nft.decode(objects)
    assert [str(n) for n in lists[(Kind.DENY, VIP6)].entries] == ["2001:db8::7/128",
                                                                  "2001:db8:1::/48"]
    allow = lists[(Kind.ALLOW, VIP)].entries
    assert [str(n) for n in allow] == ["192.0.2.7/32", "198.51.100.0/24"]
    assert allow[parse_network("198.51.100.0/24")].expires == 42


def test_plan_without_prune_keeps_other_lists_and_entries():
    fake = FakeNft({(Kind.DENY, VIP): lst(Kind.DENY, VIP, "192.0.2.1"),
                    (Kind.ALLOW, VIP6): lst(Kind.ALLOW, VIP6, "2001:db8::/32")})
    lists = nft.AccessLists(fake)
    tx = lists.plan([lst(Kind.DENY, VIP, "192.0.2.2")], prune=False)
    assert tx.steps == [("add", "deny", "tcp 10.0.0.100:80 192.0.2.2")]
    tx = lists.plan([lst(Kind.DENY, VIP, "192.0.2.2")], prune=True)
    assert sorted(tx.steps) == [("add", "deny", "tcp 10.0.0.100:80 192.0.2.2"),
                                ("delete", "allow", "2001:db8::100 (all ports) list (1 entry)"),
                                ("delete", "deny", "tcp 10.0.0.100:80 192.0.2.1")]


@pytest.mark.parametrize("text,protocol,want", [
    ("10.0.0.1", None, make_target("10.0.0.1")),
    ("10.0.0.1:80", None, make_target("10.0.0.1", "tcp", 80)),
    ("10.0.0.1:53", "udp", make_target("10.0.0.1", "udp", 53)),
    ("2001:db8::1", None, make_target("2001:db8::1")),
    ("[2001:db8::1]:443", None, make_target("2001:db8::1", "tcp", 443)),
    ("[2001:db8::1]", None, make_target("2001:db8::1")),
])
def test_vip_words(text, protocol, want):
    assert acl_cli.parse_vip(text, protocol) == want


@pytest.mark.parametrize("text,protocol", [("10.0.0.1", "udp"), ("10.0.0.1:http", None),
                                           ("[2001:db8::1]x", None), ("host:80", None)])
def test_bad_vip_words(text, protocol):
    with pytest.raises(ValueError):
        acl_cli.parse_vip(text, protocol)


def test_cli_list_text_and_statuses():
    fake = FakeNft({(Kind.DENY, VIP): lst(Kind.DENY, VIP, "198.51.100.7", "203.0.113.0/24",
                                          timeout=3600)})
    out, err = io.StringIO(), io.StringIO()
    assert acl_cli.main(["deny", "list"], out, err, nft.AccessLists(fake)) == 0
    assert out.getvalue() == ("deny tcp 10.0.0.100:80: 2 entries, dropped 7 packets "
                              "(420 bytes)\n"
                              "  198.51.100.7 timeout 1h expires 59m59s\n"
                              "  203.0.113.0/24 timeout 1h expires 59m59s\n")
    err = io.StringIO()
    assert acl_cli.main(["deny", "add", "1.2.3.4", "--vip", "10.0.0.100:80", "--timeout",
                         "soon"], io.StringIO(), err, nft.AccessLists(fake)) == 2
    assert "not a duration: 'soon'" in err.getvalue() and not fake.sent

    class Refusing(FakeNft):
        def run(self, commands):
            raise nft.NftError("nftables refused: Could not process rule: File exists")

    err = io.StringIO()
    assert acl_cli.main(["deny", "add", "1.2.3.4", "--vip", "10.0.0.100:80"], io.StringIO(),
                        err, nft.AccessLists(Refusing())) == 255
    assert err.getvalue() == ("nftables refused: Could not process rule: File exists\n"
                              "nothing was changed\n")


def test_nft_errors_are_worded_from_stderr():
    assert nft._first_error("internal:0:0-0: Error: interval overlaps with an existing one\n"
                            "\n") == "interval overlaps with an existing one"
    assert nft._first_error("") == "unknown error"
