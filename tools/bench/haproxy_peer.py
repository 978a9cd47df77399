"""HAProxy in TCP mode, the user-space peer of ``./inv bench`` (docs/benchmarks.md).

Its configuration is tools/bench/haproxy.cfg, a ``string.Template`` whose
comments say why each setting is there; this module fills it in, checks it
with ``haproxy -c``, and runs HAProxy in the foreground in a namespace::

    with Haproxy("b-lb", f"{VIP}:85", [(netlab.rs_addr(1), 8085)], cpu=1) as hx:
        ... traffic to VIP:85, which rs1's `gen echo --proxy 8085` answers ...
        hx.rss_bytes(), hx.cpu_seconds()

HAProxy is started with ``ip netns exec``, which execs it: the process
started is HAProxy itself, and with ``-db`` (foreground, no master
process) and one thread it is the only one.
"""

from __future__ import annotations

import os
import resource
import shutil
import string
import subprocess
import tempfile
from pathlib import Path

from tools import netlab

TEMPLATE = Path(__file__).with_name("haproxy.cfg")
PROGRAM = "haproxy"
#: Where Debian installs it, for a PATH without the sbin directories.
SBIN = "/usr/sbin:/sbin"
#: Connections HAProxy may hold (global and frontend maxconn), where the
#: file-descriptor limits allow it: two sockets each.
MAXCONN = 200_000
#: File descriptors HAProxy needs besides two per connection (listeners,
#: poller, standard streams; 14 with one listener and one server).
FD_SPARE = 100
CAP_SYS_RESOURCE = 24


def binary() -> str | None:
    """The path of the haproxy program, or None if it is not installed."""
    return shutil.which(PROGRAM) or shutil.which(PROGRAM, path=SBIN)


def available() -> str | None:
    """None if HAProxy can run here, else why not."""
    if binary() is None:
        return "haproxy is not installed (Debian package haproxy)"
    return None


def max_fds() -> int:
    """The most file descriptors a process started from here can have:
    fs.nr_open if it may raise its hard limit (CAP_SYS_RESOURCE, as root in
    the guest has), else the hard limit it inherits."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    status = Path("/proc/self/status").read_text()
    caps = int(status.split("CapEff:", 1)[1].split()[0], 16)
    if caps >> CAP_SYS_RESOURCE & 1:
        nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
        return nr_open if hard == resource.RLIM_INFINITY else max(hard, nr_open)
    return hard


def maxconn() -> int:
    """MAXCONN, or what the file-descriptor limit allows (HAProxy refuses
    to start with a maxconn it has no descriptors for)."""
    fds = max_fds()
    if fds == resource.RLIM_INFINITY:
        return MAXCONN
    return max(1, min(MAXCONN, (fds - FD_SPARE) // 2))


class Haproxy:
    """One HAProxy in namespace ``netns``: a TCP frontend on ``listen``
    (``address:port``) balancing round-robin over ``servers`` ((address,
    port) pairs), each sent a PROXY protocol v2 header unless
    ``proxy_protocol`` is False; its one thread pinned to ``cpu`` (None:
    not pinned)."""

    def __init__(self, netns: str, listen: str, servers: list[tuple[str, int]],
                 cpu: int | None, proxy_protocol: bool = True) -> None:
        if not servers:
            raise ValueError("HAProxy needs at least one server")
        self.netns = netns
        self.listen = listen
        self.port = int(listen.rsplit(":", 1)[1])
        self.servers = list(servers)
        self.cpu = cpu
        self.proxy_protocol = proxy_protocol
        self.proc: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.config_path: Path | None = None
        self.log_path: Path | None = None

    # ------------------------------------------------------------ configuration
    def render(self) -> str:
        """The configuration file's text."""
        cpu_map = (f"cpu-map 1/all {self.cpu}" if self.cpu is not None
                   else "# no cpu-map: no CPU was given")
        option = " send-proxy-v2" if self.proxy_protocol else ""
        servers = "\n".join(f"\tserver rs{index} {netlab.hostport(addr, port)}{option}"
                            for index, (addr, port) in enumerate(self.servers, 1))
        return string.Template(TEMPLATE.read_text()).substitute(
            cpu_map=cpu_map, listen=self.listen, servers=servers, maxconn=maxconn())

    def check(self, path: Path) -> None:
        """``haproxy -c`` of the file at ``path``; raises with HAProxy's
        own words if it rejects it."""
        program = binary()
        if program is None:
            raise RuntimeError(available())
        res = netlab.run([program, "-c", "-f", str(path)], check=False)
        if res.returncode != 0:
            raise RuntimeError(f"haproxy rejects {path} ({res.returncode}):\n"
                               f"{res.stdout}{res.stderr}")

    # ------------------------------------------------------------ life cycle
    def __enter__(self) -> "Haproxy":
        self._workdir = tempfile.TemporaryDirectory(prefix="lvs-bench-haproxy-")
        workdir = Path(self._workdir.name)
        self.config_path = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        try:
            self.config_path.write_text(self.render())
            self.check(self.config_path)
            with self.log_path.open("wb") as log:
                self.proc = subprocess.Popen(
                    ["ip", "netns", "exec", self.netns, str(binary()), "-db",
                     "-f", str(self.config_path)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            netlab.wait_for(self._listening, timeout=30)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            netlab.stop_process(self.proc)
            self.proc = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def _listening(self) -> bool:
        """Whether HAProxy's own socket listens on the port; raises if it
        has exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"haproxy exited ({self.proc.returncode}):\n{self.log()}")
        res = netlab.run(["ip", "netns", "exec", self.netns, "ss", "-Hltnp",
                          f"sport = :{self.port}"], check=False)
        return f"pid={self.proc.pid}," in res.stdout

    def log(self) -> str:
        """What HAProxy printed (warnings, alerts), the last 3000 characters."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-3000:]

    # ------------------------------------------------------------ readings
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("haproxy is not running")
        return self.proc.pid

    def rss_bytes(self) -> int:
        """The resident memory of the process (VmRSS)."""
        for line in Path(f"/proc/{self.pid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                value, unit = line.split()[1:3]
                assert unit == "kB", line
                return int(value) * 1024
        raise RuntimeError(f"no VmRSS in /proc/{self.pid()}/status")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all its threads)."""
        fields = Path(f"/proc/{self.pid()}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
