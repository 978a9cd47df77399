"""The benchmark's HAProxy peer (tools/bench/haproxy_peer.py, haproxy.cfg):
the configuration it renders, what HAProxy says of it, and, as root, the
peer on the host's loopback in a namespace of its own, with the traffic
programs of tools/bench/gen.c on both sides (echo --proxy, rr, hold)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from pyroute2 import netns as pyr_netns

from tools import netlab
from tools.bench import haproxy_peer
from tools.bench.haproxy_peer import Haproxy

SERVERS = [("10.0.2.11", 8085), ("10.0.2.12", 8085)]
needs_haproxy = pytest.mark.skipif(haproxy_peer.available() is not None,
                                   reason=str(haproxy_peer.available()))
needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root (a network namespace)")


def directives(text: str) -> list[str]:
    """The configuration's lines without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def test_one_thread_pinned_and_every_server_told_the_client_address():
    lines = directives(Haproxy("b-lb", "10.0.0.100:85", SERVERS, cpu=1).render())
    assert "nbthread 1" in lines and "cpu-map 1/all 1" in lines
    assert "mode tcp" in lines and "bind 10.0.0.100:85" in lines
    assert "balance roundrobin" in lines
    assert [line for line in lines if line.startswith("server ")] == [
        "server rs1 10.0.2.11:8085 send-proxy-v2", "server rs2 10.0.2.12:8085 send-proxy-v2"]
    assert "option dontlognull" in lines
    # nothing logged, nothing spliced, the default buffers
    assert not [line for line in lines
                if line.split()[0] == "log" or "splice" in line or "bufsize" in line]


def test_without_a_cpu_or_the_proxy_protocol():
    lines = directives(Haproxy("b-lb", "10.0.0.100:85", SERVERS[:1], cpu=None,
                               proxy_protocol=False).render())
    assert not [line for line in lines if line.startswith("cpu-map")]
    assert "server rs1 10.0.2.11:8085" in lines


def test_maxconn_is_what_the_descriptor_limit_allows(monkeypatch):
    monkeypatch.setattr(haproxy_peer, "max_fds", lambda: 1 << 20)
    assert "maxconn 200000" in directives(Haproxy("b-lb", ":85", SERVERS, 0).render())
    monkeypatch.setattr(haproxy_peer, "max_fds", lambda: 20000)
    assert haproxy_peer.maxconn() == (20000 - haproxy_peer.FD_SPARE) // 2


def test_a_missing_haproxy_is_said(monkeypatch):
    monkeypatch.setattr(haproxy_peer.shutil, "which", lambda *args, **kwargs: None)
    assert haproxy_peer.available() == "haproxy is not installed (Debian package haproxy)"


@needs_haproxy
@pytest.mark.parametrize("cpu,proxy_protocol", [(1, True), (None, False)])
def test_haproxy_accepts_the_configuration(tmp_path, cpu, proxy_protocol):
    peer = Haproxy("b-lb", "10.0.0.100:85", SERVERS, cpu, proxy_protocol)
    path = tmp_path / "haproxy.cfg"
    path.write_text(peer.render())
    peer.check(path)                    # raises with HAProxy's words if not


@needs_haproxy
def test_a_rejected_configuration_is_explained(tmp_path):
    path = tmp_path / "haproxy.cfg"
    path.write_text("global\n\tnbthread one\n")
    with pytest.raises(RuntimeError, match=r"(?s)haproxy rejects .*'nbthread'"):
        Haproxy("b-lb", ":85", SERVERS, 0).check(path)


# ---------------------------------------------------------------- end to end

ECHO_PORT, LISTEN_PORT = 7001, 7100


@pytest.fixture
def netns() -> Iterator[str]:
    """A throwaway namespace with its loopback up."""
    name = f"hx-test{os.getpid()}"
    netlab.run(["ip", "netns", "add", name])
    try:
        netlab.run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        netlab.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def gen(tmp_path) -> str:
    from tools.bench.runner import build_gen
    return str(build_gen(tmp_path / "lvs-bench-gen"))


def in_ns(netns: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv]


@pytest.fixture
def echo_proxy(netns, gen) -> Iterator[None]:
    """``gen echo --proxy`` on ECHO_PORT in the namespace, ready."""
    echo = subprocess.Popen(in_ns(netns, gen, "echo", "--proxy", str(ECHO_PORT)),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None and echo.stdout.readline() == "ready\n"
        yield
    finally:
        netlab.stop_process(echo)


def established(netns: str, port: int) -> int:
    """Established connections whose local port is ``port``."""
    out = netlab.run(in_ns(netns, "ss", "-Htn", "state", "established",
                           f"sport = :{port}")).stdout
    return len(out.splitlines())


PP2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def pp2_header(client: str, port: int, tlv: bytes = b"") -> bytes:
    """A PROXY protocol v2 header (PROXY command, TCP over IPv4)."""
    body = (socket.inet_aton(client) + socket.inet_aton("127.0.0.1")
            + struct.pack("!HH", port, ECHO_PORT) + tlv)
    return PP2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def exchange(netns: str, data: bytes) -> bytes:
    """Send ``data`` to the echo server in one write; what comes back
    before it closes or is quiet for 0.3 s."""
    pyr_netns.pushns(netns)
    try:
        sock = socket.socket()
    finally:
        pyr_netns.popns()
    with sock:
        sock.settimeout(5)
        sock.connect(("127.0.0.1", ECHO_PORT))
        sock.sendall(data)
        sock.settimeout(0.3)
        got = b""
        try:
            while chunk := sock.recv(4096):
                got += chunk
        except socket.timeout:
            return got
        except ConnectionResetError:
            pass
        return got + b"<closed>"


@needs_root
@pytest.mark.timeout(60)
def test_echo_drops_the_proxy_header_and_closes_without_one(netns, echo_proxy):
    assert exchange(netns, pp2_header("192.0.2.7", 4321) + b"hello") == b"hello"
    tlv = b"\x04\x00\x03abc"             # a NOOP TLV after the addresses
    assert exchange(netns, pp2_header("192.0.2.7", 4321, tlv) + b"tlv") == b"tlv"
    v1 = b"PROXY TCP4 192.0.2.7 127.0.0.1 4321 7001\r\n"
    assert exchange(netns, v1 + b"text") == b"text"
    assert exchange(netns, b"GET / HTTP/1.0\r\n\r\n") == b"<closed>"
    assert exchange(netns, b"PROXY TCP4 " + b"1" * 100 + b"\r\n") == b"<closed>"
    assert exchange(netns, PP2_SIGNATURE + b"\x21\x11\x00\x04abcd") == b"<closed>"


@needs_root
@needs_haproxy
@pytest.mark.timeout(60)
def test_requests_and_idle_connections_through_haproxy(netns, gen, echo_proxy):
    cpu = min(os.sched_getaffinity(0))
    with Haproxy(netns, f"127.0.0.1:{LISTEN_PORT}", [("127.0.0.1", ECHO_PORT)],
                 cpu) as peer:
        assert Path(f"/proc/{peer.pid()}/comm").read_text() == "haproxy\n"
        assert os.sched_getaffinity(peer.pid()) == {cpu}
        # the server closes a connection that does not start with the
        # PROXY header: no failure means HAProxy sent it every time
        lines = netlab.run(in_ns(netns, gen, "rr", "127.0.0.1", str(LISTEN_PORT),
                                 "1", "4", "64")).stdout.splitlines()
        assert lines[0] == "timing"              # the runner times its window from it
        out = lines[-1].split()
        transactions, failed = int(out[0]), int(out[1])
        assert transactions > 0 and failed == 0, out
        # a connection per exchange (the connection-rate figure): each is
        # closed after its answer and another opened, none counted failed
        out = netlab.run(in_ns(netns, gen, "rr", "127.0.0.1", str(LISTEN_PORT),
                               "1", "4", "64", "1")).stdout.split()[1:]
        assert int(out[0]) > 0 and int(out[1]) == 0, out
        assert peer.cpu_seconds() > 0

        before = peer.rss_bytes()
        hold = subprocess.Popen(in_ns(netns, gen, "hold", "127.0.0.1",
                                      str(LISTEN_PORT), "200"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert hold.stdout is not None and hold.stdout.readline() == "200 0\n"
            # HAProxy has accepted them all once it has opened all to the server
            netlab.wait_for(lambda: established(netns, ECHO_PORT) >= 200, timeout=10,
                            interval=0.1)
            assert peer.rss_bytes() > before
        finally:
            assert hold.stdin is not None
            hold.stdin.write("\n")
            hold.stdin.close()
            assert hold.wait(timeout=10) == 0
