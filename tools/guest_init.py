"""Guest side of ``tools/guest.py``: install and load our modules, run a command.

Runs as root inside the virtme-ng guest, where ``/lib/modules/KVER`` is a
writable overlay.  Copying the host-prepared indexes and our modules there
makes ``modprobe`` (and the kernel's own request_module(), e.g. for a
scheduler named by ``ipvsadm -s``) resolve to our build, dependencies first.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

# Kernel log lines that mean the kernel misbehaved.  Each is a prefix or
# phrase the kernel prints for that class of failure.  The debug kernel's
# sanitizers report through the same prefixes: KASAN ("BUG: KASAN: ..."),
# lockdep ("WARNING: possible circular locking dependency detected",
# "WARNING: inconsistent lock state", "INFO: trying to register non-static
# key"), PROVE_RCU ("WARNING: suspicious RCU usage"), DEBUG_ATOMIC_SLEEP
# ("BUG: sleeping function called from invalid context"), DEBUG_PREEMPT
# ("BUG: using smp_processor_id() in preemptible code"), DEBUG_OBJECTS
# ("ODEBUG: free active object"), DEBUG_LIST; kmemleak's objects are read
# from debugfs by tests/kernel/test_zz_kernel_log.py.
LOG_PROBLEMS = re.compile(
    r"(Oops|BUG:|kernel BUG at|WARNING:|general protection fault|"
    r"Call Trace:|Objects remaining|unreferenced object|UBSAN:|KASAN:|"
    r"refcount_t:|list_add corruption|list_del corruption|list_add double add|"
    r"ODEBUG:|INFO: trying to register non-static key|Kernel panic|soft lockup|"
    r"rcu_\w+ self-detected stall|rcu_\w+ detected stalls|blocked for more than|"
    r"kmem_cache_destroy .*: Slab cache still has objects|"
    r"unregister_netdevice: waiting for)")
MARK = "lvs-guest: start"


def kernel_log_problems(text: str) -> list[str]:
    """Lines of a kernel log that show an oops, WARN, BUG, stall or leak."""
    return [line for line in text.splitlines() if LOG_PROBLEMS.search(line)]


# What a test writes into the kernel log when it starts (tests/guest_plugin.py),
# so that a console that ends in a crash says which test was running.
TEST_START = "lvs-test: start "


def console_excerpt(text: str, tail: int = 40, report: int = 80) -> str:
    """The part of a guest console worth showing when a guest died: the last
    test that started, the first problem the kernel reported (``report``
    lines from a few before its first LOG_PROBLEMS line) and the last
    ``tail`` lines."""
    lines = text.splitlines()
    started = next((line for line in reversed(lines) if TEST_START in line), None)
    parts = [started] if started else []
    first = next((n for n, line in enumerate(lines) if LOG_PROBLEMS.search(line)), None)
    end_of_report = 0
    if first is not None and first < len(lines) - tail:
        begin = max(0, first - 5)
        end_of_report = min(len(lines) - tail, begin + report)
        parts += ["[first kernel problem]", *lines[begin:end_of_report]]
    last = lines[max(end_of_report, len(lines) - tail):]
    if parts and last:
        parts.append("[end of the console]")
    return "\n".join(parts + last)


KMEMLEAK = Path("/sys/kernel/debug/kmemleak")
# A backtrace frame in one of our modules ("ip_vs_conn_new+0x5c/0x9a0 [ip_vs]"),
# or an address no symbol covers any more: code of a module unloaded since
# the allocation (on the debug kernel every module is one of ours).
_OUR_FRAME = re.compile(r"\[(ip_vs\w*|toa)\]\s*$|^\s*0x[0-9a-f]+\s*$")


def kmemleak_scan(path: Path = KMEMLEAK, scans: int = 2) -> str:
    """Scan for leaks ``scans`` times (an object must stay unreferenced
    over two scans to be worth reporting) and return kmemleak's report."""
    for _ in range(scans):
        path.write_text("scan")
    return path.read_text()


def kmemleak_records(text: str) -> list[str]:
    """One block per unreferenced object of a kmemleak report."""
    records: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("unreferenced object"):
            records.append([line])
        elif records:
            records[-1].append(line)
    return ["\n".join(record) for record in records]


def leak_is_ours(record: str) -> bool:
    """Whether an unreferenced object was allocated through our code."""
    _head, _sep, trace = record.partition("backtrace")
    return any(_OUR_FRAME.search(line) for line in trace.splitlines()[1:])


def kernel_log(since_mark: bool = True) -> str:
    """The kernel log, from our start marker on."""
    text = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    if since_mark and MARK in text:
        text = text[text.rindex(MARK):]
    return text


def mark_log(message: str) -> None:
    with open("/dev/kmsg", "w") as kmsg:
        kmsg.write(message + "\n")


def install_modules(kver: str, modroot: Path, modules: Path = Path("/lib/modules")) -> None:
    """Our modules and the indexes into ``/lib/modules/KVER``; for a kernel
    built in the checkout, the folder itself and its links to the stock
    modules and the build tree (the host has no such folder)."""
    live = modules / kver
    live.mkdir(parents=True, exist_ok=True)
    for link in ("kernel", "build", "source"):
        if (modroot / link).is_symlink() and not os.path.lexists(live / link):
            (live / link).symlink_to(os.readlink(modroot / link))
    for path in modroot.iterdir():
        if path.name.startswith("modules."):
            shutil.copy2(path, live / path.name)
    shutil.copytree(modroot / "updates", live / "updates", dirs_exist_ok=True)


def modules_to_load(modroot: Path, load: str) -> list[str]:
    if load == "none":
        return []
    if load == "all":
        return sorted(p.stem for p in (modroot / "updates").rglob("*.ko"))
    return [name.strip() for name in load.split(",") if name.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="guest_init")
    parser.add_argument("--kver", required=True)
    parser.add_argument("--modroot", type=Path)
    parser.add_argument("--load", default="all")
    parser.add_argument("--strict-log", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    running = os.uname().release
    if running != args.kver:
        print(f"guest_init: booted {running}, expected {args.kver}", file=sys.stderr)
        return 2
    mark_log(MARK)
    if args.modroot:
        install_modules(args.kver, args.modroot)
        names = modules_to_load(args.modroot, args.load)
        if names:
            res = subprocess.run(["modprobe", "-a", *names], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"guest_init: modprobe failed: {res.stderr.strip()}", file=sys.stderr)
                return 2
    env = dict(os.environ, LVS_GUEST="1", PYTHONDONTWRITEBYTECODE="1",
               PATH=f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin")
    rc = subprocess.run(" ".join(command) or "true", shell=True, env=env).returncode
    problems = kernel_log_problems(kernel_log())
    if problems:
        print("guest_init: the kernel log shows problems:", file=sys.stderr)
        for line in problems:
            print("  " + line, file=sys.stderr)
        if args.strict_log and rc == 0:
            rc = 125
    return rc


if __name__ == "__main__":
    sys.exit(main())
