"""Put toa.ko on a real server, prove that it works, report, take it away.

On a real server, as root, in the root folder of a copy of this project
(``tools/`` holds this package; the build steps use the copy's sources)::

    export PYTHONPATH=tools
    python3 -m lvs_tools.toa_installer check      # kernel, headers, tools, signing policy
    python3 -m lvs_tools.toa_installer install    # DKMS build + install, load, persist, self-test
    python3 -m lvs_tools.toa_installer install --trusted 10.0.3.0/24,2001:db8:3::/64
    python3 -m lvs_tools.toa_installer status
    python3 -m lvs_tools.toa_installer selftest
    python3 -m lvs_tools.toa_installer uninstall

(``./inv toa.install`` and friends call the same functions.)  Standard
library only: a real server has ``python3`` but not the project's venv.

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

Every function takes ``root`` (default ``/``) so that the logic can be
tested on fake trees.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator, Sequence


MODULE = "toa"
DKMS_SET = "toa"
PERSIST_FILE = "etc/modules-load.d/lvs-toa.conf"
OPTIONS_FILE = "etc/modprobe.d/lvs-toa.conf"
TRUSTED_PARAM = "sys/module/toa/parameters/trusted"
TRUSTED_PATH = "/" + TRUSTED_PARAM
TRUSTED_MAX = 64        # the module's limit (kernel/toa/toa_trust.c)
SUPPORTED_LINES = ("6.1", "6.12")
DKMS_KEY, DKMS_CERT = "/var/lib/dkms/mok.key", "/var/lib/dkms/mok.pub"
EFI_SECUREBOOT = ("sys/firmware/efi/efivars/"
                  "SecureBoot-8be4df61-93ca-11d2-aa0d-e39ba7e1d4d7")
# modprobe's words for a signature the kernel did not accept.
SIGNATURE_ERRORS = re.compile(r"Key was rejected by service|Required key not available|"
                              r"module verification failed|Operation not permitted")


NEEDS_CHECKOUT = ("this step needs a checkout of lvs-toolkit (DKMS builds toa.ko from its "
                  "kernel/toa with tools/kbuild.py): run it from one, as "
                  "PYTHONPATH=tools python3 -m lvs_tools.toa_installer ...")


class InstallerError(Exception):
    """A step failed; the message says what to do."""


@contextlib.contextmanager
def checkout() -> Iterator[tuple[ModuleType, ModuleType]]:
    """The checkout's build code, ``(tools.install, tools.kbuild)``.

    DKMS builds toa.ko from the checkout's sources with tools/kbuild.py, so
    the steps that build, or read Debian's package facts, run from a
    checkout; the installed package alone has the self-test.  Imported here,
    not at the top: the development harness is not installed.  Its
    BuildError comes out as InstallerError.
    """
    try:
        from tools import install, kbuild
    except ImportError as exc:
        raise InstallerError(NEEDS_CHECKOUT) from exc
    try:
        yield install, kbuild
    except kbuild.BuildError as exc:
        raise InstallerError(str(exc)) from exc


def dpkg_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (tools/kbuild.py)."""
    with checkout() as (_, kbuild):
        return kbuild.dpkg_version(package)


def kernel_line(kver: str) -> str:
    """'6.12.95+deb12-amd64' -> '6.12' (tools/kbuild.py)."""
    with checkout() as (_, kbuild):
        return kbuild.kernel_line(kver)


Which = Callable[[str], "str | None"]
VersionOf = Callable[[str], "str | None"]


def say(msg: str) -> None:
    print(f"[toa] {msg}", flush=True)


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True)


# ---------------------------------------------------------------- facts

def headers_package(kver: str, image_version: str | None) -> str:
    """The apt command that installs the headers of ``kver`` (at the image's version)."""
    with checkout() as (_, kbuild):
        return kbuild.apt_hint(f"linux-headers-{kver}", image_version)


def check_headers(kver: str, root: Path = Path("/"),
                  version_of: VersionOf = dpkg_version) -> Path:
    """The headers folder of ``kver``; InstallerError naming the package if absent."""
    build = root / "lib/modules" / kver / "build"
    if (build / "Makefile").exists():
        return build
    image = version_of(f"linux-image-{kver}") or version_of(f"linux-image-{kver}-unsigned")
    if not (root / "lib/modules" / kver).is_dir() and image is None:
        raise InstallerError(f"kernel {kver} is not installed here "
                             f"(no {root / 'lib/modules' / kver})")
    raise InstallerError(
        f"the headers of kernel {kver} are missing ({build} has no Makefile); "
        f"install them with: {headers_package(kver, image)}")


def check_tools(which: Which = shutil.which) -> list[str]:
    """Missing build tools, each with the package that brings it."""
    wanted = {"dkms": "dkms", "make": "make", "gcc": "gcc", "modprobe": "kmod",
              "ip": "iproute2"}
    return [f"{tool} is missing: apt-get install {package}"
            for tool, package in wanted.items() if which(tool) is None]


@dataclasses.dataclass
class SigningPolicy:
    """Does the running kernel refuse modules without a trusted signature?"""

    enforced: bool
    reasons: list[str]


def signing_policy(root: Path = Path("/")) -> SigningPolicy:
    """Read lockdown, sig_enforce, the command line and the EFI Secure Boot flag."""
    reasons = []
    lockdown = _read(root / "sys/kernel/security/lockdown")
    mode = re.search(r"\[(\w+)\]", lockdown or "")
    if mode and mode.group(1) != "none":
        reasons.append(f"kernel lockdown is '{mode.group(1)}'")
    if (_read(root / "sys/module/module/parameters/sig_enforce") or "").strip() == "Y":
        reasons.append("module.sig_enforce is on")
    cmdline = _read(root / "proc/cmdline") or ""
    if re.search(r"(^|\s)module\.sig_enforce=(1|y|Y)\b", cmdline) and \
            "module.sig_enforce is on" not in reasons:
        reasons.append("module.sig_enforce=1 on the kernel command line")
    if secure_boot(root):
        reasons.append("UEFI Secure Boot is enabled")
    # Secure Boot alone does not refuse modules unless it turned lockdown on;
    # the kernel's own answer (lockdown, sig_enforce) decides.
    enforced = any(not r.startswith("UEFI") for r in reasons)
    return SigningPolicy(enforced, reasons)


def secure_boot(root: Path = Path("/")) -> bool:
    """The EFI SecureBoot variable: 4 bytes of attributes, then 1 when on."""
    try:
        data = (root / EFI_SECUREBOOT).read_bytes()
    except OSError:
        return False
    return len(data) >= 5 and data[4] == 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def signing_advice(kver: str, signer: str | None) -> str:
    """What an operator can do when the kernel refuses our module."""
    line = kernel_line(kver)
    signed = (f"toa.ko is signed by '{signer}', a key this kernel does not trust yet."
              if signer else "toa.ko is not signed.")
    return (
        f"This kernel only loads modules signed by a key it trusts, and {signed}\n"
        f"What to do (docs/toa.md, 'Secure Boot'):\n"
        f"  1. Enroll the key DKMS signs with as a Machine Owner Key (once per machine):\n"
        f"       mokutil --import {DKMS_CERT}      # asks for a one-time password\n"
        f"     reboot; in MokManager choose 'Enroll MOK', 'Continue', 'Yes', the password.\n"
        f"  2. Or sign with your own MOK key: set mok_signing_key= and mok_certificate=\n"
        f"     in /etc/dkms/framework.conf and run the install again, or by hand:\n"
        f"       /usr/lib/linux-kbuild-{line}/scripts/sign-file sha256 MOK.priv MOK.der \\\n"
        f"         $(modinfo -k {kver} -n toa)\n"
        f"  3. Then: PYTHONPATH=tools python3 -m lvs_tools.toa_installer install\n"
        f"     (or modprobe toa).")


# ---------------------------------------------------------------- state

def running_kernel() -> str:
    return os.uname().release


def loaded(root: Path = Path("/")) -> bool:
    return (root / "sys/module" / MODULE / "initstate").exists()


def module_file(kver: str) -> str | None:
    """The toa.ko modprobe would load for ``kver``, or None."""
    res = _run(["modinfo", "-k", kver, "-n", MODULE])
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None


def module_signer(path: str) -> str | None:
    res = _run(["modinfo", "-F", "signer", path])
    return res.stdout.strip() or None


def dkms_status(kver: str) -> str | None:
    if shutil.which("dkms") is None:
        return None
    with checkout() as (inst, _):
        name = inst.DKMS_PACKAGES[DKMS_SET][0]
    res = _run(["dkms", "status", "-k", kver, name])
    return res.stdout.strip() or None


def persisted(root: Path = Path("/")) -> bool:
    path = root / PERSIST_FILE
    return path.exists() and MODULE in path.read_text().split()


def persist(root: Path = Path("/")) -> Path:
    """Load toa at every boot (systemd-modules-load reads modules-load.d)."""
    path = root / PERSIST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# TOA for real servers behind a FULLNAT balancer (lvs-toolkit);\n"
                    "# written by lvs_tools.toa_installer, removed by its uninstall.\n"
                    f"{MODULE}\n")
    return path


def unpersist(root: Path = Path("/")) -> bool:
    path = root / PERSIST_FILE
    if not path.exists():
        return False
    path.unlink()
    return True


# ---------------------------------------------------------------- trusted peers

def parse_trusted(value: str) -> list[str]:
    """The prefixes of a ``trusted`` value, in the form the module shows
    them; InstallerError naming the bad item.  The rules are the module's,
    so that a value that passes here is never refused at load time: comma-
    separated IPv4/IPv6 prefixes, an address alone is a host, no bits set
    past the length, IPv4 written as IPv4.  Empty: any peer (``[]``)."""
    value = value.strip()
    if not value:
        return []
    items = [item.strip() for item in value.split(",")]
    if len(items) > TRUSTED_MAX:
        raise InstallerError(f"--trusted: {len(items)} prefixes, at most {TRUSTED_MAX}")
    return [_trusted_prefix(item) for item in items]


def _trusted_prefix(item: str) -> str:
    addr, slash, length = item.partition("/")
    if not item:
        raise InstallerError("--trusted: empty item (two commas, or one at an end)")
    if slash and not length.isdigit():
        raise InstallerError(f"--trusted: '{item}': the length after '/' must be a number")
    try:
        net = ipaddress.ip_network(item, strict=True)
    except ValueError as exc:
        raise InstallerError(f"--trusted: '{item}': {exc}") from None
    if net.version == 6 and net.network_address.ipv4_mapped is not None:
        raise InstallerError(f"--trusted: '{item}': IPv4-mapped; write IPv4 prefixes as IPv4")
    return str(net)


def write_trusted(prefixes: list[str], root: Path = Path("/")) -> Path | None:
    """Make ``trusted`` hold at every load of toa (modprobe reads
    modprobe.d); no prefixes: remove the file, any peer again."""
    path = root / OPTIONS_FILE
    if not prefixes:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Peers whose TOA toa.ko believes (lvs-toolkit, docs/toa.md);\n"
                    "# written by lvs_tools.toa_installer --trusted, removed by its uninstall.\n"
                    f"options {MODULE} trusted={','.join(prefixes)}\n")
    return path


def persisted_trusted(root: Path = Path("/")) -> str | None:
    """The ``trusted`` value our modprobe.d file sets, or None."""
    text = _read(root / OPTIONS_FILE) or ""
    for line in text.splitlines():
        words = line.split()
        if words[:2] == ["options", MODULE]:
            for word in words[2:]:
                if word.startswith("trusted="):
                    return word[len("trusted="):]
    return None


def parse_stats(text: str) -> dict[str, int]:
    """Counter name -> total, from /proc/net/toa_stats."""
    stats = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[-1].isdigit():
            stats[fields[0]] = int(fields[-1])
    return stats


def read_stats(root: Path = Path("/")) -> dict[str, int] | None:
    text = _read(root / "proc/net/toa_stats")
    return parse_stats(text) if text is not None else None


# ---------------------------------------------------------------- steps

@dataclasses.dataclass
class CheckResult:
    kver: str
    headers: Path
    problems: list[str]          # each stops the install
    notes: list[str]             # worth knowing, not fatal
    policy: SigningPolicy


def check(kver: str, root: Path = Path("/"), which: Which = shutil.which,
          version_of: VersionOf = dpkg_version) -> CheckResult:
    """Everything an install needs, without changing anything."""
    problems, notes = [], []
    headers = root / "lib/modules" / kver / "build"
    try:
        headers = check_headers(kver, root, version_of)
    except InstallerError as exc:
        problems.append(str(exc))
    problems += check_tools(which)
    line = kernel_line(kver)
    if line not in SUPPORTED_LINES:
        notes.append(f"kernel line {line} is not one this project tests "
                     f"({', '.join(SUPPORTED_LINES)}); building anyway")
    policy = signing_policy(root)   # the running kernel's; Secure Boot covers all
    if policy.enforced:
        notes.append("this kernel refuses modules without a trusted signature ("
                     + "; ".join(policy.reasons) + "): DKMS signs toa.ko with "
                     f"{DKMS_KEY}; that key must be enrolled (see 'status' after install)")
    return CheckResult(kver, headers, problems, notes, policy)


def require_root() -> None:
    if os.geteuid() != 0:
        raise InstallerError("this changes the system (DKMS, /lib/modules, /etc) and "
                             "needs root: run it with sudo")


def load(kver: str) -> None:
    """(Re)load toa: a loaded copy may be older than the one just installed."""
    if loaded():
        res = _run(["modprobe", "-r", MODULE])
        if res.returncode != 0:
            raise InstallerError(f"cannot unload the running toa: {res.stderr.strip()}")
    res = _run(["modprobe", MODULE])
    if res.returncode == 0:
        return
    path = module_file(kver)
    if SIGNATURE_ERRORS.search(res.stderr) or signing_policy().enforced:
        raise InstallerError(f"modprobe toa failed: {res.stderr.strip()}\n"
                             + signing_advice(kver, module_signer(path) if path else None))
    raise InstallerError(f"modprobe toa failed: {res.stderr.strip()}")


def selftest() -> tuple[bool, str]:
    """Run tools/lvs_tools/toa_selftest.py in its own network namespace."""
    here = str(Path(__file__).resolve().parent.parent)   # where lvs_tools is
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    res = subprocess.run([sys.executable, "-m", "lvs_tools.toa_selftest"],
                         env=dict(os.environ, PYTHONPATH=path),
                         capture_output=True, text=True, timeout=300)
    return res.returncode == 0, (res.stdout + res.stderr).strip()


def install(kver: str, *, run_selftest: bool = True,
            trusted: list[str] | None = None) -> None:
    """check -> DKMS -> trusted peers -> load -> persist -> self-test;
    raises InstallerError.  ``trusted`` None keeps what modprobe.d says."""
    require_root()
    result = check(kver)
    for note in result.notes:
        say(f"note: {note}")
    if result.problems:
        raise InstallerError("cannot install:\n  " + "\n  ".join(result.problems))
    say(f"building toa.ko for {kver} with DKMS")
    with checkout() as (inst, _):
        inst.dkms_install(DKMS_SET, [kver])
    path = module_file(kver)
    say(f"installed {path}")
    if trusted is not None:
        written = write_trusted(trusted)
        say(f"TOA believed from {','.join(trusted)} (/{OPTIONS_FILE})" if written else
            f"TOA believed from any peer (no /{OPTIONS_FILE})")
    if kver != running_kernel():
        persist()
        say(f"{kver} is not the running kernel ({running_kernel()}): toa loads "
            f"when it boots ({PERSIST_FILE})")
        return
    load(kver)
    say(f"loaded; persistent via /{persist()}")
    if run_selftest:
        ok, output = selftest()
        print(output, flush=True)
        if not ok:
            raise InstallerError("the self-test failed (output above): toa.ko is "
                                 "installed and loaded but does not show client addresses")
        say("self-test passed: accept() and getpeername() see TOA clients")


def uninstall(kver: str) -> list[str]:
    """Unload, stop loading at boot, remove from DKMS; returns what was done."""
    require_root()
    done = []
    if kver == running_kernel() and loaded():
        res = _run(["modprobe", "-r", MODULE])
        if res.returncode != 0:
            raise InstallerError(f"cannot unload toa: {res.stderr.strip()}")
        done.append("unloaded toa")
    if unpersist():
        done.append(f"removed /{PERSIST_FILE}")
    if (Path("/") / OPTIONS_FILE).exists():
        write_trusted([])
        done.append(f"removed /{OPTIONS_FILE}")
    with checkout() as (inst, _):
        if shutil.which("dkms") and inst.dkms_remove(DKMS_SET):
            done.append("removed lvs-toa from DKMS")
    return done


def status(kver: str, root: Path = Path("/")) -> dict[str, object]:
    """What is installed, loaded and counted, as plain data."""
    path = module_file(kver) if root == Path("/") else None
    info: dict[str, object] = {
        "kernel": kver,
        "running": kver == running_kernel(),
        "headers": (root / "lib/modules" / kver / "build" / "Makefile").exists(),
        "dkms": dkms_status(kver) if root == Path("/") else None,
        "module_file": path,
        "signer": module_signer(path) if path else None,
        "loaded": loaded(root),
        "enabled": (_read(root / "sys/module/toa/parameters/enabled") or "").strip() or None,
        "trusted": (_read(root / TRUSTED_PARAM) or "").strip() if loaded(root) else None,
        "trusted_at_boot": persisted_trusted(root),
        "version": (_read(root / "sys/module/toa/version") or "").strip() or None,
        "persistent": persisted(root),
        "signatures": signing_policy(root).reasons or ["not enforced"],
        "counters": read_stats(root),
    }
    return info


def format_status(info: dict[str, object]) -> str:
    counters = info["counters"]
    malformed = sum(v for k, v in (counters or {}).items() if k.startswith("opt_"))
    lines = [
        f"kernel       {info['kernel']}{' (running)' if info['running'] else ''}",
        f"headers      {'present' if info['headers'] else 'missing'}",
        f"dkms         {info['dkms'] or 'not registered'}",
        f"module file  {info['module_file'] or 'none'}"
        + (f" (signed by {info['signer']})" if info["signer"] else ""),
        f"loaded       {'yes' if info['loaded'] else 'no'}"
        + (f", version {info['version']}, enabled={info['enabled']}"
           if info["loaded"] else ""),
        f"at boot      {'yes, /' + PERSIST_FILE if info['persistent'] else 'no'}",
        f"trusted      {_format_trusted(info)}",
        f"signatures   {'; '.join(info['signatures'])}",  # type: ignore[arg-type]
    ]
    if counters is not None:
        lines.append("counters     " + ", ".join(
            f"{k}={counters.get(k, 0)}" for k in
            ("syn_recv_sock_toa", "data_seg_toa", "getname_toa_ok",
             "getname_toa_mismatch", "store_fail", "probe_missed"))
            + f", malformed={malformed}")
    return "\n".join(lines)


def _format_trusted(info: dict[str, object]) -> str:
    """Which peers' TOA is believed, now and from the next load on."""
    now, boot = info["trusted"], info["trusted_at_boot"]
    shown = (f"{now or 'any peer'} (loaded)" if now is not None else "")
    if boot is not None and boot != now:
        shown += ("; " if shown else "") + f"{boot} (/{OPTIONS_FILE}, from the next load)"
    elif boot is not None:
        shown += f", at boot via /{OPTIONS_FILE}"
    if not now and boot is None:
        shown = (shown + "; " if shown else "") + "restrict with install --trusted PREFIX,..."
    return shown


# ---------------------------------------------------------------- command line

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toa_installer", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("check", "install", "status", "selftest",
                                           "uninstall"))
    parser.add_argument("--kver", default=running_kernel(),
                        help="kernel release (default: the running kernel)")
    parser.add_argument("--no-selftest", action="store_true",
                        help="install without running the self-test")
    parser.add_argument("--trusted", metavar="PREFIX,...",
                        help="install: believe TOA only from these prefixes (the "
                             "balancers' local addresses), e.g. 10.0.3.0/24,2001:db8:3::/64; "
                             "'' for any peer; kept in /" + OPTIONS_FILE)
    args = parser.parse_args(argv)
    try:
        if args.trusted is not None and args.action != "install":
            raise InstallerError("--trusted goes with install")
        return _dispatch(args)
    except InstallerError as exc:
        print(f"toa: error: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.action == "check":
        result = check(args.kver)
        for note in result.notes:
            print(f"note: {note}")
        for problem in result.problems:
            print(f"problem: {problem}")
        if not result.problems:
            print(f"ready to install toa for {args.kver} (headers: {result.headers})")
        return 1 if result.problems else 0
    if args.action == "install":
        trusted = parse_trusted(args.trusted) if args.trusted is not None else None
        install(args.kver, run_selftest=not args.no_selftest, trusted=trusted)
        return 0
    if args.action == "status":
        info = status(args.kver)
        print(format_status(info))
        return 0 if info["loaded"] else 1
    if args.action == "selftest":
        ok, output = selftest()
        print(output)
        return 0 if ok else 1
    for line in uninstall(args.kver) or ["nothing to remove"]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
