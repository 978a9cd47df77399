"""``ipvsadm-py apply``, ``validate``, ``export`` and ``completion`` (argparse
subcommands beside the ipvsadm command line)."""

from __future__ import annotations

import argparse
import json
from typing import Sequence, TextIO

from ipvsadm_py import config
from ipvsadm_py.api import IPVS
from ipvsadm_py.config import keepalived_conf, keepalived_export
from ipvsadm_py.errors import IPVSError
from ipvsadm_py.nft import AccessLists

FORMATS = ("yaml", "keepalived")
FORMAT_HELP = ("yaml, or keepalived (keepalived.conf's virtual_server blocks; "
               "default: by the file's name, *.conf, or its content)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ipvsadm-py", description="Declarative IPVS "
                                  "configuration (see docs/ipvsadm-py.md for the schema).")
    sub = top.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="make the live table match a YAML or keepalived.conf "
                           "file")
    apply.add_argument("file", help="configuration file (YAML, or keepalived.conf: only its "
                       "virtual_server, virtual_server_group, local_address_group, "
                       "deny_group and allow_group blocks are read)")
    apply.add_argument("--format", choices=FORMATS, help=FORMAT_HELP)
    apply.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    apply.add_argument("--no-prune", action="store_true",
                       help="keep live services, real servers, local addresses and daemons "
                            "that the file does not mention")
    apply.add_argument("--json", action="store_true", help="print the plan as JSON")
    apply.add_argument("--load", action="store_true", help="load ip_vs if it is not loaded")
    validate = sub.add_parser("validate", help="check a YAML or keepalived.conf file without "
                              "touching the kernel")
    validate.add_argument("file")
    validate.add_argument("--format", choices=FORMATS, help=FORMAT_HELP)
    export = sub.add_parser("export", help="write the live table as a YAML file, or its "
                            "services as keepalived.conf virtual_server blocks")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    export.add_argument("--format", choices=FORMATS, default="yaml",
                        help="yaml (default: the whole state) or keepalived (services, real "
                        "servers, local addresses, SYNPROXY; no timeouts, sysctls, daemons)")
    export.add_argument("--no-sysctls", action="store_true",
                        help="leave out net.ipv4.vs sysctls (yaml)")
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=["bash"])
    return top


def main(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    args = parser().parse_args(list(argv))
    if args.command == "completion":
        from ipvsadm_py.cli.completion import bash_script

        out.write(bash_script())
        return 0
    try:
        if args.command == "validate":
            desired = load(args.file, args.format)
            out.write(f"{args.file}: valid ({len(desired.services)} services)\n")
            return 0
        if args.command == "export":
            return _export(args, out)
        return _apply(args, out, err)
    except config.ConfigError as exc:
        err.write(f"{exc}\nnothing was applied\n")
        return 2
    except OSError as exc:
        err.write(f"{exc}\n")
        return 2
    except IPVSError as exc:
        err.write(f"{exc}\n")
        return 2 if exc.errno in (0,) else 255


def load(path: str, fmt: str | None = None) -> config.Desired:
    """The desired state of a file in either format: ``fmt``, else
    keepalived for a ``*.conf`` name or a text that starts a line with a
    keepalived root keyword (``virtual_server``, ``global_defs``, ...),
    else YAML."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if fmt is None:
        keepalived = path.endswith(".conf") or (not path.endswith((".yaml", ".yml"))
                                                and keepalived_conf.looks_like(text))
        fmt = "keepalived" if keepalived else "yaml"
    if fmt == "keepalived":
        return keepalived_conf.validate(text, path)
    return config.validate(text, path)


def _export(args: argparse.Namespace, out: TextIO) -> int:
    with IPVS() as ipvs:
        live = config.read_live(ipvs)
    lists = AccessLists()
    acls = list(lists.read().values()) if lists.nft.available() else []
    if args.format == "keepalived":
        text = keepalived_export.export_text(live, acls)
    else:
        text = config.export_text(live, sysctls=not args.no_sysctls, lists=acls)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        out.write(text)
    return 0


def _apply(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    desired = load(args.file, args.format)    # the whole file, before anything else
    lists = AccessLists()
    with IPVS(load=args.load) as ipvs:
        steps = config.plan(desired, config.read_live(ipvs), prune=not args.no_prune)
        list_steps, transaction = config.list_plan(desired, lists, prune=not args.no_prune)
        steps = list_steps + steps
        for step in steps:
            if step.request is not None:
                ipvs.check_supported(step.request)
        if args.json:
            out.write(json.dumps({"dry_run": args.dry_run,
                                  "steps": [s.to_dict() for s in steps]}, indent=2) + "\n")
        else:
            out.write(config.plan_text(steps))
        if args.dry_run or not steps:
            return 0
        # The lists first, in one transaction: a new service is guarded
        # from its first packet, and a refused transaction changes nothing.
        lists.commit(transaction)
        failures = config.apply_plan(ipvs, steps)
    for line in failures:
        err.write(f"{line}\n")
    return 255 if failures else 0
