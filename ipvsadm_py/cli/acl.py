"""``ipvsadm-py deny|allow add|del|list|flush`` and ``ipvsadm-py acl
list|remove``: client lists of virtual services, kept in nftables by
:class:`ipvsadm_py.nft.AccessLists`.  Exit statuses: 0 done, 2 bad input
(nothing changed), 255 nftables refused (nothing changed).
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence, TextIO

from ipvsadm_py.acl import (PROTOCOLS, AccessList, Entry, Kind, Target, entry_count,
                            format_duration, make_target, net_text, parse_duration,
                            parse_network)
from ipvsadm_py.errors import InvalidInput, IPVSError
from ipvsadm_py.nft import AccessLists

COMMANDS = ("deny", "allow", "acl")
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
EXIT_INPUT, EXIT_REFUSED = 2, 255


def parse_vip(text: str, protocol: str | None) -> Target:
    """``10.0.0.100`` (every port), ``10.0.0.100:80``, ``2001:db8::1``,
    ``[2001:db8::1]:443``; a port takes ``protocol`` (default tcp)."""
    text = text.strip()
    port: str | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad VIP {text!r}")
            port = rest[1:]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host = text
    if port is None:
        if protocol is not None:
            raise ValueError("--protocol needs a port in --vip (ADDRESS:PORT)")
        return make_target(host)
    if not port.isdigit():
        raise ValueError(f"bad port in {text!r}")
    return make_target(host, protocol or "tcp", int(port))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ipvsadm-py", description="Client allow and deny "
                                  "lists of virtual services, enforced by nftables before "
                                  "IPVS and SYNPROXY (docs/acl.md).")
    sub = top.add_subparsers(dest="kind", required=True)
    for kind in ("deny", "allow"):
        k = sub.add_parser(kind, help=f"the {kind} lists")
        verbs = k.add_subparsers(dest="verb", required=True)
        add = verbs.add_parser("add", help="add addresses or prefixes (one transaction)")
        add.add_argument("entries", nargs="+", metavar="ADDRESS[/LEN]")
        add.add_argument("--timeout", help="remove the entries after this long "
                         "(seconds, or 90s, 30m, 1h, 2d); an entry already listed gets "
                         "the new timeout")
        delete = verbs.add_parser("del", help="delete addresses or prefixes")
        delete.add_argument("entries", nargs="+", metavar="ADDRESS[/LEN]")
        flush = verbs.add_parser("flush", help="remove the whole list")
        lst = verbs.add_parser("list", help="show the lists with their counters")
        for p in (add, delete, flush, lst):
            p.add_argument("--vip", required=p is not lst, metavar="ADDRESS[:PORT]",
                           help="the VIP (every port), or a service ADDRESS:PORT "
                           "([V6]:PORT)")
            p.add_argument("--protocol", choices=PROTOCOLS,
                           help="the service's protocol (default tcp; needs a port)")
        lst.add_argument("--json", action="store_true", help="as JSON")
    acl = sub.add_parser("acl", help="every list at once")
    verbs = acl.add_subparsers(dest="verb", required=True)
    lst = verbs.add_parser("list", help="show every allow and deny list")
    lst.add_argument("--json", action="store_true", help="as JSON")
    verbs.add_parser("remove", help="remove the nftables table and every list with it")
    ka = verbs.add_parser("apply-keepalived", help="make the lists those of a keepalived.conf's "
                          "deny_group/allow_group blocks (one transaction; lists it does not "
                          "name are removed)")
    ka.add_argument("-f", "--use-file", dest="file", default=KEEPALIVED_CONF,
                    help=f"the keepalived.conf (default {KEEPALIVED_CONF})")
    ka.add_argument("--dry-run", action="store_true", help="print the changes, make none")
    return top


def main(argv: Sequence[str], out: TextIO, err: TextIO,
         lists: AccessLists | None = None) -> int:
    args = parser().parse_args(list(argv))
    lists = lists or AccessLists()
    try:
        return _run(args, lists, out)
    except (InvalidInput, ValueError) as exc:
        err.write(f"{exc}\nnothing was changed\n")
        return EXIT_INPUT
    except IPVSError as exc:
        err.write(f"{exc}\nnothing was changed\n")
        return EXIT_REFUSED


def _run(args: argparse.Namespace, lists: AccessLists, out: TextIO) -> int:
    if args.kind == "acl":
        if args.verb == "remove":
            _report(lists.remove(), out)
            return 0
        if args.verb == "apply-keepalived":
            return _apply_keepalived(lists, args.file, args.dry_run, out)
        return _list(lists, None, None, args.json, out)
    kind = Kind(args.kind)
    target = parse_vip(args.vip, args.protocol) if args.vip else None
    if args.verb == "list":
        return _list(lists, kind, target, args.json, out)
    assert target is not None
    if args.verb == "flush":
        _report(lists.flush(kind, target), out)
    elif args.verb == "add":
        timeout = parse_duration(args.timeout) if args.timeout else None
        entries = [Entry(parse_network(text), timeout) for text in args.entries]
        _report(lists.add(kind, target, entries), out)
    else:
        _report(lists.delete(kind, target, [parse_network(t) for t in args.entries]), out)
    return 0


def _apply_keepalived(lists: AccessLists, path: str, dry_run: bool, out: TextIO) -> int:
    """The lists of a keepalived.conf, whole: every problem of the file is
    an error before anything is sent (keepalived runs this on start and
    reload, docs/acl.md)."""
    from ipvsadm_py.config import keepalived_conf

    try:
        desired = keepalived_conf.load(path)
    except OSError as exc:
        raise InvalidInput(str(exc)) from None
    tx = lists.plan(desired.access_lists)
    _report(tx, out)
    if not dry_run:
        lists.commit(tx)
    return 0


def _report(tx: Any, out: TextIO) -> None:
    marks = {"add": "+", "delete": "-"}
    if not tx.steps:
        out.write("nothing to change\n")
    for action, kind, text in tx.steps:
        out.write(f"{marks[action]} {kind} {text}\n")


def list_dict(lst: AccessList) -> dict[str, Any]:
    """A list as plain data (``--json``)."""
    t = lst.target
    return {"kind": lst.kind.value, "address": t.address, "protocol": t.protocol,
            "port": t.port, "packets": lst.packets, "bytes": lst.bytes,
            "entries": [{"network": net_text(e.network), "timeout": e.timeout,
                         "expires": e.expires} for e in _sorted(lst)]}


def _sorted(lst: AccessList) -> list[Entry]:
    return sorted(lst.entries.values(),
                  key=lambda e: (int(e.network.network_address), e.network.prefixlen))


def _list(lists: AccessLists, kind: Kind | None, target: Target | None, as_json: bool,
          out: TextIO) -> int:
    shown = [lst for lst in lists.read().values()
             if (kind is None or lst.kind == kind) and (target is None or lst.target == target)]
    shown.sort(key=lambda lst: (lst.kind.value, lst.target.sort_key()))
    if as_json:
        out.write(json.dumps({"lists": [list_dict(lst) for lst in shown]}, indent=2) + "\n")
        return 0
    for lst in shown:
        out.write(f"{lst.kind.value} {lst.target.describe()}: {entry_count(len(lst.entries))}, "
                  f"dropped {lst.packets} packets ({lst.bytes} bytes)\n")
        for entry in _sorted(lst):
            out.write(f"  {entry.describe()}\n")
    return 0


__all__ = ["COMMANDS", "main", "parse_vip", "list_dict", "format_duration"]
