"""TOA without a kernel module: build, load, attach, configure, read and
remove the BPF programs of ``kernel/toa_bpf/toa.bpf.c``; the installer's
``--mode ebpf`` (:mod:`.toa_bpf_steps`) is built of these.

The object is compiled with clang against the UAPI headers (no kernel BTF
is needed at build or load time), loaded and pinned under bpffs with
bpftool, and attached to a cgroup v2 directory: the sock_ops program sees
the passive connections of sockets made by that cgroup's processes, the
getpeername programs answer their ``getpeername()`` and ``accept()``.
Pinned, they outlive the command that put them there.  Standard library
only, as the rest of the real-server tooling.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import platform
import re
import shutil
import socket
import struct
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


def has_bpf_loop(kallsyms: Path = Path("/proc/kallsyms")) -> bool:
    """Whether the running kernel has bpf_loop() (5.17 or later), which the
    programs' option walk needs."""
    return bool(re.search(r" [tT] bpf_loop$", kallsyms.read_text(), re.M))


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


def load_commands(obj: Path, pin_dir: Path = PIN_DIR) -> list[list[str]]:
    """Load every program and map of ``obj``, pinned under ``pin_dir``."""
    return [[_tool("bpftool"), "prog", "loadall", str(obj), str(pin_dir),
             "pinmaps", str(pin_dir / "maps")]]


def attach_commands(cgroup: Path, pin_dir: Path = PIN_DIR) -> list[list[str]]:
    """Attach in ``multi`` mode: beside other programs of the same types on
    that cgroup and its descendants, never replacing them (a program attached
    without it would also bar every descendant cgroup from attaching its own)."""
    return [[_tool("bpftool"), "cgroup", "attach", str(cgroup), attach_type,
             "pinned", str(pin_dir / prog), "multi"] for attach_type, prog in PROGRAMS.items()]


def detach_commands(cgroup: Path, pin_dir: Path = PIN_DIR) -> list[list[str]]:
    return [[_tool("bpftool"), "cgroup", "detach", str(cgroup), attach_type,
             "pinned", str(pin_dir / prog)] for attach_type, prog in PROGRAMS.items()]


def bringup_commands(obj: Path, cgroup: Path, trusted: list[str],
                     pin_dir: Path = PIN_DIR) -> list[list[str]]:
    """Everything from nothing to TOA answering, in order: load and pin,
    the trusted prefixes, attach.  What the installer runs and what the
    boot unit runs are these same commands."""
    return load_commands(obj, pin_dir) + trusted_commands(trusted, pin_dir) + \
        attach_commands(cgroup, pin_dir)


def run_all(commands: list[list[str]]) -> None:
    for argv in commands:
        _run(*argv)


def load(obj: Path, pin_dir: Path = PIN_DIR) -> None:
    """Load every program and map of ``obj``, pinned under ``pin_dir``."""
    if pin_dir.exists():
        raise InstallerError(f"{pin_dir} exists: unload first")
    run_all(load_commands(obj, pin_dir))


def attach(cgroup: Path, pin_dir: Path = PIN_DIR) -> None:
    run_all(attach_commands(cgroup, pin_dir))


def detach(cgroup: Path, pin_dir: Path = PIN_DIR) -> None:
    """Detach what is attached of ours (a missing one is no error)."""
    for argv in detach_commands(cgroup, pin_dir):
        subprocess.run(argv, capture_output=True, check=False)


def unload(pin_dir: Path = PIN_DIR) -> None:
    """Remove the pins (the programs go when nothing holds them)."""
    if pin_dir.exists():
        shutil.rmtree(pin_dir)


def attached(cgroup: Path, pin_dir: Path = PIN_DIR) -> list[str]:
    """The attach types under which our pinned programs are attached to
    ``cgroup`` (compared by program id)."""
    bpftool = _tool("bpftool")
    ours = {}
    for attach_type, prog in PROGRAMS.items():
        done = subprocess.run([bpftool, "-j", "prog", "show", "pinned", str(pin_dir / prog)],
                              capture_output=True, text=True, check=False)
        if done.returncode == 0:
            ours[json.loads(done.stdout)["id"]] = attach_type
    done = subprocess.run([bpftool, "-j", "cgroup", "show", str(cgroup)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return []
    return sorted(ours[p["id"]] for p in json.loads(done.stdout) if p.get("id") in ours)


def run_time_ns(pin_dir: Path = PIN_DIR) -> int:
    """The pinned programs' run time so far, summed (counted only while
    kernel.bpf_stats_enabled is 1)."""
    total = 0
    for prog in PROGRAMS.values():
        shown = json.loads(_run(_tool("bpftool"), "-j", "prog", "show", "pinned",
                                str(pin_dir / prog)))
        total += shown.get("run_time_ns", 0)
    return total


def _hex(data: bytes) -> list[str]:
    return [f"{b:02x}" for b in data]


def _nets(prefixes: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = [ipaddress.ip_network(p) for p in prefixes]
    if len(nets) > TRUSTED_MAX:
        raise InstallerError(f"--trusted: {len(nets)} prefixes, at most {TRUSTED_MAX}")
    return nets


def trusted_commands(prefixes: list[str], pin_dir: Path = PIN_DIR) -> list[list[str]]:
    """Believe TOA only from these prefixes (``[]``: from any peer), into
    empty maps (a load, a boot): the check is off while the prefixes are
    written, before any program is attached; their count, written last,
    switches it on."""
    nets = _nets(prefixes)
    bpftool = _tool("bpftool")
    maps = pin_dir / "maps"
    zero = ["00"] * 4
    conf = [bpftool, "map", "update", "pinned", str(maps / "toa_conf"), "key", "hex", *zero,
            "value", "hex"]
    commands = [conf + zero]
    for net in nets:
        key = net.prefixlen.to_bytes(4, "little") + net.network_address.packed
        name = "toa_trusted4" if net.version == 4 else "toa_trusted6"
        commands.append([bpftool, "map", "update", "pinned", str(maps / name), "key", "hex",
                         *_hex(key), "value", "hex", "01"])
    return commands + [conf + _hex(len(nets).to_bytes(4, "little"))]


def set_trusted(prefixes: list[str], pin_dir: Path = PIN_DIR) -> None:
    """Replace the trusted prefixes of attached programs: the check is off
    (TOA from any peer believed) from the first command to the last, a
    moment; use it on a server the balancers alone can reach, or detach
    first."""
    commands = trusted_commands(prefixes, pin_dir)
    bpftool = _tool("bpftool")
    maps = pin_dir / "maps"
    _run(*commands[0])            # the check off, then the old prefixes out
    for name in ("toa_trusted4", "toa_trusted6"):
        for entry in json.loads(_run(bpftool, "-j", "map", "dump", "pinned",
                                     str(maps / name))):
            _run(bpftool, "map", "delete", "pinned", str(maps / name), "key", "hex",
                 *[k.removeprefix("0x") for k in entry["key"]])
    run_all(commands[1:])


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


#: bpf(2)'s number and the commands used here (linux/bpf.h)
_NR_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_MAP_LOOKUP_ELEM, _BPF_OBJ_GET, _BPF_MAP_GET_FD_BY_ID = 1, 7, 14
#: struct toa_client of toa.bpf.c: addr[4] (network order), port (network
#: order), v6, pad
_CLIENT = struct.Struct("=16sHBx")


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise InstallerError(f"bpf(2): no syscall number known for {platform.machine()}")
    ret = libc.syscall(nr, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def clients_map_id(pin_dir: Path = PIN_DIR) -> int:
    """The id of the pinned map of recorded clients (for client_of() where
    bpffs is not visible, e.g. under ``ip netns exec``, which mounts a /sys
    of its own)."""
    return json.loads(_run(_tool("bpftool"), "-j", "map", "show", "pinned",
                           str(pin_dir / "maps" / "toa_clients")))["id"]


def client_of(sock: socket.socket | int, pin_dir: Path = PIN_DIR,
              map_id: int | None = None) -> tuple[str, int] | None:
    """The client the BPF variant recorded for a connected socket (an object
    or its file descriptor), whatever ``getpeername()`` shows: the way to an
    IPv6 client's address on an IPv4 socket, which ``getpeername()`` cannot
    return.  None when no TOA was recorded.  The map is found under
    ``pin_dir``, or by ``map_id`` (clients_map_id()).  Needs CAP_BPF and
    CAP_SYS_ADMIN (root), as bpf(2) does where unprivileged BPF is off
    (Debian's default)."""
    fd = sock if isinstance(sock, int) else sock.fileno()
    attr = (ctypes.c_uint8 * 128)()
    if map_id is None:
        path = ctypes.create_string_buffer(str(pin_dir / "maps" / "toa_clients").encode())
        struct.pack_into("=QII", attr, 0, ctypes.addressof(path), 0, 0)
        map_fd = _bpf(_BPF_OBJ_GET, attr)
    else:
        struct.pack_into("=III", attr, 0, map_id, 0, 0)
        map_fd = _bpf(_BPF_MAP_GET_FD_BY_ID, attr)
    try:
        key = ctypes.c_int(fd)
        value = ctypes.create_string_buffer(_CLIENT.size)
        attr = (ctypes.c_uint8 * 128)()
        struct.pack_into("=IIQQQ", attr, 0, map_fd, 0, ctypes.addressof(key),
                         ctypes.addressof(value), 0)
        try:
            _bpf(_BPF_MAP_LOOKUP_ELEM, attr)
        except OSError as exc:
            if exc.errno == 2:               # ENOENT: nothing recorded
                return None
            raise
    finally:
        os.close(map_fd)
    addr, port, v6 = _CLIENT.unpack(value.raw)
    family = socket.AF_INET6 if v6 else socket.AF_INET
    return socket.inet_ntop(family, addr if v6 else addr[:4]), socket.ntohs(port)
