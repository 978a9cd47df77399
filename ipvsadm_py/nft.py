"""Client allow and deny lists in the kernel's nftables: codec, diff, verbs.

Everything lives in one table of our own, ``table inet lvs_toolkit``, with
one base chain ``prerouting`` (type filter, hook prerouting, priority
``raw`` = -300): it sees a client's packet after defragmentation (-400)
and before conntrack (-200) and IPVS (its hooks sit at LOCAL_IN and later),
so a dropped SYN never reaches SYNPROXY (no SYN/ACK) and creates neither a
conntrack entry nor an IPVS session.  Each list is two named sets and a
named counter: the list's name is the set of its prefixes (flags
``interval, timeout``) and of the counter, ``NAME_hosts`` the set of its
single addresses (a hash set, flag ``timeout``); both are collected every
GC_INTERVAL seconds.  A lookup in an interval
set walks a tree whose depth grows with the list, one in a hash set does
not (on the host, 100,000 addresses cost about half as much there), and
ban lists are mostly single addresses.  A deny list has two
rules (``saddr @NAME_hosts``, ``saddr @NAME``: counter, drop), an allow
list one (``saddr != @NAME_hosts saddr != @NAME``: counter, drop), each
also matching the target.

We speak nftables' JSON schema to ``nft -j -f -`` (one invocation is one
netlink batch, so one transaction: all of it or nothing) and read the
table back with ``nft -j list``.  No rule text is ever written.  The
``python3-nftables`` binding would do the same through libnftables, but it
lives in the system's dist-packages, which the project's virtual
environment does not see; the ``nft`` program is the same library behind a
stable command line.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import shutil
import subprocess
from typing import Any, Callable, Iterable, Mapping

from ipvsadm_py.acl import (AccessList, Entry, Kind, Network, Target, entry_count, entry_faults,
                            net_text, parse_name)
from ipvsadm_py.errors import InvalidInput, IPVSError

FAMILY = "inet"
TABLE = "lvs_toolkit"
CHAIN = "prerouting"
PRIORITY = -300           # NF_IP_PRI_RAW: after defrag, before conntrack and IPVS
NFT = "nft"
STEP_DETAIL = 20          # entries of a list shown one by one in a plan
#: Seconds between two garbage collections of a list's sets.  An expired
#: entry stops matching at once; the collection only frees its memory, and
#: walks every entry of the set to find the expired ones: with the kernel's
#: default of one second a set of 100,000 entries kept an idle emulated
#: guest's CPUs 0.8-1.0 % busy (0 % with 60 s).
GC_INTERVAL = 60
FAULTS_SHOWN = 100        # faults named in an error (then their count)

Key = tuple[Kind, Target]
Command = dict[str, Any]


class NftError(IPVSError):
    """nftables refused a transaction, or ``nft`` is missing."""


# ---------------------------------------------------------------- running nft
class Nft:
    """The ``nft`` program in JSON mode (a fake with the same two methods
    stands in for it in unit tests)."""

    def __init__(self, program: str = NFT, netns: str | None = None) -> None:
        self.program = program
        self.netns = netns          # a named network namespace (``ip netns``), or ours

    def _path(self) -> str | None:
        return shutil.which(self.program) or shutil.which(self.program, path="/usr/sbin:/sbin")

    def available(self) -> bool:
        """Whether the nft program is installed."""
        return self._path() is not None

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        path = self._path()
        if path is None:
            raise NftError(f"{self.program} not found: install the nftables package")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        done = subprocess.run([*prefix, path, "-j", *args], input=stdin, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise NftError(f"nftables refused: {_first_error(done.stderr)}")
        return done.stdout

    def run(self, commands: list[Command]) -> None:
        """One transaction: every command, or none."""
        self._run(["-f", "-"], json.dumps({"nftables": commands}))

    def table(self) -> list[dict[str, Any]] | None:
        """The objects of our table, or None when there is no such table."""
        tables = json.loads(self._run(["list", "tables", FAMILY]) or '{"nftables": []}')
        if not any(o.get("table", {}).get("name") == TABLE for o in tables["nftables"]):
            return None
        return json.loads(self._run(["list", "table", FAMILY, TABLE]))["nftables"]

    def counters(self) -> list[dict[str, Any]]:
        """Every named counter of the ruleset (``nft -j list counters``):
        one call, and no error when our table is absent."""
        return json.loads(self._run(["list", "counters"]) or '{"nftables": []}')["nftables"]


def _first_error(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln.split("Error:", 1)[1].strip() for ln in lines if "Error:" in ln]
    return "; ".join(errors) or (lines[0] if lines else "unknown error")


# ---------------------------------------------------------------- encoding
def _family_word(target: Target) -> str:
    return "ip" if target.family == 4 else "ip6"


def _value(net: Network) -> Any:
    """A set element's value: an address, or a prefix."""
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def encode_entry(entry: Entry) -> Any:
    if entry.timeout is None:
        return _value(entry.network)
    return {"elem": {"val": _value(entry.network), "timeout": entry.timeout}}


def _obj(kind: str, **fields: Any) -> Command:
    return {kind: {"family": FAMILY, "table": TABLE, **fields}}


HOSTS = "_hosts"           # suffix of a list's set of single addresses


def _hosts(entry: Entry) -> bool:
    """Whether the entry is a single address (its list's hash set)."""
    return entry.network.prefixlen == entry.network.max_prefixlen


def _set_name(lst: AccessList, hosts: bool) -> str:
    return lst.name + HOSTS if hosts else lst.name


def _sets(lst: AccessList) -> list[Command]:
    """The list's two sets: prefixes (interval) and single addresses (hash)."""
    addr_type = "ipv4_addr" if lst.target.family == 4 else "ipv6_addr"
    return [_obj("set", name=lst.name, type=addr_type, flags=["interval", "timeout"],
                 **{"gc-interval": GC_INTERVAL}),
            _obj("set", name=_set_name(lst, True), type=addr_type, flags=["timeout"],
                 **{"gc-interval": GC_INTERVAL})]


def _chain() -> Command:
    return _obj("chain", name=CHAIN, type="filter", hook="prerouting", prio=PRIORITY,
                policy="accept")


def detach_commands() -> list[Command]:
    """One transaction that takes our chain off its hook, rules and all, and
    leaves the sets loaded (packets then pass as without a table)."""
    return [{"flush": _obj("chain", name=CHAIN)}, {"delete": _obj("chain", name=CHAIN)}]


def attach_commands(lists: Iterable[AccessList]) -> list[Command]:
    """One transaction that puts the chain back with the rules of ``lists``
    (whose sets are loaded)."""
    return [{"add": _chain()}] + _rules(lists)


def _rules(lists: Iterable[AccessList]) -> list[Command]:
    return [{"add": rule} for lst in sorted(lists, key=_rule_order) for rule in encode_rules(lst)]


def _match(left: Any, right: Any, op: str = "==") -> Command:
    return {"match": {"op": op, "left": left, "right": right}}


def encode_rules(lst: AccessList) -> list[Command]:
    """The rules of a list: its target, its sets, its counter, drop (a
    deny list one rule per set, an allow list one rule for both)."""
    fam = _family_word(lst.target)
    target = [_match({"payload": {"protocol": fam, "field": "daddr"}}, lst.target.address)]
    if lst.target.protocol is not None:
        target += [_match({"meta": {"key": "l4proto"}}, lst.target.protocol),
                   _match({"payload": {"protocol": "th", "field": "dport"}}, lst.target.port)]
    saddr = {"payload": {"protocol": fam, "field": "saddr"}}
    verdict = [{"counter": lst.name}, {"drop": None}]
    names = [f"@{_set_name(lst, True)}", f"@{lst.name}"]
    if lst.kind == Kind.DENY:
        return [_obj("rule", chain=CHAIN, expr=target + [_match(saddr, name)] + verdict)
                for name in names]
    return [_obj("rule", chain=CHAIN,
                 expr=target + [_match(saddr, name, "!=") for name in names] + verdict)]


def _rule_order(lst: AccessList) -> tuple:
    """Deny rules first (a denied client is dropped even when an allow list
    holds it), then allow rules; stable by target."""
    return (lst.kind != Kind.DENY, *lst.target.sort_key())


def _elements(name: str, entries: Iterable[Entry]) -> Command:
    return _obj("element", name=name, elem=[encode_entry(e) for e in entries])


# ---------------------------------------------------------------- decoding
def _networks(value: Any, network: Callable[[str], Network] = ipaddress.ip_network
              ) -> list[Network]:
    if isinstance(value, str):
        return [network(value)]
    if "prefix" in value:
        p = value["prefix"]
        return [network(f"{p['addr']}/{p['len']}")]
    if "range" in value:                  # not ours, but possible in a set
        low, high = (ipaddress.ip_address(a) for a in value["range"])
        return list(ipaddress.summarize_address_range(low, high))
    raise NftError(f"unexpected set element {value!r}")


#: A set's type to the constructor of its elements (ip_network would try
#: IPv4 first for each of 100,000 IPv6 addresses).
_NETWORK = {"ipv4_addr": ipaddress.IPv4Network, "ipv6_addr": ipaddress.IPv6Network}


def _decode_elem(item: Any, network: Callable[[str], Network] = ipaddress.ip_network
                 ) -> list[Entry]:
    if isinstance(item, dict) and "elem" in item:
        e = item["elem"]
        return [Entry(net, e.get("timeout"), e.get("expires"))
                for net in _networks(e["val"], network)]
    return [Entry(net) for net in _networks(item, network)]


def decode(objects: list[dict[str, Any]] | None) -> dict[Key, AccessList]:
    """The lists of our table's objects (``nft -j list table``); sets whose
    names are not ours are left out."""
    lists: dict[Key, AccessList] = {}
    counters: dict[str, dict[str, Any]] = {}
    with_hosts: set[Key] = set()
    for obj in objects or []:
        if "counter" in obj:
            counters[obj["counter"]["name"]] = obj["counter"]
        if "set" not in obj:
            continue
        name = obj["set"]["name"]
        hosts = name.endswith(HOSTS)
        parsed = parse_name(name[:-len(HOSTS)] if hosts else name)
        if parsed is None:
            continue
        lst = lists.setdefault(parsed, AccessList(*parsed))
        if hosts:
            with_hosts.add(parsed)
        network = _NETWORK.get(obj["set"].get("type"), ipaddress.ip_network)
        for item in obj["set"].get("elem", []):
            for entry in _decode_elem(item, network):
                lst.entries[entry.network] = entry
    for key, lst in lists.items():
        counter = counters.get(lst.name, {})
        lst.packets, lst.bytes = counter.get("packets", 0), counter.get("bytes", 0)
        lst.legacy = key not in with_hosts
    return lists


def decode_counters(objects: list[dict[str, Any]]) -> dict[Key, tuple[int, int]]:
    """Packets and bytes dropped per list, from named counters (``nft -j
    list counters``): only our table's, only names that are ours."""
    out: dict[Key, tuple[int, int]] = {}
    for obj in objects:
        c = obj.get("counter")
        if not c or c.get("family") != FAMILY or c.get("table") != TABLE:
            continue
        parsed = parse_name(c.get("name", ""))
        if parsed is not None:
            out[parsed] = (c.get("packets", 0), c.get("bytes", 0))
    return out


# ---------------------------------------------------------------- the difference
@dataclasses.dataclass
class Transaction:
    """The commands of one nftables transaction and what they do in words
    (``+ deny tcp 10.0.0.100:80 203.0.113.0/24``)."""

    commands: list[Command] = dataclasses.field(default_factory=list)
    steps: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.commands)

    def step(self, action: str, lst: AccessList, text: str) -> None:
        self.steps.append((action, lst.kind.value, f"{lst.target.describe()} {text}"))


def _same(want: Entry, have: Entry) -> bool:
    """An entry that is there already: both permanent, or both temporary
    (a live ban keeps its clock unless asked to be refreshed)."""
    return (want.timeout is None) == (have.timeout is None)


def check(wanted: Mapping[Key, AccessList], given: Iterable[Entry] = ()) -> None:
    """InvalidInput with every fault of every wanted list (and of the
    entries ``given`` to the one list wanted, whose duplicates its
    dictionary would hide)."""
    faults = [f"{lst.kind.value} {lst.target.describe()}: {fault}"
              for lst in wanted.values() for fault in entry_faults(lst.target,
                                                                   lst.entries.values())]
    seen: set[Network] = set()
    for entry in given:
        if entry.network in seen:
            lst = next(iter(wanted.values()))
            faults.append(f"{lst.kind.value} {lst.target.describe()}: "
                          f"{net_text(entry.network)} is listed twice")
        seen.add(entry.network)
    if len(faults) > FAULTS_SHOWN:
        faults[FAULTS_SHOWN:] = [f"... and {len(faults) - FAULTS_SHOWN:,} more faults"]
    if faults:
        raise InvalidInput("\n".join(faults))


def diff(current: Mapping[Key, AccessList], wanted: Mapping[Key, AccessList],
         refresh: Iterable[tuple[Key, Network]] = (),
         checked: Iterable[Key] = ()) -> Transaction:
    """The one transaction that turns the current lists into the wanted
    ones: only the entries that differ are added or deleted; the chain's
    rules are rewritten only when lists come or go; no list left removes
    the table.  ``refresh`` names entries to re-add although present
    (a new timeout for a live ban); ``checked`` names wanted lists the
    caller has checked whole already."""
    skip = set(checked)
    check({key: lst for key, lst in wanted.items() if key not in skip})
    tx = Transaction()
    if not wanted:
        if current:
            tx.commands.append({"delete": {"table": {"family": FAMILY, "name": TABLE}}})
            for lst in current.values():
                tx.step("delete", lst, f"list ({entry_count(len(lst.entries))})")
        return tx
    refresh = set(refresh)
    body: list[Command] = []
    for key, lst in wanted.items():
        have = current.get(key)
        if have is None:
            body += [{"add": c} for c in _sets(lst)]
            body.append({"add": _obj("counter", name=lst.name)})
            tx.step("add", lst, "new list")
        elif have.legacy:               # a list of the first layout: its hash set
            body.append({"add": _sets(lst)[1]})
        _entry_changes(tx, body, lst, have, refresh)
    gone = [lst for key, lst in current.items() if key not in wanted]
    if not body and not gone:
        return tx
    head = [{"add": {"table": {"family": FAMILY, "name": TABLE}}}, {"add": _chain()}]
    if gone or set(wanted) != set(current) or any(lst.legacy for lst in current.values()):
        head.append({"flush": _obj("chain", name=CHAIN)})
        for lst in gone:
            sets = _sets(lst)[:1] if lst.legacy else _sets(lst)
            head += [{"delete": c} for c in sets]
            head.append({"delete": _obj("counter", name=lst.name)})
            tx.step("delete", lst, f"list ({entry_count(len(lst.entries))})")
        body += _rules(wanted.values())
    tx.commands = head + body
    return tx


def _entry_changes(tx: Transaction, body: list[Command], lst: AccessList,
                   have: AccessList | None, refresh: set) -> None:
    """The element commands of a list, per set (an entry that has to change
    set is deleted from one and added to the other), and the steps in words
    (changes of the list only)."""
    live = have.entries if have is not None else {}
    legacy = have is not None and have.legacy

    def stored_in_hosts(entry: Entry) -> bool:
        return not legacy and _hosts(entry)

    drop = [e for net, e in live.items()
            if net not in lst.entries or not _same(lst.entries[net], e)
            or (lst.key, net) in refresh]
    add = [e for net, e in lst.entries.items()
           if net not in live or not _same(e, live[net]) or (lst.key, net) in refresh]
    moved = [e for net, e in lst.entries.items() if net in live and _same(e, live[net])
             and (lst.key, net) not in refresh and stored_in_hosts(live[net]) != _hosts(e)]
    for hosts in (True, False):     # an element is named by its value alone
        name = _set_name(lst, hosts)
        gone = [Entry(e.network) for e in drop + [live[e.network] for e in moved]
                if stored_in_hosts(e) == hosts]
        if gone:
            body.append({"delete": _elements(name, gone)})
        new = [e for e in add + moved if _hosts(e) == hosts]
        if new:
            body.append({"add": _elements(name, new)})
    _steps(tx, "delete", lst, [e for e in drop if e.network not in lst.entries],
           lambda e: net_text(e.network))
    _steps(tx, "add", lst, add, lambda e: Entry(e.network, e.timeout).describe())


def _steps(tx: Transaction, action: str, lst: AccessList, entries: list[Entry],
           text: Callable[[Entry], str]) -> None:
    """One step per entry, or one for many (a plan of 100,000 lines says
    nothing more than its count; only its ends are written out)."""
    if len(entries) > STEP_DETAIL:
        tx.step(action, lst, f"{entry_count(len(entries))} "
                             f"({text(entries[0])} ... {text(entries[-1])})")
        return
    for entry in entries:
        tx.step(action, lst, text(entry))


# ---------------------------------------------------------------- verbs
class AccessLists:
    """The verbs on our table: read, replace (``apply``), add, delete,
    flush, remove.  Each change is checked whole first and sent as one
    transaction; a bad entry raises InvalidInput and nothing changes."""

    def __init__(self, nft: Nft | None = None) -> None:
        self.nft = nft or Nft()

    def read(self) -> dict[Key, AccessList]:
        return decode(self.nft.table())

    def counters(self) -> dict[Key, tuple[int, int]]:
        """What each list dropped (packets, bytes); empty without our
        table or without nft."""
        if not self.nft.available():
            return {}
        return decode_counters(self.nft.counters())

    def commit(self, tx: Transaction) -> Transaction:
        if tx:
            self.nft.run(tx.commands)
        return tx

    def plan(self, wanted: Iterable[AccessList], prune: bool = True,
             current: Mapping[Key, AccessList] | None = None) -> Transaction:
        """The transaction that makes the table hold ``wanted`` (and, with
        ``prune``, nothing else; without it, other lists and entries stay)."""
        current = self.read() if current is None else current
        want = {lst.key: lst for lst in wanted}
        if not prune:
            merged = {k: _copy(v) for k, v in current.items()}
            for key, lst in want.items():
                target = merged.setdefault(key, AccessList(lst.kind, lst.target))
                target.entries.update(lst.entries)
            want = merged
        return diff(current, want)

    def add(self, kind: Kind, target: Target, entries: Iterable[Entry]) -> Transaction:
        """Add entries (an entry already there gets the new timeout)."""
        current = self.read()
        want = {k: _copy(v) for k, v in current.items()}
        lst = want.setdefault((kind, target), AccessList(kind, target))
        entries = list(entries)
        refresh = [((kind, target), e.network) for e in entries if e.network in lst.entries]
        for e in entries:
            lst.entries.pop(e.network, None)
        lst.entries.update({e.network: e for e in entries})
        check({lst.key: lst}, entries)
        return self.commit(diff(current, want, refresh, checked=[lst.key]))

    def delete(self, kind: Kind, target: Target, networks: Iterable[Network]) -> Transaction:
        """Delete entries; one that is not in the list is an error."""
        current = self.read()
        want = {k: _copy(v) for k, v in current.items()}
        lst = want.get((kind, target))
        if lst is None:
            raise InvalidInput(f"no {kind.value} list for {target.describe()}")
        missing = [net_text(n) for n in networks if lst.entries.pop(n, None) is None]
        if missing:
            raise InvalidInput(f"not in the {kind.value} list of {target.describe()}: "
                               f"{', '.join(missing)}")
        return self.commit(diff(current, want))

    def flush(self, kind: Kind, target: Target) -> Transaction:
        """Remove a whole list (an allow list stops restricting)."""
        current = self.read()
        if (kind, target) not in current:
            raise InvalidInput(f"no {kind.value} list for {target.describe()}")
        want = {k: v for k, v in current.items() if k != (kind, target)}
        return self.commit(diff(current, want))

    def remove(self) -> Transaction:
        """Remove our table, every list with it (nothing else is touched)."""
        objects = self.nft.table()
        tx = diff(decode(objects), {})
        if objects is not None and not tx:
            tx.commands.append({"delete": {"table": {"family": FAMILY, "name": TABLE}}})
        return self.commit(tx)


def _copy(lst: AccessList) -> AccessList:
    return AccessList(lst.kind, lst.target, dict(lst.entries))
