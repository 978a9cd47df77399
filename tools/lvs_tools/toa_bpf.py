"""TOA without a kernel module: build, load, attach, configure, read and
remove the BPF programs of ``kernel/toa_bpf/toa.bpf.c`` (the installer
has no mode for them yet: docs/toa.md).

The object is compiled with clang against the UAPI headers (no kernel BTF
is needed at build or load time), loaded and pinned under bpffs with
bpftool, and attached to a cgroup v2 directory: the sock_ops program sees
the passive connections of sockets made by that cgroup's processes, the
getpeername programs answer their ``getpeername()`` and ``accept()``.
Pinned, they outlive the command that put them there.  Standard library
only, as the rest of the real-server tooling.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

from lvs_tools.toa_base import InstallerError

SOURCE = Path(__file__).resolve().parents[2] / "kernel" / "toa_bpf" / "toa.bpf.c"
PIN_DIR = Path("/sys/fs/bpf/lvs-toa")
PROGRAMS = {"sock_ops": "toa_sockops", "getpeername4": "toa_getpeername4",
            "getpeername6": "toa_getpeername6"}
#: The counters, in the order of ``enum toa_stat`` in toa.bpf.c; the names
#: are those of /proc/net/toa_stats (toa.ko) that mean the same.
STATS = ("syn_recv_sock_toa", "syn_recv_sock_no_toa", "data_seg_toa", "getname_toa_ok",
         "getname_toa_family", "opt_bad_len", "opt_truncated", "opt_after_eol",
         "opt_duplicate", "store_fail", "opt_untrusted")
TRUSTED_MAX = 64          # the LPM maps' size in toa.bpf.c


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        package = {"clang": "clang", "bpftool": "bpftool"}.get(name, name)
        raise InstallerError(f"{name} not found: install the Debian package {package}")
    return path


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise InstallerError(f"{Path(argv[0]).name} {argv[1]}: {last}")
    return done.stdout


def build(out: Path, source: Path = SOURCE) -> Path:
    """The BPF object of ``source`` at ``out`` (clang, UAPI headers)."""
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True,
                               text=True, check=False).stdout.strip() or "x86_64-linux-gnu"
    _run(_tool("clang"), "-O2", "-g", "-target", "bpf", f"-I/usr/include/{multiarch}",
         "-c", str(source), "-o", str(out))
    return out


def load(obj: Path, pin_dir: Path = PIN_DIR) -> None:
    """Load every program and map of ``obj``, pinned under ``pin_dir``."""
    if pin_dir.exists():
        raise InstallerError(f"{pin_dir} exists: unload first")
    _run(_tool("bpftool"), "prog", "loadall", str(obj), str(pin_dir),
         "pinmaps", str(pin_dir / "maps"))


def attach(cgroup: Path, pin_dir: Path = PIN_DIR) -> None:
    for attach_type, prog in PROGRAMS.items():
        _run(_tool("bpftool"), "cgroup", "attach", str(cgroup), attach_type,
             "pinned", str(pin_dir / prog))


def detach(cgroup: Path, pin_dir: Path = PIN_DIR) -> None:
    """Detach what is attached of ours (a missing one is no error)."""
    for attach_type, prog in PROGRAMS.items():
        subprocess.run([_tool("bpftool"), "cgroup", "detach", str(cgroup), attach_type,
                        "pinned", str(pin_dir / prog)], capture_output=True, check=False)


def unload(pin_dir: Path = PIN_DIR) -> None:
    """Remove the pins (the programs go when nothing holds them)."""
    if pin_dir.exists():
        shutil.rmtree(pin_dir)


def _hex(data: bytes) -> list[str]:
    return [f"{b:02x}" for b in data]


def set_trusted(prefixes: list[str], pin_dir: Path = PIN_DIR) -> None:
    """Believe TOA only from these prefixes (``[]``: from any peer).  The
    prefixes are written first, then their count, which switches the check
    on: a change never believes more than either value allows."""
    nets = [ipaddress.ip_network(p) for p in prefixes]
    if len(nets) > TRUSTED_MAX:
        raise InstallerError(f"--trusted: {len(nets)} prefixes, at most {TRUSTED_MAX}")
    bpftool = _tool("bpftool")
    maps = pin_dir / "maps"
    zero = ["00"] * 4
    _run(bpftool, "map", "update", "pinned", str(maps / "toa_conf"), "key", "hex", *zero,
         "value", "hex", *zero)
    for name in ("toa_trusted4", "toa_trusted6"):
        for entry in json.loads(_run(bpftool, "-j", "map", "dump", "pinned",
                                     str(maps / name))):
            _run(bpftool, "map", "delete", "pinned", str(maps / name), "key", "hex",
                 *[k.removeprefix("0x") for k in entry["key"]])
    for net in nets:
        key = net.prefixlen.to_bytes(4, "little") + net.network_address.packed
        name = "toa_trusted4" if net.version == 4 else "toa_trusted6"
        _run(bpftool, "map", "update", "pinned", str(maps / name), "key", "hex", *_hex(key),
             "value", "hex", "01")
    _run(bpftool, "map", "update", "pinned", str(maps / "toa_conf"), "key", "hex", *zero,
         "value", "hex", *_hex(len(nets).to_bytes(4, "little")))


def stats(pin_dir: Path = PIN_DIR) -> dict[str, int]:
    """The counters, summed over CPUs."""
    dump = json.loads(_run(_tool("bpftool"), "-j", "map", "dump", "pinned",
                           str(pin_dir / "maps" / "toa_stats")))
    out = dict.fromkeys(STATS, 0)
    for entry in dump:             # raw bytes, little-endian (bpftool -j)
        index = _number(entry["key"])
        if index < len(STATS):
            out[STATS[index]] = sum(_number(v["value"]) for v in entry["values"])
    return out


def _number(raw: list[str]) -> int:
    """A little-endian number from bpftool's list of hex bytes."""
    return int.from_bytes(bytes(int(b, 16) for b in raw), "little")
