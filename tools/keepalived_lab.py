"""keepalived in the lab's namespaces, and what its tests look at.

``Keepalived`` runs one daemon (ours from the build tree, or Debian's) in a
network namespace, in the foreground of its own session, logging to a file:
start, reload (SIGHUP with a new file), stop, kill (SIGKILL of every process
it has), and polling of its log.  ``ipvs_table()`` reads the namespace's IPVS
table through ``ipvsadm-py -Ln --json`` (services, real servers, local
addresses, SYNPROXY).  ``RealServer`` answers HTTP (and HTTPS) with its
name for the L7 health checks, and the whoami protocol on the same port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from tools import netlab
from tools.keepalived_build import BINARY
from tools.kbuild import ROOT

IPVSADM_PY = Path(sys.executable).with_name("ipvsadm-py")
DEBIAN_BINARY = Path("/usr/sbin/keepalived")


def debian_binary() -> Path:
    """Debian's own keepalived: /usr/sbin/keepalived while Debian's package
    is the installed one, else the copy ``./inv build --set keepalived``
    unpacked from Debian's package (build/keepalived/debian-bin)."""
    res = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "keepalived"],
                         text=True, capture_output=True)
    if res.returncode == 0 and "+lvs" not in res.stdout and DEBIAN_BINARY.exists():
        return DEBIAN_BINARY
    copy = ROOT / "build" / "keepalived" / "debian-bin" / "usr" / "sbin" / "keepalived"
    if copy.exists():
        return copy
    raise FileNotFoundError("no Debian keepalived: /usr/sbin/keepalived is ours and "
                            f"{copy} is missing (./inv build --set keepalived)")


class Keepalived:
    """One keepalived in namespace ``ns``, its files in ``workdir``."""

    def __init__(self, ns: str, workdir: Path, name: str = "ka",
                 binary: Path = BINARY, args: tuple[str, ...] = ()) -> None:
        self.ns = ns
        self.binary = binary
        self.args = args
        self.conf = workdir / f"{name}.conf"
        self.logfile = workdir / f"{name}.log"
        self.pids = [workdir / f"{name}.{kind}.pid" for kind in ("main", "check", "vrrp", "bfd")]
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        main, check, vrrp, bfd = self.pids
        return ["ip", "netns", "exec", self.ns, str(self.binary), "--dont-fork",
                "--log-console", "--log-detail", "--no-syslog", "--use-file", str(self.conf),
                "--pid", str(main), "--checkers_pid", str(check), "--vrrp_pid", str(vrrp),
                "--bfd_pid", str(bfd), *self.args]

    def start(self, config: str) -> "Keepalived":
        self.conf.write_text(config)
        with self.logfile.open("wb") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def config_test(self, config: str) -> subprocess.CompletedProcess[str]:
        """``keepalived --config-test`` of ``config``: the errors it prints."""
        self.conf.write_text(config)
        return subprocess.run([str(self.binary), "--config-test", "--use-file", str(self.conf)],
                              text=True, capture_output=True, timeout=120)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def wait_log(self, pattern: str, timeout: float = 60, after: int = 0) -> re.Match:
        """Poll the log (from offset ``after``) until ``pattern`` shows."""
        def seen() -> re.Match | None:
            self.check_alive()
            return re.search(pattern, self.log()[after:])
        try:
            return netlab.wait_for(seen, timeout=timeout, interval=0.3)
        except TimeoutError:
            raise TimeoutError(f"{pattern!r} not in the log within {timeout} s:\n"
                               f"{self.log()[-3000:]}") from None

    def proc_ip_vs(self) -> str:
        """/proc/net/ip_vs of keepalived's namespace (through its process)."""
        assert self.proc is not None
        return Path(f"/proc/{self.proc.pid}/net/ip_vs").read_text()

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"keepalived exited ({self.proc.returncode}):\n{self.log()[-3000:]}")

    def reload(self, config: str) -> int:
        """SIGHUP with ``config`` in place; returns the log offset before it."""
        assert self.proc is not None
        offset = len(self.log())
        self.conf.write_text(config)
        os.kill(self.proc.pid, signal.SIGHUP)
        return offset

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM: keepalived removes what it configured, then exits."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL to every process of this keepalived (a crash: what it
        configured stays in the kernel)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def __enter__(self) -> "Keepalived":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proc_key(addr: str, port: int) -> str:
    """An address and port as /proc/net/ip_vs writes them (hex)."""
    hexed = netlab.hex_addr(addr)
    return f"[{hexed}]:{port:04X}" if ":" in addr else f"{hexed}:{port:04X}"


def proc_weights(text: str, proto: str, vip: str, port: int) -> dict[str, int]:
    """Real servers of one service in a /proc/net/ip_vs text: proc_key -> weight.

    Cheap to poll (no process to start, unlike ipvsadm-py), so timings
    taken with it are not the listing's."""
    want = f"{proto.upper()}  {proc_key(vip, port)}"
    found: dict[str, int] = {}
    inside = False
    for line in text.splitlines():
        if line.startswith(("TCP ", "UDP ", "SCTP ", "FWM ")):
            inside = line.startswith(want + " ")
        elif inside and line.startswith("  -> ") and not line.startswith("  -> RemoteAddress"):
            fields = line.split()
            found[fields[1]] = int(fields[3])
    return found


def ipvs_table(ns: str) -> dict[str, Any]:
    """The IPVS table of namespace ``ns`` (``ipvsadm-py -Ln --json``)."""
    res = netlab.run(["ip", "netns", "exec", ns, str(IPVSADM_PY), "-Ln", "--json"])
    return json.loads(res.stdout)


def service_key(svc: dict[str, Any]) -> str:
    """``tcp 10.0.0.100:80``, ``udp [2001:db8::1]:53`` or ``fwmark 7``."""
    if "fwmark" in svc:
        return f"fwmark {svc['fwmark']}"
    return f"{svc['protocol']} {netlab.hostport(svc['address'], svc['port'])}"


def services(ns: str) -> dict[str, dict[str, Any]]:
    """Services of ``ns`` by ``service_key``."""
    return {service_key(s): s for s in ipvs_table(ns)["services"]}


def dests(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Real servers of a listed service by ``addr:port``."""
    return {netlab.hostport(d["address"], d["port"]): d for d in svc["dests"]}


def laddrs(svc: dict[str, Any]) -> list[str]:
    return sorted(la["address"] for la in svc.get("laddrs", []))


def wait_table(ns: str, predicate: Callable[[dict[str, dict[str, Any]]], bool],
               timeout: float = 90) -> dict[str, dict[str, Any]]:
    """Poll the table until ``predicate(services)`` holds; returns it."""
    last: dict[str, dict[str, Any]] = {}

    def check() -> bool:
        nonlocal last
        last = services(ns)
        return predicate(last)
    try:
        netlab.wait_for(check, timeout=timeout, interval=0.5)
    except TimeoutError:
        raise TimeoutError(f"IPVS table of {ns} not as expected within {timeout} s: "
                           f"{json.dumps(last, indent=1)[:3000]}") from None
    return last


class RealServer:
    """A real server on one port: a request starting with ``GET `` gets
    ``200`` and the server's name (HTTP/1.0, or HTTPS with ``tls``); any
    other first line gets the whoami answer (name, peer as accept() saw it)
    and then an echo of every byte, as tools/whoami.py.  ``stop()`` closes
    the listener (the port then refuses connections; established ones go
    on), ``start()`` opens it again."""

    def __init__(self, topo, ns: str, family: int, port: int,
                 tls: ssl.SSLContext | None = None, addr: str | None = None) -> None:
        self.topo, self.ns, self.family, self.port, self.tls = topo, ns, family, port, tls
        self.addr = addr
        self.sock: socket.socket | None = None
        self.peers: list[tuple[str, int]] = []

    def start(self) -> "RealServer":
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        with self.topo.inside(self.ns):
            sock = socket.socket(af, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if af == socket.AF_INET6:      # an IPv4 server may have the same port
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((self.addr or ("0.0.0.0" if self.family == 4 else "::"), self.port))
        sock.listen(512)
        self.sock = sock
        threading.Thread(target=self._serve, args=(self.sock,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, peer = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn, peer), daemon=True).start()

    def _handle(self, conn: socket.socket, peer: tuple) -> None:
        try:
            conn.settimeout(120)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            reader = conn.makefile("rb")
            first = reader.readline()
            if not first:
                return
            if first.startswith(b"GET "):
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass
                body = self.ns.encode()
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                             + body)
                return
            self.peers.append(peer[:2])
            conn.sendall(f"{self.ns} {peer[0]} {peer[1]}\n".encode())
            while chunk := reader.read1(65536):
                conn.sendall(chunk)
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            conn.close()


def http_get(topo: netlab.Topology, ns: str, addr: str, port: int, *,
             tls: bool = False, timeout: float = 10) -> str:
    """GET / from namespace ``ns``; the body (the answering server's name)."""
    sock = netlab.connect(topo, ns, addr, port, timeout=timeout)
    try:
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            sock = ctx.wrap_socket(sock)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        raise OSError(f"unexpected answer {head[:80]!r}")
    return body.decode()


def self_signed_tls(workdir: Path) -> ssl.SSLContext:
    """A server context with a throw-away certificate (openssl req)."""
    key, cert = workdir / "rs.key", workdir / "rs.crt"
    if not cert.exists():
        netlab.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=lab", "-keyout", str(key), "-out", str(cert)])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def record(kver: str, name: str, values: dict[str, Any],
           file: str = "keepalived-measures.json") -> None:
    """Keep a measured figure of a guest test next to the guest's results
    (build/guest/KVER/FILE, when writable)."""
    path = ROOT / "build" / "guest" / kver / file
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = values
        path.write_text(json.dumps(data, indent=1) + "\n")
    except OSError:
        pass
    print(f"measured {name}: {values}", flush=True)
