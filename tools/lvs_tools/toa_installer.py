"""Put toa.ko on a real server, prove that it works, report, take it away.

On a real server, as root, in the root folder of a copy of this project
(``tools/`` holds this package; the build steps use the copy's sources)::

    export PYTHONPATH=tools
    python3 -m lvs_tools.toa_installer check      # kernel, headers, tools, signing policy
    python3 -m lvs_tools.toa_installer install    # DKMS build + install, load, persist, self-test
    python3 -m lvs_tools.toa_installer install --trusted 10.0.3.0/24,2001:db8:3::/64
    python3 -m lvs_tools.toa_installer install --mode ebpf    # the BPF variant instead
    python3 -m lvs_tools.toa_installer install --mode auto    # whichever this kernel allows
    python3 -m lvs_tools.toa_installer status
    python3 -m lvs_tools.toa_installer stats      # the counters of the active variant
    python3 -m lvs_tools.toa_installer selftest
    python3 -m lvs_tools.toa_installer uninstall  # either variant

(``./inv toa.install`` and friends call the same functions; the package
installs the command as ``lvs-toa``.)  Standard library only: a real server
has ``python3`` but not the project's venv.

``--mode`` chooses the variant: ``module`` (toa.ko, the default, as below),
``ebpf`` (the BPF programs of kernel/toa_bpf, :mod:`.toa_bpf_steps`: no
module, no headers, no compiler on the server when ``--object`` is given),
or ``auto`` (the BPF variant where the kernel refuses unsigned modules or
toa.ko cannot be built here, else the module).  The two are never active
together: each install refuses while the other is there.

Install, step by step: ``check`` stops early with the package to install
when headers, DKMS or a compiler are missing; DKMS builds toa.ko for the
kernel (tools/install.py, ``kernel/toa/dkms.conf``) and rebuilds it for
every later kernel; ``modprobe toa`` loads it (a loaded older copy is
replaced: unloading toa is always safe); ``/etc/modules-load.d/lvs-toa.conf``
loads it at boot; the self-test (tools/lvs_tools/toa_selftest.py) proves, in a private
network namespace, that accept() and getpeername() return TOA clients.
``--trusted PREFIX,...`` (the balancers' local-address prefixes) becomes the
module's ``trusted`` parameter, written to ``/etc/modprobe.d/lvs-toa.conf``
so that it holds at every load; TOA from any other peer is then ignored.

A kernel that refuses unsigned modules (Secure Boot lockdown, or
``module.sig_enforce``) is detected before loading, and the message says
what the operator can do: enroll the DKMS signing certificate as a MOK, or
sign with their own MOK key (docs/toa.md has the steps).

This module is the command line; the work is split by job, each part
importing only those before it: :mod:`.toa_base` (names, the error, the
checkout's build code), :mod:`.toa_facts` (headers, tools, signing policy),
:mod:`.toa_state` (loaded, DKMS, at boot, counters), :mod:`.toa_trust` (the
trusted peers), :mod:`.toa_bpf_steps` (the BPF variant's steps and
``auto``'s choice), :mod:`.toa_steps` (check, install, uninstall, status).  Their
names stay importable from here.  Every reader takes ``root`` (default
``/``) so that the logic can be tested on fake trees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from lvs_tools import toa_bpf_steps as bpf_steps

from lvs_tools.toa_base import (DKMS_SET, MODULE, NEEDS_CHECKOUT, OPTIONS_FILE, PERSIST_FILE,
                                InstallerError, checkout, dpkg_version, kernel_line, say)
from lvs_tools.toa_facts import (DKMS_CERT, DKMS_KEY, EFI_SECUREBOOT, SUPPORTED_LINES,
                                 SigningPolicy, check_headers, check_tools, headers_package,
                                 secure_boot, signing_advice, signing_policy)
from lvs_tools.toa_state import (dkms_status, loaded, module_file, module_signer, parse_stats,
                                 persist, persisted, read_stats, running_kernel, unpersist)
from lvs_tools.toa_steps import (SIGNATURE_ERRORS, CheckResult, check, format_status, install,
                                 load, require_root, selftest, status, uninstall)
from lvs_tools.toa_trust import (TRUSTED_MAX, TRUSTED_PARAM, TRUSTED_PATH, parse_trusted,
                                 persisted_trusted, write_trusted)

__all__ = ["DKMS_CERT", "DKMS_KEY", "DKMS_SET", "EFI_SECUREBOOT", "MODULE", "NEEDS_CHECKOUT",
           "OPTIONS_FILE", "PERSIST_FILE", "SIGNATURE_ERRORS", "SUPPORTED_LINES",
           "TRUSTED_MAX", "TRUSTED_PARAM", "TRUSTED_PATH", "CheckResult", "InstallerError",
           "SigningPolicy", "check", "check_headers", "check_tools", "checkout", "dkms_status",
           "dpkg_version", "format_status", "headers_package", "install", "kernel_line",
           "load", "loaded", "main", "module_file", "module_signer", "parse_stats",
           "parse_trusted", "persist", "persisted", "persisted_trusted", "read_stats",
           "require_root", "running_kernel", "say", "secure_boot", "selftest", "signing_advice",
           "signing_policy", "status", "uninstall", "unpersist", "write_trusted"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lvs-toa", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Put TOA (toa.ko, or its BPF variant with --mode ebpf) on a real server\n"
                    "behind a FULLNAT balancer, prove that it works, report, take it away.",
        epilog="actions:\n"
               "  check      what an install needs, changing nothing (exit 1: a problem)\n"
               "  install    build/load/persist toa.ko (DKMS), or load, pin, attach and\n"
               "             persist the BPF variant; then the self-test\n"
               "  status     what is installed, loaded or attached, at boot, counted\n"
               "             (exit 1: no TOA active)\n"
               "  stats      the active variant's counters, one per line\n"
               "  selftest   prove in a private network namespace that accept() and\n"
               "             getpeername() name TOA clients\n"
               "  uninstall  remove whichever variant is there\n\n"
               "Root is needed for all but check --mode module, status and toa.ko's stats.\n"
               "docs/toa.md has the details.")
    parser.add_argument("action", choices=("check", "install", "status", "stats", "selftest",
                                           "uninstall"), help="see below")
    parser.add_argument("--kver", default=running_kernel(),
                        help="kernel release (default: the running kernel)")
    parser.add_argument("--mode", choices=bpf_steps.MODES, default="module",
                        help="check/install: toa.ko (module, the default), the BPF variant "
                             "(ebpf), or whichever this kernel allows (auto: ebpf where "
                             "unsigned modules are refused or toa.ko cannot be built)")
    parser.add_argument("--cgroup", type=Path, metavar="DIR",
                        help="ebpf: the cgroup v2 directory whose processes get TOA "
                             "(default: the hierarchy's root, every process)")
    parser.add_argument("--object", type=Path, metavar="FILE",
                        help="ebpf: the BPF object to install (./inv build makes "
                             "build/bpf/toa.bpf.o; default: that, or compiled here)")
    parser.add_argument("--no-selftest", action="store_true",
                        help="install without running the self-test")
    parser.add_argument("--trusted", metavar="PREFIX,...",
                        help="install: believe TOA only from these prefixes (the "
                             "balancers' local addresses), e.g. 10.0.3.0/24,2001:db8:3::/64; "
                             "'' for any peer; kept in /" + OPTIONS_FILE + " (module) or "
                             "/" + bpf_steps.STATE_FILE + " and the boot unit (ebpf)")
    args = parser.parse_args(argv)
    try:
        if args.trusted is not None and args.action != "install":
            raise InstallerError("--trusted goes with install")
        if (args.cgroup or args.object) and args.action not in ("check", "install"):
            raise InstallerError("--cgroup and --object go with check and install")
        return _dispatch(args)
    except InstallerError as exc:
        print(f"toa: error: {exc}", file=sys.stderr)
        return 1


def _mode(args: argparse.Namespace) -> str:
    if args.mode != "auto":
        return args.mode
    mode, why = bpf_steps.choose(args.kver)
    say(f"mode auto: {mode} ({why})")
    return mode


def _dispatch(args: argparse.Namespace) -> int:
    if args.action == "check":
        if _mode(args) == "ebpf":
            result = bpf_steps.check(args.cgroup, args.object)
            ready = f"ready to install the BPF variant on {result.cgroup}"
        else:
            result = check(args.kver)
            ready = f"ready to install toa for {args.kver} (headers: {result.headers})"
        for note in result.notes:
            print(f"note: {note}")
        for problem in result.problems:
            print(f"problem: {problem}")
        if not result.problems:
            print(ready)
        return 1 if result.problems else 0
    if args.action == "install":
        trusted = parse_trusted(args.trusted) if args.trusted is not None else None
        require_root()
        if _mode(args) == "ebpf":
            bpf_steps.install(cgroup=args.cgroup, obj=args.object, trusted=trusted,
                              run_selftest=not args.no_selftest)
        else:
            install(args.kver, run_selftest=not args.no_selftest, trusted=trusted)
        return 0
    bpf = bpf_steps.status() if bpf_steps.bpf_present() else None
    if args.action == "status":
        info = status(args.kver)
        if bpf is None or any(info[k] for k in ("loaded", "persistent", "dkms",
                                                "module_file")):
            print(format_status(info))
        else:                  # only the BPF variant is here: its lines alone
            print(f"kernel       {info['kernel']}\ntoa.ko       not installed")
        if bpf is not None:
            print(bpf_steps.format_status(bpf))
        return 0 if info["loaded"] or (bpf and bpf["attached"]) else 1
    if args.action == "stats":
        counters = bpf["counters"] if bpf is not None else read_stats()
        if counters is None:
            raise InstallerError("no TOA is active here: neither /proc/net/toa_stats "
                                 "(toa.ko) nor the BPF variant's pinned counters")
        for name, value in counters.items():
            print(f"{name:<24}{value}")
        return 0
    if args.action == "selftest":
        if bpf is not None and bpf["cgroup"]:
            ok, output = bpf_steps.selftest(Path(bpf["cgroup"]), bpf["trusted"] or [])
        else:
            ok, output = selftest()
        print(output)
        return 0 if ok else 1
    require_root()
    done = bpf_steps.uninstall() + uninstall(args.kver)
    for line in done or ["nothing to remove"]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
