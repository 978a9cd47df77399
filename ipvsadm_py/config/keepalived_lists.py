"""keepalived.conf's client lists: ``deny_group`` / ``allow_group``.

The dialect (docs/acl.md, "keepalived.conf")::

    deny_group abusers {                 # top level: a named group of entries
        203.0.113.0/24
        198.51.100.7 timeout 1h          # a temporary entry
        2001:db8:bad::/48                # groups may mix families
    }
    virtual_server 10.0.0.100 80 {
        deny_group abusers               # repeatable; allow_group NAME likewise
        ...
    }

A virtual server's deny (allow) list is the union of the entries of its
deny (allow) groups that are of the service's family; the lists are the
model of :mod:`ipvsadm_py.acl`.  :mod:`.keepalived_conf` attaches them to
the services; :mod:`.keepalived_export` writes them back.
"""

from __future__ import annotations

import dataclasses

from ipvsadm_py import acl
from ipvsadm_py.config.keepalived_blocks import Node
from ipvsadm_py.config.keepalived_values import Reader
from ipvsadm_py.model import Protocol, Service, addr_text

GROUP_WORDS = {f"{kind.value}_group": kind for kind in acl.Kind}


@dataclasses.dataclass
class Group:
    """The entries of one group (None: the group has errors)."""

    kind: acl.Kind
    name: str
    line: int
    entries: list[acl.Entry] | None


def _entries(r: Reader, node: Node, where: str) -> list[acl.Entry] | None:
    """``ADDRESS[/LEN] [timeout T]``, one or more per line."""
    out: list[acl.Entry] = []
    ok = True
    for item in node.block or []:
        words = [item.word, *item.args]
        while words:
            text = words.pop(0)
            timeout = None
            if words[:1] == ["timeout"]:
                words.pop(0)
                if not words:
                    r.fail(item.line, f"{where}: {text}: timeout needs a duration")
                    ok = False
                    continue
                try:
                    timeout = acl.parse_duration(words.pop(0))
                except ValueError as exc:
                    r.fail(item.line, f"{where}: {text}: {exc}")
                    ok = False
                    continue
            try:
                out.append(acl.Entry(acl.parse_network(text), timeout))
            except ValueError as exc:
                r.fail(item.line, f"{where}: {exc}")
                ok = False
    return out if ok else None


def read_groups(r: Reader, nodes: list[Node]) -> dict[tuple[acl.Kind, str], Group]:
    """The top-level ``deny_group`` and ``allow_group`` blocks."""
    groups: dict[tuple[acl.Kind, str], Group] = {}
    for node in nodes:
        kind = GROUP_WORDS.get(node.word)
        if kind is None:
            continue
        if len(node.args) != 1 or node.block is None:
            r.fail(node.line, f"{node.word} needs a name and a block {{ ... }}")
            continue
        name = node.args[0]
        where = f"{node.word} {name}"
        if (kind, name) in groups:
            r.fail(node.line, f"{where} is defined twice (also at line "
                   f"{groups[kind, name].line})")
            continue
        entries = _entries(r, node, where)
        if entries is not None:
            seen: set[acl.Network] = set()
            for entry in entries:
                if entry.network in seen:
                    r.fail(node.line, f"{where}: {acl.net_text(entry.network)} is listed twice")
                    entries = None
                    break
                seen.add(entry.network)
        groups[kind, name] = Group(kind, name, node.line, entries)
    return groups


def service_lists(r: Reader, refs: list[tuple[acl.Kind, str, int]], svc: Service,
                  groups: dict[tuple[acl.Kind, str], Group], name: str
                  ) -> list[acl.AccessList] | None:
    """The lists of one IPVS service from the groups its virtual server
    names (``refs``: kind, group name, line); None after an error."""
    if not refs:
        return []
    before = len(r.problems)
    if svc.fwmark or not svc.port:
        r.fail(refs[0][2], f"{name}: {refs[0][0].value}_group needs a service with an "
               "address and a port (not a fwmark or port 0)")
        return None
    target = acl.make_target(addr_text(svc.addr), Protocol(svc.protocol).name.lower(),
                             svc.port)
    lists: dict[acl.Kind, acl.AccessList] = {}
    for kind, gname, line in refs:
        group = groups.get((kind, gname))
        if group is None:
            r.fail(line, f"{name}: {kind.value}_group {gname} is not defined")
            continue
        if group.entries is None:
            r.fail(line, f"{name}: {kind.value}_group {gname} has errors (reported at its "
                   "lines)")
            continue
        mine = [e for e in group.entries if e.network.version == target.family]
        if kind == acl.Kind.ALLOW and not mine:
            r.fail(line, f"{name}: allow_group {gname} has no IPv{target.family} entries "
                   "(it would admit nobody)")
            continue
        lst = lists.setdefault(kind, acl.AccessList(kind, target))
        for entry in mine:
            if entry.network in lst.entries:
                r.fail(line, f"{name}: {acl.net_text(entry.network)} is in two of its "
                       f"{kind.value} groups")
            lst.entries[entry.network] = entry
    for lst in lists.values():
        for fault in acl.entry_faults(target, lst.entries.values()):
            if "listed twice" not in fault:
                r.fail(refs[0][2], f"{name}: {lst.kind.value} list: {fault}")
    if len(r.problems) > before:
        return None
    return list(lists.values())


# ---------------------------------------------------------------- writing
def group_lines(lst: acl.AccessList) -> list[str]:
    """A list as a top-level group named like its nftables set; a
    temporary entry with what is left of its timeout."""
    lines = [f"{lst.kind.value}_group {lst.name} {{"]
    for entry in sorted(lst.entries.values(),
                        key=lambda e: (int(e.network.network_address), e.network.prefixlen)):
        text = acl.net_text(entry.network)
        left = entry.expires if entry.expires is not None else entry.timeout
        if entry.timeout is not None:
            text += f" timeout {max(int(left or 0), 1)}"
        lines.append(f"    {text}")
    return lines + ["}"]


def reference_lines(lists: list[acl.AccessList]) -> list[str]:
    """The ``deny_group NAME`` lines of a virtual server (deny first)."""
    return [f"    {lst.kind.value}_group {lst.name}"
            for lst in sorted(lists, key=lambda lst: lst.kind != acl.Kind.DENY)]
