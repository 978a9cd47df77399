"""tools/lvs_tools/toa_craft.py: the packets the self-test sends are what scapy says
they are (checksums, options, fields), and it reads scapy's packets back.

The self-test runs on real servers without scapy, so its packet builder is
standard-library code; scapy is the independent judge here.
"""

from __future__ import annotations

import socket

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

from lvs_tools import toa_craft as craft


def test_toa_option_layouts():
    assert craft.toa_option("198.51.100.7", 40001) == \
        bytes([254, 8]) + (40001).to_bytes(2, "big") + bytes([198, 51, 100, 7])
    six = craft.toa_option("2001:db8::7", 443)
    assert six[:4] == bytes([254, 20, 1, 187]) and len(six) == 20
    assert six[4:] == socket.inet_pton(socket.AF_INET6, "2001:db8::7")
    assert craft.toa_option("2001:db8::7", 443, craft.TOA_KIND_LEGACY)[0] == 253


def test_nop_pad_keeps_options_word_aligned():
    assert craft.nop_pad(b"\x03\x03\x07") == b"\x01\x03\x03\x07"
    assert craft.nop_pad(craft.toa_option("192.0.2.1", 1)) == craft.toa_option("192.0.2.1", 1)


def _rechecked(raw: bytes, cls):
    """The same packet with the checksums scapy computes itself."""
    pkt = cls(raw)
    del pkt[TCP].chksum
    if cls is IP:
        del pkt[IP].chksum
    return cls(bytes(pkt))


@pytest.mark.parametrize("src,dst", [("198.51.100.2", "192.0.2.1"),
                                     ("2001:db8:6::2", "2001:db8:5::1")])
def test_segments_parse_and_checksum_like_scapy(src, dst):
    options = craft.toa_option("203.0.113.7", 40001)
    raw = craft.tcp_packet(src, dst, 40000, 8080, 1234, 5678, craft.ACK | craft.PSH,
                           options, b"GET / HTTP/1.0\r\n\r\n")
    cls = IPv6 if ":" in src else IP
    pkt = cls(raw)
    tcp = pkt[TCP]
    assert (pkt.src, pkt.dst, tcp.sport, tcp.dport, tcp.seq, tcp.ack) == \
        (src, dst, 40000, 8080, 1234, 5678)
    assert tcp.flags == "PA" and tcp.dataofs == 7
    assert bytes(tcp)[20:28] == options
    assert bytes(tcp.payload) == b"GET / HTTP/1.0\r\n\r\n"
    fixed = _rechecked(raw, cls)
    assert fixed[TCP].chksum == tcp.chksum
    if IP in pkt:
        assert fixed[IP].chksum == pkt[IP].chksum


def test_malformed_options_go_in_verbatim():
    raw = craft.tcp_packet("198.51.100.2", "192.0.2.1", 1, 2, 0, 0, craft.ACK, b"\x01\x01\xfe\x08")
    assert IP(raw)[TCP].dataofs == 6
    assert bytes(IP(raw)[TCP])[20:24] == b"\x01\x01\xfe\x08"
    with pytest.raises(ValueError):
        craft.tcp_segment("198.51.100.2", "192.0.2.1", 1, 2, 0, 0, craft.ACK, b"\xfe\x07")


@pytest.mark.parametrize("layer", [IP(src="192.0.2.1", dst="198.51.100.2"),
                                   IPv6(src="2001:db8:5::1", dst="2001:db8:6::2")])
def test_parse_packet_reads_what_scapy_built(layer):
    pkt = layer / TCP(sport=8080, dport=40000, seq=7, ack=9, flags="SA",
                      options=[("MSS", 1400)]) / Raw(b"hi")
    seg = craft.parse_packet(bytes(pkt))
    assert seg is not None
    assert (seg.src, seg.dst, seg.sport, seg.dport, seg.seq, seg.ack) == \
        (layer.src, layer.dst, 8080, 40000, 7, 9)
    assert seg.flags == craft.SYN | craft.ACK
    assert seg.options == b"\x02\x04\x05\x78" and seg.payload == b"hi"


def test_parse_packet_ignores_what_is_not_tcp():
    from scapy.layers.inet import UDP
    assert craft.parse_packet(bytes(IP() / UDP())) is None
    assert craft.parse_packet(b"") is None


def test_ip_commands_for_the_lab():
    cmds = craft.ip_commands("toa0", ["192.0.2.1/32", "2001:db8:5::1/128"],
                             ["198.51.100.0/24"], netns="rs")
    assert ["ip", "-n", "rs", "link", "set", "toa0", "up"] in cmds
    assert ["ip", "-n", "rs", "-6", "addr", "add", "2001:db8:5::1/128", "dev", "lo",
            "nodad"] in cmds
    assert ["ip", "-n", "rs", "-4", "route", "add", "198.51.100.0/24", "dev", "toa0"] in cmds
