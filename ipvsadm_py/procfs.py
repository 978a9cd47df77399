"""What IPVS shows in /proc rather than over netlink: the connection table,
the extended counters, and the ``net.ipv4.vs`` sysctls, each read by one
parser here.
"""

from __future__ import annotations

import dataclasses
import os
import socket

from ipvsadm_py.errors import NEED_ADMIN, InvalidInput, PermissionDenied, Unsupported, \
    describe_errno
from ipvsadm_py.model import AF_INET, AF_INET6

CONN_PROC = "/proc/net/ip_vs_conn"
EXT_STATS_PROC = "/proc/net/ip_vs_ext_stats"
TOA_STATS_PROC = "/proc/net/toa_stats"
TOA_MODULE_DIR = "/sys/module/toa"
SYSCTL_DIR = "/proc/sys/net/ipv4/vs"


# ---------------------------------------------------------------- counters
def parse_ext_stats(text: str) -> dict[str, int]:
    """``/proc/net/ip_vs_ext_stats``: counter name -> total over all CPUs.

    The file has a title line (CPU names, then ``TOTAL``), then one line per
    counter: its name, one column per CPU and the total last.  Lines whose
    last column is not a number (the title) are skipped."""
    out = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[-1].isdigit():
            out[words[0]] = int(words[-1])
    return out


def read_ext_stats(path: str | os.PathLike = EXT_STATS_PROC) -> dict[str, int]:
    """The extended counters of the caller's network namespace (OSError if
    the module has no such file)."""
    with open(path) as stream:
        return parse_ext_stats(stream.read())


def read_toa_stats(path: str | os.PathLike = TOA_STATS_PROC) -> dict[str, int]:
    """The counters of toa.ko on a real server: name -> total.  The file has
    the layout of ``ip_vs_ext_stats`` (a title line, one line per counter with
    the total last; CPU columns of global counters are ``-``).  OSError if
    toa.ko is not loaded."""
    with open(path) as stream:
        return parse_ext_stats(stream.read())


def toa_loaded(module_dir: str | os.PathLike = TOA_MODULE_DIR) -> bool:
    """Whether toa.ko is loaded (its directory under /sys/module exists)."""
    return os.path.isdir(module_dir)


def module_loaded(name: str, sys_module: str | os.PathLike = "/sys/module") -> bool:
    """Whether kernel module ``name`` is loaded (or built in with
    parameters).  Asking the generic netlink controller for a family that
    is not registered makes the kernel load its module: a monitor that must
    not load ip_vs asks this first."""
    return os.path.isdir(os.path.join(sys_module, name))


# ---------------------------------------------------------------- connections
@dataclasses.dataclass
class Connection:
    """One line of /proc/net/ip_vs_conn (addresses packed)."""

    protocol: str            # as the file writes it: TCP, UDP, SCTP
    client: bytes
    client_port: int
    virtual: bytes
    virtual_port: int
    dest: bytes
    dest_port: int
    state: str
    expires: int             # seconds
    pe_name: str | None = None
    pe_data: str | None = None


def _proc_addr(text: str) -> bytes:
    """An address as the file writes it: IPv6 text, or IPv4 as 8 hex digits."""
    try:
        return socket.inet_pton(AF_INET6, text)
    except OSError:
        pass
    try:
        return socket.inet_pton(AF_INET, text)
    except OSError:
        return (int(text, 16) & 0xFFFFFFFF).to_bytes(4, "big")


def parse_connections(text: str) -> list[Connection]:
    """Every connection of /proc/net/ip_vs_conn (the title line skipped, and
    lines too short to be one)."""
    out = []
    for line in text.splitlines()[1:]:
        w = line.split()
        if len(w) < 9:
            continue
        out.append(Connection(w[0], _proc_addr(w[1]), int(w[2], 16), _proc_addr(w[3]),
                              int(w[4], 16), _proc_addr(w[5]), int(w[6], 16), w[7],
                              int(w[8]), w[9] if len(w) > 9 else None,
                              w[10] if len(w) > 10 else None))
    return out


def read_connections(path: str | os.PathLike = CONN_PROC) -> list[Connection]:
    with open(path) as stream:
        return parse_connections(stream.read())


# ---------------------------------------------------------------- sysctls
def sysctl_exists(name: str) -> bool:
    return os.path.exists(f"{SYSCTL_DIR}/{name}")


def read_sysctl(name: str) -> int | None:
    """``/proc/sys/net/ipv4/vs/NAME`` as an integer (None if absent or not
    a single integer)."""
    try:
        with open(f"{SYSCTL_DIR}/{name}") as stream:
            words = stream.read().split()
        return int(words[0]) if len(words) == 1 else None
    except (OSError, ValueError):
        return None


def write_sysctl(name: str, value: int) -> None:
    try:
        with open(f"{SYSCTL_DIR}/{name}", "w") as stream:
            stream.write(f"{value}\n")
    except FileNotFoundError:
        raise Unsupported(f"sysctl net.ipv4.vs.{name} does not exist in this kernel") from None
    except PermissionError:
        raise PermissionDenied(NEED_ADMIN) from None
    except OSError as exc:
        raise InvalidInput(f"net.ipv4.vs.{name} = {value} refused: "
                           f"{describe_errno(exc.errno or 0)}") from None


def list_sysctls() -> dict[str, int]:
    """Every integer sysctl of IPVS in this namespace."""
    out: dict[str, int] = {}
    if not os.path.isdir(SYSCTL_DIR):
        return out
    for name in sorted(os.listdir(SYSCTL_DIR)):
        value = read_sysctl(name)
        if value is not None:
            out[name] = value
    return out
