"""BIRD 2 for one balancer of the cluster: its configuration text, checked
by BIRD itself before it replaces the running one.

What the balancer announces is decided by BIRD's own protocols:

* ``direct`` on the dummy interface (``lvs-vips``): every VIP address on it
  is a host route; ``lvs-cluster`` puts a VIP there while the VIP can be
  served and takes it away otherwise (announce.py).
* ``static``: the local-address prefixes as blackhole routes, announced
  always (the real servers' replies find the balancer that owns the session;
  the balancer itself installs nothing: it has no ``kernel`` protocol).
* ``bgp`` per peer: exports what the filter ``lvs_export`` lets through (the
  configured VIPs as /32 or /128, the local prefixes), imports nothing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

from netaddr import IPNetwork

from ipvsadm_py.config.desired import Balancer, Cluster

BIRD, BIRDC = "bird", "birdc"
CONF_PATH = Path("/etc/bird/lvs-cluster.conf")
SOCKET_PATH = Path("/run/bird/lvs-cluster.ctl")


class BirdError(Exception):
    """BIRD refused a configuration or could not be reached; its words."""


def _host(addr: object) -> str:
    return f"{addr}/{32 if ':' not in str(addr) else 128}"


def _proto_name(addr: object) -> str:
    return "peer_" + re.sub(r"[^0-9a-fA-F]", "_", str(addr))


def bfd_protocol(timers: tuple[int, int] | None) -> list[str]:
    """BIRD's ``protocol bfd``: with ``timers`` (interval in ms, multiplier)
    on every interface, else with BIRD's own."""
    out = ["protocol bfd {"]
    if timers is not None:
        interval, multiplier = timers
        out += ['    interface "*" {', f"        min rx interval {interval} ms;",
                f"        min tx interval {interval} ms;",
                f"        multiplier {multiplier};", "    };"]
    return out + ["}"]


def render(cluster: Cluster, bal: Balancer, source: str = "", log: str | None = None) -> str:
    """bird.conf of balancer ``bal``."""
    families = {4} | {IPNetwork(p).version for p in bal.local_prefixes} \
        | {v.version for v in bal.vips}
    allowed = {f: [_host(v) for v in bal.vips if v.version == f]
               + [p for p in bal.local_prefixes if IPNetwork(p).version == f]
               for f in sorted(families)}
    keep = max(1, cluster.hold_time // 3)
    out = [f"# Written by lvs-cluster{' from ' + source if source else ''} for balancer "
           f"{bal.name}: edit the YAML, not this file.",
           f"router id {bal.router_id};"]
    if log:
        out.append(f'log "{log}" all;')
    out += ["", "protocol device {", "    scan time 10;", "}", "",
            "filter lvs_export {"]
    for f, nets in allowed.items():
        if nets:
            out.append(f"    if net ~ [ {', '.join(nets)} ] then accept;")
    out += ["    reject;", "}", "",
            "# A VIP on this interface is announced; lvs-cluster adds and removes it.",
            "protocol direct lvs_vips {"]
    out += [f"    ipv{f};" for f in sorted(families)]
    out += [f'    interface "{cluster.interface}";', "}"]
    for f in sorted(families):
        prefixes = [p for p in bal.local_prefixes if IPNetwork(p).version == f]
        if prefixes:
            out += ["", f"# The local addresses: announced always (replies of the real servers).",
                    f"protocol static lvs_local{f} {{", f"    ipv{f};"]
            out += [f"    route {p} blackhole;" for p in prefixes]
            out.append("}")
    if cluster.bfd:
        out += [""] + bfd_protocol(cluster.bfd_timers)
    for peer in bal.peers:
        f = peer.address.version
        out += ["", f"protocol bgp {_proto_name(peer.address)} {{",
                f"    local as {bal.asn};",
                f"    neighbor {peer.address} as {peer.asn};",
                f"    hold time {cluster.hold_time};",
                f"    keepalive time {keep};",
                "    connect retry time 2;",
                "    error wait time 1, 10;"]
        if cluster.bfd:
            out.append("    bfd on;")
        out += [f"    ipv{f} {{", "        import none;", "        export filter lvs_export;",
                "    };", "}"]
    return "\n".join(out) + "\n"


@dataclasses.dataclass
class Bird:
    """A BIRD daemon: its configuration file and control socket."""

    conf: Path = CONF_PATH
    socket: Path = SOCKET_PATH

    @staticmethod
    def available() -> bool:
        return shutil.which(BIRD) is not None and shutil.which(BIRDC) is not None

    @staticmethod
    def check_file(path: Path) -> None:
        """BIRD's own parse of a file (``bird -p``): BirdError with its message."""
        res = subprocess.run([BIRD, "-p", "-c", str(path)], capture_output=True, text=True)
        if res.returncode != 0:
            raise BirdError((res.stderr or res.stdout).strip() or f"bird -p: {res.returncode}")

    def running(self) -> bool:
        return self.socket.is_socket() and self.ctl("show status", check=False)[0] == 0

    def ctl(self, command: str, check: bool = True) -> tuple[int, str]:
        res = subprocess.run([BIRDC, "-s", str(self.socket), command],
                             capture_output=True, text=True)
        text = (res.stdout + res.stderr).strip()
        if check and res.returncode != 0:
            raise BirdError(text or f"birdc {command}: {res.returncode}")
        return res.returncode, text

    def install(self, text: str) -> bool:
        """Check ``text`` with BIRD, then put it in place and, if BIRD runs,
        have it reconfigure.  A refused text changes nothing (BirdError).
        Returns whether the file changed."""
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        new = self.conf.with_name(f".{self.conf.name}.new")
        new.write_text(text)
        try:
            self.check_file(new)
        except BirdError:
            new.unlink()
            raise
        changed = not self.conf.exists() or self.conf.read_text() != text
        os.replace(new, self.conf)
        if self.running():
            _, said = self.ctl(f'configure "{self.conf}"')
            if "Reconfigur" not in said or "error" in said.lower():
                raise BirdError(said)
        return changed

    def start(self, pidfile: Path | None = None) -> None:
        """Start BIRD on the installed file (it daemonizes)."""
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        cmd = [BIRD, "-c", str(self.conf), "-s", str(self.socket)]
        if pidfile is not None:
            cmd += ["-P", str(pidfile)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise BirdError((res.stderr or res.stdout).strip())

    def protocols(self) -> dict[str, str]:
        """``show protocols``: name -> state and info (``Established``, ...)."""
        _, text = self.ctl("show protocols")
        out = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0] not in ("BIRD", "Name"):
                out[parts[0]] = " ".join(parts[3:4] + parts[5:])
        return out
