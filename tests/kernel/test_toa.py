"""toa.ko: what servers see from accept() and getpeername(), and why.

Lab (tests/kernel/toa_support.py): a real server in namespace "toars",
segments of a crafted balancer built with scapy and fed through a tun
device.  Every test checks the addresses the server's real sockets report
and the counters of /proc/net/toa_stats that explain them.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from pathlib import Path

import pytest

from lvs_tools.toa_craft import nop_pad, toa_option
from tests.kernel.toa_support import (CLIENT4, CLIENT6, LB4, LB6, RS4, RS6, Counters,
                                      accept_peer, lab, live, peername, recv_exactly,
                                      stats, wait_records_freed)

pytestmark = pytest.mark.kernel
__all__ = ["lab"]   # the fixture, imported for pytest

AF4, AF6 = socket.AF_INET, socket.AF_INET6
MAPPED = "::ffff:" + CLIENT4
ENABLED = Path("/sys/module/toa/parameters/enabled")

# id: (listener family, listener address, v6only, source, destination,
#      option on the handshake ACK, what accept()/getpeername() must show)
ACK_CASES = {
    "ipv4": (AF4, RS4, True, LB4, RS4, toa_option(CLIENT4, 40001), (CLIENT4, 40001)),
    "ipv6": (AF6, RS6, True, LB6, RS6, toa_option(CLIENT6, 40002), (CLIENT6, 40002)),
    "ipv6-legacy-kind-253": (AF6, RS6, True, LB6, RS6, toa_option(CLIENT6, 40003, 253),
                             (CLIENT6, 40003)),
    "dual-stack-listener-v4-mapped": (AF6, "::", False, LB4, RS4,
                                      toa_option(CLIENT4, 40004), (MAPPED, 40004)),
    "ipv6-listener-ipv4-client": (AF6, RS6, True, LB6, RS6, toa_option(CLIENT4, 40005),
                                  (MAPPED, 40005)),
    "ipv4-listener-v4-mapped-client": (AF4, RS4, True, LB4, RS4,
                                       toa_option(MAPPED, 40006), (CLIENT4, 40006)),
}


@pytest.mark.parametrize("case", list(ACK_CASES))
def test_toa_on_the_handshake_ack_names_the_client(lab, case):
    family, addr, v6only, src, dst, option, client = ACK_CASES[case]
    port = 8000 + list(ACK_CASES).index(case)
    with lab.listen(family, addr, port, v6only) as server:
        counters = Counters()
        with lab.connection(src, dst, port) as conn:
            conn.handshake(option)
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == client
                assert peername(accepted) == client
                # getsockname() is about our side: never rewritten.
                assert accepted.getsockname()[0] in (dst, "::ffff:" + dst)
            conn.reset()
    delta = counters.delta()
    assert delta.get("syn_recv_sock_toa") == 1, delta
    assert delta.get("getname_toa_ok") == 2, delta
    assert "syn_recv_sock_no_toa" not in delta, delta


def test_without_the_option_the_real_peer_is_shown(lab):
    with lab.listen(AF4, RS4, 8100) as server:
        counters = Counters()
        with lab.connection(LB4, RS4, 8100) as conn:
            conn.handshake()
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == (LB4, conn.sport) == peername(accepted)
            conn.reset()
    delta = counters.delta()
    assert delta.get("syn_recv_sock_no_toa") == 1, delta
    assert delta.get("getname_toa_empty", 0) >= 2, delta
    assert "syn_recv_sock_toa" not in delta and "getname_toa_ok" not in delta, delta


def test_ipv6_client_on_an_ipv4_socket_is_left_alone_and_counted(lab):
    with lab.listen(AF4, RS4, 8101) as server:
        counters = Counters()
        with lab.connection(LB4, RS4, 8101) as conn:
            conn.handshake(toa_option(CLIENT6, 40010))
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == (LB4, conn.sport) == peername(accepted)
            conn.reset()
    delta = counters.delta()
    assert delta.get("syn_recv_sock_toa") == 1, delta
    assert delta.get("getname_toa_family") == 2, delta


def _toa_declaring(length: int, kind: int = 254) -> bytes:
    """Kind and a length byte, then the IPv4 body (port, address) cut or
    extended to the declared size when it fits, NOP-padded in front."""
    body = struct.pack("!H", 40100) + socket.inet_aton(CLIENT4)
    if 2 <= length <= 40:
        body = (body + bytes(range(1, 40)))[:length - 2]
    return nop_pad(bytes([kind, length]) + body)


GOOD4 = toa_option(CLIENT4, 40100)
# id: (option bytes, the counter that must say why they were ignored)
MALFORMED = {
    **{f"length-{n}": (_toa_declaring(n), "opt_bad_len") for n in (0, 1, 7, 9, 19, 21, 255)},
    "kind-253-length-8": (_toa_declaring(8, 253), "opt_bad_len"),
    "length-past-the-header": (b"\x01\x01\xfe\x08", "opt_truncated"),
    "no-length-byte": (b"\x01\x01\x01\xfe", "opt_truncated"),
    "ipv6-option-cut-short": (b"\xfe\x14" + GOOD4[2:], "opt_truncated"),
    "other-option-past-the-header": (b"\x08\x1e\x00\x00" + GOOD4, "opt_truncated"),
    "other-option-length-0": (b"\x03\x00\x00\x00" + GOOD4, "opt_truncated"),
    "toa-after-eol": (b"\x00" + GOOD4 + b"\x00\x00\x00", "opt_after_eol"),
    "two-toa-options": (GOOD4 + toa_option(CLIENT4, 40101), "opt_duplicate"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_options_are_ignored_and_counted(lab, case):
    options, counter = MALFORMED[case]
    port = 8200 + list(MALFORMED).index(case)
    with lab.listen(AF4, RS4, port) as server:
        counters = Counters()
        with lab.connection(LB4, RS4, port) as conn:
            conn.handshake(options)
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == (LB4, conn.sport) == peername(accepted)
                # The connection itself works: TCP ignores what it cannot parse.
                conn.send(b"still here")
                assert recv_exactly(accepted, 10) == b"still here"
            conn.reset()
    delta = counters.delta()
    assert delta.get(counter) == 1, delta
    assert delta.get("syn_recv_sock_no_toa") == 1, delta
    assert "entry_alloc" not in delta and "getname_toa_ok" not in delta, delta


def test_malformed_option_on_a_data_segment_is_counted(lab):
    with lab.listen(AF4, RS4, 8300) as server:
        counters = Counters()
        with lab.connection(LB4, RS4, 8300) as conn:
            conn.handshake()
            conn.send(b"data", MALFORMED["length-9"][0])
            conn.wait_acked()
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == (LB4, conn.sport)
                assert recv_exactly(accepted, 4) == b"data"
            conn.reset()
    delta = counters.delta()
    assert delta.get("opt_bad_len") == 1 and "data_seg_toa" not in delta, delta


@pytest.mark.parametrize("family", [4, 6])
def test_toa_only_on_the_first_data_segment(lab, family):
    src, dst, client = (LB4, RS4, CLIENT4) if family == 4 else (LB6, RS6, CLIENT6)
    port = 8310 + family
    with lab.listen(AF4 if family == 4 else AF6, dst, port) as server:
        counters = Counters()
        with lab.connection(src, dst, port) as conn:
            conn.handshake()
            conn.send(b"GET / HTTP/1.0\r\n\r\n", toa_option(client, 40200))
            conn.wait_acked()
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == (client, 40200) == peername(accepted)
                assert recv_exactly(accepted, 18).startswith(b"GET /")
            conn.reset()
    delta = counters.delta()
    assert delta.get("syn_recv_sock_no_toa") == 1, delta
    assert delta.get("data_seg_toa") == 1, delta


def test_toa_arriving_after_accept_is_shown_from_then_on(lab):
    with lab.listen(AF4, RS4, 8320) as server:
        with lab.connection(LB4, RS4, 8320) as conn:
            conn.handshake()
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == (LB4, conn.sport)
                conn.send(b"hello", toa_option(CLIENT4, 40201))
                assert recv_exactly(accepted, 5) == b"hello"
                assert peername(accepted) == (CLIENT4, 40201)
            conn.reset()


def test_toa_after_the_server_was_acknowledged_is_ignored(lab):
    """The balancer puts TOA only on segments acking our ISN + 1; one that
    comes after the server's own data was acknowledged is not believed."""
    with lab.listen(AF4, RS4, 8330) as server:
        counters = Counters()
        with lab.connection(LB4, RS4, 8330) as conn:
            conn.handshake()
            accepted, _ = accept_peer(server)
            with accepted:
                accepted.sendall(b"banner\r\n")
                assert conn.recv(8) == b"banner\r\n"      # and acknowledged
                conn.send(b"late", toa_option(CLIENT4, 40202))
                assert recv_exactly(accepted, 4) == b"late"
                assert peername(accepted) == (LB4, conn.sport)
            conn.reset()
    assert "data_seg_toa" not in counters.delta()


def test_switching_off_at_run_time(lab):
    with lab.listen(AF4, RS4, 8340) as server, \
            lab.connection(LB4, RS4, 8340) as before, \
            lab.connection(LB4, RS4, 8340) as during:
        before.handshake(toa_option(CLIENT4, 40300))
        early, seen = accept_peer(server)
        with early:
            assert seen == (CLIENT4, 40300)
            try:
                ENABLED.write_text("N")
                counters = Counters()
                # An existing TOA socket now shows its real peer ...
                assert peername(early) == (LB4, before.sport)
                # ... and a new connection's option is not read at all.
                during.handshake(toa_option(CLIENT4, 40301))
                late, seen = accept_peer(server)
                assert seen == (LB4, during.sport)
                delta = counters.delta()
                assert delta.get("getname_toa_bypass") == 1, delta
                assert "syn_recv_sock_toa" not in delta and "entry_alloc" not in delta
            finally:
                ENABLED.write_text("Y")
            with late:
                # Switched on again: the first socket's record was kept.
                assert peername(early) == (CLIENT4, 40300)
                assert peername(late) == (LB4, during.sport)
        before.reset()
        during.reset()


def _disconnect(sock: socket.socket) -> None:
    """connect(AF_UNSPEC): TCP's way to drop a connection and keep the socket."""
    libc = ctypes.CDLL(None, use_errno=True)
    unspec = struct.pack("H14x", socket.AF_UNSPEC)
    if libc.connect(sock.fileno(), unspec, len(unspec)) != 0:
        raise OSError(ctypes.get_errno(), "connect(AF_UNSPEC)")


def test_reconnected_socket_shows_its_new_peer(lab):
    with lab.listen(AF4, RS4, 8350) as server, lab.listen(AF4, RS4, 8351) as other:
        with lab.connection(LB4, RS4, 8350) as conn:
            conn.handshake(toa_option(CLIENT4, 40400))
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == (CLIENT4, 40400)
                _disconnect(accepted)
                counters = Counters()
                accepted.settimeout(20)
                accepted.connect((RS4, 8351))
                inner, _ = other.accept()
                with inner:
                    assert peername(accepted) == (RS4, 8351)
                assert counters.delta().get("getname_toa_mismatch") == 1
            conn.reset()


def test_unrelated_connections_are_untouched(lab):
    """A plain connection inside the server's namespace: real peer, no record."""
    with lab.listen(AF6, "::", 8360, v6only=False) as server:
        counters = Counters()
        with lab.inside():
            client = socket.create_connection((RS4, 8360), timeout=20)
        with client:
            accepted, seen = accept_peer(server)
            with accepted:
                assert seen == ("::ffff:" + RS4, client.getsockname()[1])
                assert peername(client) == (RS4, 8360)
    delta = counters.delta()
    assert "entry_alloc" not in delta and "getname_toa_ok" not in delta, delta


def test_records_are_freed_with_their_sockets(lab):
    start = stats()
    with lab.listen(AF4, RS4, 8370) as server:
        kept = []
        try:
            for index in range(20):
                conn = lab.connection(LB4, RS4, 8370)
                conn.handshake(toa_option(CLIENT4, 41000 + index))
                accepted, seen = accept_peer(server)
                kept.append((conn, accepted))
                assert seen == (CLIENT4, 41000 + index)
            assert stats()["entry_alloc"] - start["entry_alloc"] == 20
        finally:
            for conn, accepted in kept:
                conn.reset()
                accepted.close()
    final = wait_records_freed(live(start))
    # Records of sockets other tests still hold may remain; none of ours.
    assert live(final) <= live(start), (start, final)
    # (counted since the module loaded: a flood of an earlier test may have
    # made a probe miss, where a handler was running when another hit)
    assert final["store_fail"] == start["store_fail"], (start, final)
    assert final["probe_missed"] == start["probe_missed"], (start, final)
