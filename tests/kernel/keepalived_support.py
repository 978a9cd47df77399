"""Shared pieces of the keepalived guest tests (tests/kernel/test_keepalived*.py).

::

    client ------------ lb ----------------------------- rs1 rs2 rs3
    routes: the VIPs     keepalived (ours, from the        routes: the local-
    only                 build tree); VIPs and local       address subnets only
                         addresses on vip0                 (FULLNAT), servers in
                                                           threads of the test

The real servers answer the whoami protocol (tools/whoami.py) and HTTP on
the same port (tools/keepalived_lab.RealServer), HTTPS for SSL_GET.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from tools import netlab
from tools.keepalived_build import BINARY, missing
from tools.keepalived_lab import RealServer, Keepalived
from tools.netlab import Topology

LADDRS = {4: ["10.0.3.1", "10.0.3.2"], 6: ["2001:db8:3::1", "2001:db8:3::2"]}
TOA_ENABLED = Path("/sys/module/toa/parameters/enabled")
KA_NS = "lb"


def require_keepalived() -> Path:
    """Our keepalived binary (the tests fail, not skip, without it)."""
    reason = missing()
    assert reason is None, reason
    return BINARY


@pytest.fixture
def fnat_topo() -> Iterator[Topology]:
    """client, lb, rs1..rs3; the real servers route only the local-address
    subnets back to the balancer; the local addresses are on lb's vip0."""
    topo = Topology(n_rs=3, rs_routes=[netlab.LADDR_NET4, netlab.LADDR_NET6],
                    client_routes=[f"{netlab.VIP4}/32", f"{netlab.VIP6}/128"])
    with topo:
        topo.ip_batch(topo.lb, [f"addr add {a}/{32 if f == 4 else 128} dev vip0"
                                + (" nodad" if f == 6 else "")
                                for f, addrs in LADDRS.items() for a in addrs])
        yield topo


def _toa(enabled: str) -> Iterator[None]:
    if not TOA_ENABLED.exists():
        subprocess.run(["modprobe", "toa"], check=True)
    before = TOA_ENABLED.read_text().strip()
    TOA_ENABLED.write_text(enabled)
    yield
    TOA_ENABLED.write_text(before)


@pytest.fixture
def toa_on() -> Iterator[None]:
    """toa.ko loaded and switched on (the real servers share the guest's kernel):
    accept() on a real server shows the client."""
    yield from _toa("Y")


@pytest.fixture
def toa_off() -> Iterator[None]:
    """toa.ko switched off: accept() shows the balancer's local address."""
    yield from _toa("N")


@pytest.fixture
def keepalived(tmp_path) -> Iterator[Keepalived]:
    """Our keepalived in namespace lb (not started yet); stopped afterwards."""
    require_keepalived()
    ka = Keepalived(KA_NS, tmp_path)
    yield ka
    ka.stop()


def servers(topo: Topology, family: int, port: int, count: int,
            tls=None) -> list[RealServer]:
    """HTTP/whoami servers on rs1..rsN, started."""
    return [RealServer(topo, topo.rs(i), family, port, tls=tls).start()
            for i in range(1, count + 1)]


def whoami_via(topo: Topology, addr: str, port: int) -> tuple[str, str, int]:
    """One connection from the client through ``addr:port``: (server, peer, peer port)."""
    from tools import whoami
    with netlab.connect(topo, topo.client, addr, port) as sock:
        return whoami.whoami_tcp(sock)


def connect_to(topo: Topology, addr: str, port: int, server: str,
               tries: int = 20) -> socket.socket:
    """A connection through ``addr:port`` that landed on ``server`` (kept
    open; the others are closed)."""
    from tools import whoami
    for _ in range(tries):
        sock = netlab.connect(topo, topo.client, addr, port)
        if whoami.whoami_tcp(sock)[0] == server:
            return sock
        sock.close()
    raise AssertionError(f"no connection reached {server} in {tries} tries")


@contextlib.contextmanager
def explained(*daemons: Keepalived) -> Iterator[None]:
    """A failure inside the block carries the end of each keepalived's log
    (what its checkers saw, what it added and removed)."""
    try:
        yield
    except (AssertionError, OSError, TimeoutError) as exc:
        logs = "\n".join(f"--- {ka.logfile.name}:\n{ka.log()[-4000:]}" for ka in daemons)
        raise AssertionError(f"{exc!r}\n{logs}") from exc
