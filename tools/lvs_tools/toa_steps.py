"""The TOA installer's steps: check, install, uninstall, status (and its
text), each built of the facts (:mod:`.toa_facts`), the state
(:mod:`.toa_state`) and the trusted peers (:mod:`.toa_trust`).
:mod:`.toa_installer` is their command line.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path

from lvs_tools.toa_bpf_steps import bpf_present
from lvs_tools.toa_base import (DKMS_SET, MODULE, NEEDS_CHECKOUT, OPTIONS_FILE,
                                PERSIST_FILE, InstallerError, checkout, dpkg_version,
                                kernel_line, read_file, run, run_selftest, say)
from lvs_tools.toa_facts import (DKMS_KEY, SUPPORTED_LINES, SigningPolicy, VersionOf, Which,
                                 check_headers, check_tools, signing_advice, signing_policy)
from lvs_tools.toa_state import (dkms_status, loaded, module_file, module_signer, persist,
                                 persisted, read_stats, running_kernel, unpersist)
from lvs_tools.toa_trust import TRUSTED_PARAM, persisted_trusted, write_trusted

# modprobe's words for a signature the kernel did not accept.
SIGNATURE_ERRORS = re.compile(r"Key was rejected by service|Required key not available|"
                              r"module verification failed|Operation not permitted")


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
    problems += bpf_present(root)
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
        res = run(["modprobe", "-r", MODULE])
        if res.returncode != 0:
            raise InstallerError(f"cannot unload the running toa: {res.stderr.strip()}")
    res = run(["modprobe", MODULE])
    if res.returncode == 0:
        return
    path = module_file(kver)
    if SIGNATURE_ERRORS.search(res.stderr) or signing_policy().enforced:
        raise InstallerError(f"modprobe toa failed: {res.stderr.strip()}\n"
                             + signing_advice(kver, module_signer(path) if path else None))
    raise InstallerError(f"modprobe toa failed: {res.stderr.strip()}")


def selftest() -> tuple[bool, str]:
    """Run tools/lvs_tools/toa_selftest.py in its own network namespace."""
    return run_selftest()


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
        res = run(["modprobe", "-r", MODULE])
        if res.returncode != 0:
            raise InstallerError(f"cannot unload toa: {res.stderr.strip()}")
        done.append("unloaded toa")
    if unpersist():
        done.append(f"removed /{PERSIST_FILE}")
    if (Path("/") / OPTIONS_FILE).exists():
        write_trusted([])
        done.append(f"removed /{OPTIONS_FILE}")
    try:
        with checkout() as (inst, _):
            if shutil.which("dkms") and inst.dkms_remove(DKMS_SET):
                done.append("removed lvs-toa from DKMS")
    except InstallerError as exc:
        if str(exc) != NEEDS_CHECKOUT:
            raise
        say("DKMS not looked at: removing lvs-toa from DKMS needs a checkout of "
            "lvs-toolkit (its tools/install.py)")
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
        "enabled": (read_file(root / "sys/module/toa/parameters/enabled") or "").strip() or None,
        "trusted": (read_file(root / TRUSTED_PARAM) or "").strip() if loaded(root) else None,
        "trusted_at_boot": persisted_trusted(root),
        "version": (read_file(root / "sys/module/toa/version") or "").strip() or None,
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
