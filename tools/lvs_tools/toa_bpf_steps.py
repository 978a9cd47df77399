"""The TOA installer's BPF mode: check, install, uninstall and status of the
BPF variant (kernel/toa_bpf, driven by :mod:`.toa_bpf`), and the choice
``--mode auto`` makes between it and toa.ko.

Install: the checks (bpftool, a cgroup v2 hierarchy, bpffs, the program
and map types and helpers the object uses, no toa.ko loaded or loading at
boot); the object is copied to ``/usr/local/lib/lvs-toa/toa.bpf.o`` (from
``--object``, the checkout's ``build/bpf/toa.bpf.o`` that ``./inv build``
makes, or compiled here with clang); the programs are loaded, pinned under
``/sys/fs/bpf/lvs-toa`` (they outlive the installer), given the trusted
prefixes and attached to the cgroup (default: the root of the cgroup v2
hierarchy, so every process); a systemd unit,
``lvs-toa-bpf.service``, runs the very same bpftool commands at boot
(bpffs is empty after a reboot); ``/etc/lvs-toa/bpf.json`` records what
was installed for ``status`` and ``uninstall``; the self-test proves it.
Uninstall detaches, unpins, and removes the unit, the object and the
record.  Module and BPF variant are never active together: each install
refuses while the other is there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from lvs_tools import toa_bpf
from lvs_tools.toa_base import PERSIST_FILE, InstallerError, read_file, run, run_selftest, say
from lvs_tools.toa_facts import check_headers, check_tools, signing_policy
from lvs_tools.toa_state import loaded, persisted

MODES = ("module", "ebpf", "auto")
OBJECT_FILE = "usr/local/lib/lvs-toa/toa.bpf.o"
UNIT_NAME = "lvs-toa-bpf.service"
UNIT_FILE = f"etc/systemd/system/{UNIT_NAME}"
STATE_FILE = "etc/lvs-toa/bpf.json"
BUILT_OBJECT = Path(__file__).resolve().parents[2] / "build" / "bpf" / "toa.bpf.o"
BPFFS = Path("/sys/fs/bpf")

#: What toa.bpf.c needs of the kernel, as ``bpftool feature probe`` names it
PROGRAM_TYPES = ("sock_ops", "cgroup_sock_addr")
MAP_TYPES = ("sk_storage", "percpu_array", "lpm_trie", "array")
HELPERS = {"sock_ops": ("bpf_loop", "bpf_sk_storage_get", "bpf_sock_ops_cb_flags_set",
                        "bpf_map_lookup_elem"),
           "cgroup_sock_addr": ("bpf_sk_storage_get", "bpf_map_lookup_elem")}


def cgroup2_root(mounts: str | None = None) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/proc/mounts), or None."""
    text = mounts if mounts is not None else (read_file(Path("/proc/mounts")) or "")
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def missing_features(probe: dict) -> list[str]:
    """What toa.bpf.c needs and ``bpftool -j feature probe kernel`` says the
    kernel lacks, each named for the operator."""
    missing = [f"BPF program type {t}" for t in PROGRAM_TYPES
               if not probe.get("program_types", {}).get(f"have_{t}_prog_type")]
    missing += [f"BPF map type {t}" for t in MAP_TYPES
                if not probe.get("map_types", {}).get(f"have_{t}_map_type")]
    helpers = probe.get("helpers", {})
    for prog, wanted in HELPERS.items():
        available = helpers.get(f"{prog}_available_helpers")
        if available is None:
            continue                   # the program type itself is reported missing
        missing += [f"helper {h}() for {prog} programs"
                    + (" (kernel 5.17 or later)" if h == "bpf_loop" else "")
                    for h in wanted if h not in available]
    return missing


def probe_features() -> dict:
    bpftool = toa_bpf._tool("bpftool")
    done = subprocess.run([bpftool, "-j", "feature", "probe", "kernel"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise InstallerError(f"bpftool feature probe kernel: {done.stderr.strip()}")
    return json.loads(done.stdout)


def object_source(given: Path | None, which=shutil.which) -> tuple[Path | None, str]:
    """(the object to install or None to compile, how it is obtained);
    InstallerError when there is no way to get one."""
    if given is not None:
        if not given.is_file():
            raise InstallerError(f"--object {given}: no such file")
        return given, f"the object {given}"
    if BUILT_OBJECT.is_file() and \
            BUILT_OBJECT.stat().st_mtime >= toa_bpf.SOURCE.stat().st_mtime:
        return BUILT_OBJECT, f"the checkout's {BUILT_OBJECT} (./inv build)"
    if not toa_bpf.SOURCE.is_file():
        raise InstallerError("no BPF object: pass --object FILE (./inv build makes "
                             "build/bpf/toa.bpf.o in a checkout of lvs-toolkit)")
    if which("clang") is None:
        raise InstallerError("no BPF object: pass --object FILE (./inv build makes "
                             "build/bpf/toa.bpf.o on a build machine), or install clang and "
                             "libbpf-dev to compile it here")
    return None, f"compiled here from {toa_bpf.SOURCE} with clang"


@dataclasses.dataclass
class BpfCheck:
    cgroup: Path | None
    problems: list[str]          # each stops the install
    notes: list[str]             # worth knowing, not fatal


def check(cgroup: Path | None = None, obj: Path | None = None,
          root: Path = Path("/")) -> BpfCheck:
    """Everything the BPF variant needs, without changing anything."""
    problems, notes = [], []
    try:
        toa_bpf._tool("bpftool")
    except InstallerError as exc:
        return BpfCheck(cgroup, [str(exc)], notes)
    hierarchy = cgroup2_root(read_file(root / "proc/mounts"))
    if hierarchy is None:
        problems.append("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none "
                        "/sys/fs/cgroup, or boot with systemd.unified_cgroup_hierarchy=1)")
    elif cgroup is None:
        cgroup = hierarchy
    elif not cgroup.resolve().is_relative_to(hierarchy) or not cgroup.is_dir():
        problems.append(f"--cgroup {cgroup}: not a cgroup of the v2 hierarchy at {hierarchy}")
    if not os.path.ismount(root / "sys/fs/bpf"):
        notes.append("bpffs is not mounted at /sys/fs/bpf: install mounts it")
    if os.geteuid() != 0:
        problems.append("the kernel's BPF features are probed by loading programs, which "
                        "needs root: run it with sudo")
    else:
        try:
            problems += [f"the kernel lacks {what}"
                         for what in missing_features(probe_features())]
        except InstallerError as exc:
            problems.append(str(exc))
    if not (root / "sys/kernel/btf/vmlinux").exists():
        notes.append("no kernel BTF (/sys/kernel/btf/vmlinux): not needed, the object is "
                     "built against the UAPI headers without CO-RE relocations")
    try:
        notes.append(f"BPF object: {object_source(obj)[1]}")
    except InstallerError as exc:
        problems.append(str(exc))
    problems += module_present(root)
    return BpfCheck(cgroup, problems, notes)


def module_present(root: Path = Path("/")) -> list[str]:
    """toa.ko loaded or loading at boot: the BPF variant must wait."""
    found = []
    if loaded(root):
        found.append("toa.ko is loaded")
    if persisted(root):
        found.append(f"toa.ko loads at boot (/{PERSIST_FILE})")
    if not found:
        return []
    return [" and ".join(found) + ": the module and the BPF variant are never active "
            "together; run uninstall first (it removes the module)"]


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; False where this user may not look (bpffs is
    root's: a user's ``check`` or ``status`` must not end in a traceback)."""
    try:
        return path.exists()
    except PermissionError:
        return False


def bpf_present(root: Path = Path("/")) -> list[str]:
    """The BPF variant installed or loaded: the module must wait."""
    found = [str(p) for p in (root / STATE_FILE, root / UNIT_FILE,
                              root / str(toa_bpf.PIN_DIR).lstrip("/")) if _exists(p)]
    if not found:
        return []
    return [f"the BPF variant is installed ({', '.join(found)}): the module and the BPF "
            "variant are never active together; run uninstall first"]


def choose(kver: str, root: Path = Path("/"), which=shutil.which,
           version_of=None) -> tuple[str, str]:
    """``--mode auto``: (mode, why).  The BPF variant where the kernel
    refuses unsigned modules or toa.ko cannot be built here; else the module."""
    policy = signing_policy(root)
    if policy.enforced:
        return "ebpf", "this kernel refuses unsigned modules (" + "; ".join(policy.reasons) + ")"
    try:
        kwargs = {"version_of": version_of} if version_of else {}
        check_headers(kver, root, **kwargs)
    except InstallerError:
        return "ebpf", f"the headers of {kver} are not installed"
    missing = check_tools(which)
    if missing:
        return "ebpf", "toa.ko cannot be built here: " + "; ".join(missing)
    return "module", "the kernel loads unsigned modules and toa.ko can be built here"


def _systemd_word(arg: str) -> str:
    """One argument of an Exec= line: systemd expands ``%`` specifiers and
    ``$`` variables and reads C escapes (a cgroup of a unit named
    ``app-web.service`` is the folder ``app\\x2dweb.service``), then quotes."""
    return shlex.quote(arg.replace("\\", "\\\\").replace("%", "%%").replace("$", "$$"))


def _systemd_unword(word: str) -> str:
    return re.sub(r"\$\$|%%|\\\\", lambda m: m.group(0)[0], word)


def render_unit(commands: list[list[str]], cleanup: list[list[str]]) -> str:
    """The boot unit: ``commands`` as its ExecStart lines (in order);
    ``cleanup`` (whose failures are ignored) before them, for what a failed
    start or an earlier run left, and after the unit stops or fails."""
    def lines(key: str, cmds: list[list[str]]) -> str:
        return "\n".join(f"{key}{' '.join(_systemd_word(a) for a in c)}" for c in cmds)
    return f"""# TOA for real servers, BPF variant (lvs-toolkit); written by
# lvs_tools.toa_installer install --mode ebpf, removed by its uninstall.
[Unit]
Description=TOA: client addresses behind a FULLNAT balancer (BPF variant)
DefaultDependencies=no
After=local-fs.target sys-fs-bpf.mount
Before=network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
{lines("ExecStartPre=-", cleanup)}
{lines("ExecStart=", commands)}
{lines("ExecStopPost=-", cleanup)}

[Install]
WantedBy=sysinit.target
"""


def unit_commands(text: str) -> dict[str, list[list[str]]]:
    """{"ExecStartPre": [...], "ExecStart": [...], "ExecStopPost": [...]}: the
    commands of a unit render_unit wrote, as systemd reads them."""
    out: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("Exec"):
            out.setdefault(key, []).append(
                [_systemd_unword(w) for w in shlex.split(value.removeprefix("-"))])
    return out


def cleanup_commands(cgroup: Path) -> list[list[str]]:
    """Detach what is attached of ours and remove the pins."""
    return toa_bpf.detach_commands(cgroup) + [[shutil.which("rm") or "/bin/rm", "-rf",
                                               str(toa_bpf.PIN_DIR)]]


def read_state(root: Path = Path("/")) -> dict | None:
    text = read_file(root / STATE_FILE)
    return json.loads(text) if text else None


def _systemctl(*args: str) -> str | None:
    """Run systemctl where there is one; its complaint, or None."""
    systemctl = shutil.which("systemctl")
    if systemctl is None:
        return "systemctl not found: the unit is written but not enabled"
    res = run([systemctl, *args])
    return None if res.returncode == 0 else (res.stderr.strip() or res.stdout.strip())


def mount_bpffs() -> None:
    """bpffs at /sys/fs/bpf where it is not mounted (a guest, a minimal host)."""
    if not os.path.ismount(BPFFS):
        res = run(["mount", "-t", "bpf", "bpf", str(BPFFS)])
        if res.returncode != 0:
            raise InstallerError(f"cannot mount bpffs at {BPFFS}: {res.stderr.strip()}")
        say(f"mounted bpffs at {BPFFS}")


def install(*, cgroup: Path | None = None, obj: Path | None = None,
            trusted: list[str] | None = None, run_selftest: bool = True) -> None:
    """check -> object -> load, trusted, attach -> boot unit -> record ->
    self-test; raises InstallerError.  ``trusted`` None keeps the recorded
    prefixes (none: any peer)."""
    result = check(cgroup, obj)
    for note in result.notes:
        say(f"note: {note}")
    if result.problems:
        raise InstallerError("cannot install the BPF variant:\n  "
                             + "\n  ".join(result.problems))
    assert result.cgroup is not None
    cgroup = result.cgroup.resolve()
    old = read_state()
    if trusted is None:
        trusted = old["trusted"] if old else []
    toa_bpf._nets(trusted)                       # a bad list changes nothing
    source, how = object_source(obj)
    mount_bpffs()
    if _exists(toa_bpf.PIN_DIR):                 # a re-install: take the old one away
        _teardown(Path(old["cgroup"]) if old else cgroup)
        say("removed the previous BPF programs")
    target = Path("/") / OBJECT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    commands = toa_bpf.bringup_commands(target, cgroup, trusted)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if source is None:
                say(f"compiling {toa_bpf.SOURCE.name} with clang")
                source = toa_bpf.build(Path(tmp) / "toa.bpf.o")
            shutil.copyfile(source, target)
        say(f"BPF object {target} ({how})")
        toa_bpf.run_all(commands)
    except (InstallerError, OSError) as exc:
        removed = uninstall()
        raise InstallerError(f"{exc}\nnothing of the BPF variant is left installed"
                             + (f" ({'; '.join(removed)})" if removed else "")) from exc
    say(f"loaded, pinned under {toa_bpf.PIN_DIR}, attached to {cgroup}")
    say(f"TOA believed from {','.join(trusted)}" if trusted else "TOA believed from any peer")
    unit = Path("/") / UNIT_FILE
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(render_unit(commands, cleanup_commands(cgroup)))
    problem = _systemctl("enable", UNIT_NAME)
    say(f"at boot: {unit}" + (f" (not enabled: {problem})" if problem else ", enabled"))
    state = Path("/") / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"cgroup": str(cgroup), "trusted": trusted,
                                 "object": str(target)}, indent=1) + "\n")
    if run_selftest:
        ok, output = selftest(cgroup, trusted)
        print(output, flush=True)
        if not ok:
            raise InstallerError("the self-test failed (output above): the BPF variant is "
                                 "installed and attached but does not show client addresses")
        say("self-test passed: accept() and getpeername() see TOA clients")


def _teardown(cgroup: Path | None) -> None:
    """Detach ours from ``cgroup`` (if known) and remove the pins."""
    if cgroup is not None:
        toa_bpf.detach(cgroup)
    toa_bpf.unload()


def uninstall() -> list[str]:
    """Detach, unpin, remove the unit, the object and the record; returns
    what was done."""
    done = []
    state = read_state()
    cgroup = Path(state["cgroup"]) if state else cgroup2_root()
    if _exists(toa_bpf.PIN_DIR):
        _teardown(cgroup)
        done.append(f"detached and unpinned the BPF programs ({toa_bpf.PIN_DIR})")
    unit = Path("/") / UNIT_FILE
    if unit.exists():
        _systemctl("disable", UNIT_NAME)
        unit.unlink()
        done.append(f"removed {unit}")
    for path in (Path("/") / OBJECT_FILE, Path("/") / STATE_FILE):
        if path.exists():
            path.unlink()
            done.append(f"removed {path}")
    return done


def selftest(cgroup: Path, trusted: list[str]) -> tuple[bool, str]:
    """tools/lvs_tools/toa_selftest.py --bpf, run inside ``cgroup``."""
    return run_selftest("--bpf", ",".join(trusted), cgroup=cgroup)


def status() -> dict[str, object]:
    """What of the BPF variant is installed, attached and counted."""
    state = read_state()
    pinned = _exists(toa_bpf.PIN_DIR)
    cgroup = Path(state["cgroup"]) if state else None
    return {
        "installed": state is not None,
        "cgroup": str(cgroup) if cgroup else None,
        "trusted": state["trusted"] if state else None,
        "object": state["object"] if state else None,
        "pinned": pinned,
        "attached": toa_bpf.attached(cgroup) if pinned and cgroup else [],
        "unit": (Path("/") / UNIT_FILE).exists(),
        "counters": toa_bpf.stats() if pinned else None,
    }


def format_status(info: dict) -> str:
    attached: list[str] = info["attached"]
    trusted: list[str] | None = info["trusted"]
    counters: dict[str, int] | None = info["counters"]
    lines = [
        "variant      BPF (kernel/toa_bpf)",
        f"installed    {'yes, object ' + info['object'] if info['installed'] else 'no'}",
        f"pinned       {'yes, ' + str(toa_bpf.PIN_DIR) if info['pinned'] else 'no'}",
        "attached     " + (f"{', '.join(attached)} on {info['cgroup']}" if attached else "no"),
        f"at boot      {'yes, /' + UNIT_FILE if info['unit'] else 'no'}",
        "trusted      " + ("-" if trusted is None else ",".join(trusted) or "any peer"),
    ]
    if counters is not None:
        lines.append("counters     " + ", ".join(f"{k}={v}" for k, v in counters.items()))
    return "\n".join(lines)
