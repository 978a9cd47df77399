"""toa.ko's ``trusted`` parameter: TOA only from the balancers' addresses.

Lab as in test_toa.py, plus "direct" peers: 192.0.2.0/24 and
2001:db8:4::/64 are routed into the tun device too, and stand for clients
that reach the real server without the balancer and forge the option.
"""

from __future__ import annotations

import errno
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from lvs_tools.toa_craft import CraftedConnection, toa_option
from tests.kernel.toa_support import (CLIENT4, CLIENT6, LB4, LB6, NS, RS4, RS6, Counters,
                                      accept_peer, lab, peername, scapy_packet)

pytestmark = pytest.mark.kernel
__all__ = ["lab"]

TRUSTED = Path("/sys/module/toa/parameters/trusted")
BALANCERS = "10.0.3.0/24,2001:db8:3::/64"
DIRECT4, DIRECT6 = "192.0.2.50", "2001:db8:4::50"
FORGED4, FORGED6 = "203.0.113.66", "2001:db8:66::66"
AF4, AF6 = socket.AF_INET, socket.AF_INET6


def set_trusted(value: str) -> None:
    """As ``echo VALUE >``: a write of no bytes at all would not reach the
    module, so an empty list is written as a newline."""
    TRUSTED.write_text(value or "\n")


@pytest.fixture
def direct(lab) -> Iterator[None]:
    """Routes for the direct peers; ``trusted`` empty again afterwards."""
    routes = [["-4", "route", "{}", "192.0.2.0/24", "dev", "toa0"],
              ["-6", "route", "{}", "2001:db8:4::/64", "dev", "toa0"]]
    for route in routes:
        subprocess.run(["ip", "-n", NS, *[w.format("replace") for w in route]], check=True)
    try:
        yield
    finally:
        for route in routes:
            subprocess.run(["ip", "-n", NS, *[w.format("del") for w in route]], check=False)
        set_trusted("")


def seen_through(lab, family: int, listen: str, src: str, dst: str, port: int,
                 option: bytes, v6only: bool = True) -> tuple[tuple, tuple, int]:
    """One crafted connection with ``option`` on the handshake ACK:
    (accept()'s peer, getpeername(), the source port used)."""
    with lab.listen(family, listen, port, v6only) as server, \
            lab.connection(src, dst, port) as conn:
        conn.handshake(option)
        accepted, seen = accept_peer(server)
        with accepted:
            name = peername(accepted)
        conn.reset()
    return seen, name, conn.sport


@pytest.mark.parametrize("family", [4, 6])
def test_forged_toa_from_a_direct_peer_is_ignored(lab, direct, family):
    v4 = family == 4
    rs, lb, peer = (RS4, LB4, DIRECT4) if v4 else (RS6, LB6, DIRECT6)
    forged, client = (FORGED4, CLIENT4) if v4 else (FORGED6, CLIENT6)
    af = AF4 if v4 else AF6
    set_trusted(BALANCERS)
    counters = Counters()
    seen, name, sport = seen_through(lab, af, rs, peer, rs, 8700 + family,
                                     toa_option(forged, 40700))
    assert seen == name == (peer, sport)
    delta = counters.delta()
    assert delta.get("opt_untrusted") == 1, delta
    assert "entry_alloc" not in delta and "getname_toa_ok" not in delta, delta
    # Through the balancer's local address the client is still shown.
    seen, name, _ = seen_through(lab, af, rs, lb, rs, 8710 + family,
                                 toa_option(client, 40701))
    assert seen == name == (client, 40701)


def test_ipv4_balancer_on_a_dual_stack_listener_is_trusted(lab, direct):
    set_trusted("10.0.3.0/24")
    seen, name, _ = seen_through(lab, AF6, "::", LB4, RS4, 8720,
                                 toa_option(CLIENT4, 40720), v6only=False)
    assert seen == name == ("::ffff:" + CLIENT4, 40720)
    seen, name, sport = seen_through(lab, AF6, "::", DIRECT4, RS4, 8721,
                                     toa_option(FORGED4, 40721), v6only=False)
    assert seen == name == ("::ffff:" + DIRECT4, sport)


def test_changing_the_list_at_run_time_takes_effect(lab, direct):
    set_trusted("")         # empty: every peer, as without the parameter
    seen, _, _ = seen_through(lab, AF4, RS4, DIRECT4, RS4, 8730, toa_option(FORGED4, 40730))
    assert seen == (FORGED4, 40730)
    set_trusted("10.0.4.0/24")      # not the lab's balancer
    seen, _, sport = seen_through(lab, AF4, RS4, LB4, RS4, 8731, toa_option(CLIENT4, 40731))
    assert seen == (LB4, sport)
    set_trusted("10.0.3.0/24")
    seen, _, _ = seen_through(lab, AF4, RS4, LB4, RS4, 8732, toa_option(CLIENT4, 40732))
    assert seen == (CLIENT4, 40732)


def test_a_socket_recorded_before_the_list_shrank_shows_its_real_peer(lab, direct):
    with lab.listen(AF4, RS4, 8740) as server, lab.connection(LB4, RS4, 8740) as conn:
        conn.handshake(toa_option(CLIENT4, 40740))
        accepted, seen = accept_peer(server)
        with accepted:
            assert seen == (CLIENT4, 40740)
            set_trusted("10.0.4.0/24")
            counters = Counters()
            assert peername(accepted) == (LB4, conn.sport)
            assert counters.delta().get("getname_toa_untrusted") == 1
            set_trusted(BALANCERS)
            assert peername(accepted) == (CLIENT4, 40740)
        conn.reset()


def test_the_list_reads_back_in_canonical_form(direct):
    set_trusted(" 10.0.3.0/24 , 2001:DB8:3:0::/64,192.0.2.7\n")
    assert TRUSTED.read_text() == "10.0.3.0/24,2001:db8:3::/64,192.0.2.7/32\n"
    set_trusted("")
    assert TRUSTED.read_text() == "\n"


BAD = ["banana", "10.0.3.0/33", "10.0.3.1/24", "2001:db8::/129", "2001:db8::1/64",
       "10.0.3.0/24,", ",10.0.3.0/24", "10.0.3.0/24,,10.0.4.0/24", "10.0.3.0/-1",
       "10.0.3.0/", "10.0.3.0/24x", "::ffff:10.0.3.0/120",
       ",".join(f"10.{n}.0.0/16" for n in range(65))]


@pytest.mark.parametrize("value", BAD, ids=range(len(BAD)))
def test_malformed_lists_are_refused_and_change_nothing(direct, kmsg_mark, value):
    set_trusted(BALANCERS)
    with pytest.raises(OSError) as err:
        set_trusted(value)
    assert err.value.errno == errno.EINVAL
    assert TRUSTED.read_text() == BALANCERS + "\n"
    assert "toa: trusted=" in kmsg_mark()


def test_toa_on_an_outgoing_connection_is_never_read(lab, direct):
    """The server's own connections: their SYN is acknowledged before any
    data, so toa never takes an option from the peer they reach."""
    set_trusted("")
    with lab.inside():
        sock = socket.socket(AF4, socket.SOCK_STREAM)
    with sock, CraftedConnection(lab.peer, DIRECT4, RS4, 45000, sport=9000,
                                 build=scapy_packet, timeout=20) as conn:
        sock.bind((RS4, 45000))
        sock.setblocking(False)
        counters = Counters()
        assert sock.connect_ex((DIRECT4, 9000)) == errno.EINPROGRESS
        conn.answer_syn()
        sock.setblocking(True)
        sock.settimeout(20)
        conn.send(b"hello", toa_option(FORGED4, 40750))
        assert sock.recv(5) == b"hello"
        assert peername(sock) == (DIRECT4, 9000)
        conn.reset()
    delta = counters.delta()
    assert "entry_alloc" not in delta and "data_seg_toa" not in delta, delta
