"""lvs-tune: plan, apply, revert and audit host tuning for the balancer.

    lvs-tune facts                      what the host looks like
    lvs-tune plan [--profile P]         the writes the profile needs (a table)
    lvs-tune apply [--dry-run]          write them, saving the old values
    lvs-tune revert                     put the old values back
    lvs-tune audit                      list deviations; exit 1 if any
    lvs-tune unit                       print the systemd unit for boot

Exit status: 0 success (audit: no deviation), 1 failure or deviations,
2 bad usage or profile.  ``--root DIR`` runs on a fake /proc and /sys tree.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

from lvs_tools.tuning import report
from lvs_tools.tuning.api import Tuner
from lvs_tools.tuning.apply import STATE_PATH, ApplyError, RevertError
from lvs_tools.tuning.hostfs import HostReadError
from lvs_tools.tuning.profile import STRATEGIES, ProfileError
from lvs_tools.tuning.systemd import DEFAULT_PROFILE_PATH, unit_text


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default="/",
                        help="root of the /proc and /sys tree (default /; tests use a fake one)")
    common.add_argument("--profile", help="profile YAML file or packaged profile name "
                                          "(default: the packaged default profile)")
    common.add_argument("--strategy", choices=STRATEGIES, help="override the profile's strategy")
    common.add_argument("--interface", action="append", dest="interfaces", metavar="IFNAME",
                        help="tune only this NIC (repeatable; overrides the profile)")
    common.add_argument("--state", default=STATE_PATH,
                        help=f"state file, under the root (default {STATE_PATH})")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lvs-tune", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True)
    common = [_common()]
    facts = sub.add_parser("facts", parents=common, help="show what the host looks like")
    facts.add_argument("--json", action="store_true")
    plan = sub.add_parser("plan", parents=common, help="show the writes the profile needs")
    plan.add_argument("--json", action="store_true")
    apply = sub.add_parser("apply", parents=common, help="apply the plan (all or nothing)")
    apply.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    sub.add_parser("revert", parents=common, help="restore the values saved by apply")
    audit = sub.add_parser("audit", parents=common, help="list deviations; exit 1 if any")
    audit.add_argument("--json", action="store_true")
    unit = sub.add_parser("unit", help="print the systemd unit that applies at boot")
    unit.add_argument("--exec", dest="exec_path", metavar="PATH",
                      help="absolute path of lvs-tune for ExecStart (default: this one)")
    unit.add_argument("--unit-profile", default=DEFAULT_PROFILE_PATH,
                      help=f"profile the unit applies (default {DEFAULT_PROFILE_PATH})")
    return parser


def _tuner(args: argparse.Namespace) -> Tuner:
    return Tuner.open(args.root, args.profile, args.strategy, args.interfaces, args.state)


def cmd_facts(args: argparse.Namespace) -> int:
    facts = _tuner(args).facts()
    print(json.dumps(report.jsonable(facts), indent=1) if args.json else report.facts_text(facts))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    plan = _tuner(args).plan()
    print(json.dumps(report.jsonable(plan), indent=1) if args.json else report.plan_table(plan))
    return 0 if plan.applicable else 1


def cmd_apply(args: argparse.Namespace) -> int:
    tuner = _tuner(args)
    plan = tuner.plan()
    print(report.plan_table(plan))
    if args.dry_run:
        print("\ndry run: nothing written")
        return 0 if plan.applicable else 1
    try:
        written = tuner.apply(plan)
    except ApplyError as exc:
        print(f"\napply failed: {exc}", file=sys.stderr)
        for error in exc.rollback_errors:
            print(f"  rollback failed: {error}", file=sys.stderr)
        return 1
    print("\n" + report.applied(written, args.state))
    return 0


def cmd_revert(args: argparse.Namespace) -> int:
    try:
        result = _tuner(args).revert()
    except RevertError as exc:
        print(f"revert: {exc}", file=sys.stderr)
        return 1
    print(report.reverted(result))
    return 1 if result.errors else 0


def cmd_audit(args: argparse.Namespace) -> int:
    tuner = _tuner(args)
    found = tuner.audit()
    if args.json:
        print(json.dumps([{"target": d.target, "message": d.message} for d in found], indent=1))
    else:
        print(report.audit_report(found, tuner.profile.name))
    return 1 if found else 0


def cmd_unit(args: argparse.Namespace) -> int:
    print(unit_text(args.exec_path, args.unit_profile), end="")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "facts": cmd_facts, "plan": cmd_plan, "apply": cmd_apply, "revert": cmd_revert,
    "audit": cmd_audit, "unit": cmd_unit}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ProfileError, ValueError) as exc:
        print(f"lvs-tune: {exc}", file=sys.stderr)
        return 2
    except HostReadError as exc:
        print(f"lvs-tune: {exc}", file=sys.stderr)
        return 1


def run() -> None:
    """Entry point of the installed ``lvs-tune`` command."""
    try:
        sys.exit(main())
    except BrokenPipeError:          # lvs-tune plan | head
        sys.stderr.close()
        sys.exit(1)


if __name__ == "__main__":
    run()
