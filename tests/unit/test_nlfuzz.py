"""The request maker and the answer judge of tools/nlfuzz.py, without a kernel."""

from __future__ import annotations

import collections
import socket
import struct

import pytest

from ipvsadm_py import abi, wire
from tools import nlfuzz

FAMILY = 0x1E
PORTID = 4242


@pytest.fixture(scope="module")
def cases() -> list[nlfuzz.Case]:
    return nlfuzz.Fuzzer(7).cases(FAMILY, 10_240)


def test_one_seed_makes_the_same_requests_again(cases):
    again = nlfuzz.Fuzzer(7).cases(FAMILY, 10_240)
    assert [c.data for c in again] == [c.data for c in cases]
    other = nlfuzz.Fuzzer(8).cases(FAMILY, 10_240)
    assert [c.data for c in other] != [c.data for c in cases]


def test_every_command_often_and_unknown_ones_too(cases):
    counts = collections.Counter(c.cmd for c in cases)
    assert all(counts[cmd] >= 500 for cmd in nlfuzz.COMMANDS)
    assert sum(counts[cmd] for cmd in nlfuzz.BAD_COMMANDS) > 0
    assert {c.cmd for c in cases} <= set(nlfuzz.COMMANDS) | set(nlfuzz.BAD_COMMANDS)
    for cmd in nlfuzz.COMMANDS:
        mine = [c for c in cases if c.cmd == cmd]
        assert any(c.dump for c in mine) and any(not c.dump for c in mine)


def test_the_mix_of_kinds(cases):
    kinds = collections.Counter(c.what.split(",")[0] for c in cases)
    assert set(kinds) == {"valid", "mutated", "soup", "nla_len<4", "nla overruns message",
                          "child overruns nest", "trailing bytes", "short genl header"}
    assert kinds["mutated"] > len(cases) / 3


def test_frames_say_what_the_kernel_will_do(cases):
    for case in cases:
        length, family, flags, seq, pid = nlfuzz.NLMSG_HDR.unpack_from(case.data)
        assert (family, flags, seq, pid) == (FAMILY, case.flags, case.seq, 0)
        assert flags & abi.NLM_F_REQUEST and flags & abi.NLM_F_ACK
        if case.answered:
            # whatever follows nlmsg_len is too short to be a message of its own
            assert length <= len(case.data) < ((length + 3) & ~3) + nlfuzz.NLMSG_HDR.size
        else:
            assert length > len(case.data)
    assert 0 < sum(not c.answered for c in cases) < len(cases) / 20


def test_valid_requests_decode_as_the_wire_layer_reads_them(cases):
    valid = [c for c in cases if c.what == "valid" and c.cmd == abi.CMD_NEW_SERVICE]
    assert valid
    for case in valid:
        reply, = wire.parse_stream(case.data)
        svc = reply.attrs["service"]
        assert svc["af"] in (socket.AF_INET, socket.AF_INET6) and svc["sched_name"]


def test_sizes_include_empty_one_byte_and_large_attributes(cases):
    sizes = collections.Counter()
    for case in cases:
        pos = nlfuzz.NLMSG_HDR.size + nlfuzz.GENL_HDR.size
        while pos + 4 <= len(case.data):
            length, _kind = nlfuzz.NLA_HDR.unpack_from(case.data, pos)
            sizes[min(length, 1000)] += 1
            if length < 4:
                break
            pos += (length + 3) & ~3
    assert sizes[4] and sizes[5] and sizes[1000] and any(sizes[n] for n in range(4))


def test_deep_nests_are_made():
    fuzzer = nlfuzz.Fuzzer(1)
    node = fuzzer.deep(40)
    depth = 0
    while isinstance(node[1], list):
        node, depth = node[1][0], depth + 1
    assert depth == 40


# ---------------------------------------------------------------- judge

def request(flags: int = abi.NLM_F_REQUEST | abi.NLM_F_ACK, seq: int = 5) -> nlfuzz.Case:
    data = (nlfuzz.NLMSG_HDR.pack(28, FAMILY, flags, seq, 0)
            + nlfuzz.GENL_HDR.pack(abi.CMD_GET_SERVICE, 1, 0) + nlfuzz.nla(1, b"\0" * 4))
    return nlfuzz.Case(0, abi.CMD_GET_SERVICE, flags, data, seq)


def message(kind: int, payload: bytes, seq: int = 5, flags: int = 0,
            pid: int = PORTID) -> bytes:
    body = nlfuzz.NLMSG_HDR.pack(16 + len(payload), kind, flags, seq, pid) + payload
    return body + b"\0" * (-len(body) & 3)


def error(case: nlfuzz.Case, err: int, echo_body: bool = True, tlvs: bytes = b"") -> bytes:
    flags = 0 if err and echo_body else nlfuzz.NLM_F_CAPPED
    payload = struct.pack("=i", err) + case.data[:16]
    if err and echo_body:
        payload += case.data[16:]
    if tlvs:
        flags |= nlfuzz.NLM_F_ACK_TLVS
        payload += tlvs
    return message(abi.NLMSG_ERROR, payload, case.seq, flags)


def judged(case: nlfuzz.Case, *datagrams: bytes) -> str:
    queue = list(datagrams)
    return nlfuzz.judge(case, lambda: queue.pop(0) if queue else None, FAMILY, PORTID).problem


def test_an_ack_and_an_error_with_the_request_echoed_are_answers():
    case = request()
    assert judged(case, error(case, 0)) == ""
    assert judged(case, error(case, -22)) == ""
    assert judged(case, error(case, -22, tlvs=nlfuzz.nla(nlfuzz.NLMSGERR_ATTR_OFFS,
                                                         struct.pack("=I", 20)))) == ""


def test_a_data_message_then_the_ack():
    case = request()
    data = nlfuzz.GENL_HDR.pack(abi.CMD_NEW_SERVICE, 1, 0) + nlfuzz.nla(
        1 | nlfuzz.NLA_F_NESTED, nlfuzz.nla(1, b"\2\0"))
    assert judged(case, message(FAMILY, data) + error(case, 0)) == ""
    assert judged(case, message(FAMILY, data), error(case, 0)) == ""


def test_a_dump_ends_with_done():
    case = request(abi.NLM_F_REQUEST | abi.NLM_F_ACK | abi.NLM_F_DUMP)
    assert judged(case, message(abi.NLMSG_DONE, b"\0" * 4, flags=abi.NLM_F_MULTI)) == ""
    assert "not a dump" in judged(request(), message(abi.NLMSG_DONE, b"\0" * 4))


@pytest.mark.parametrize("bad, words", [
    (lambda c: b"", "no final answer"),
    (lambda c: error(c, 0) + error(c, 0), "after the final one"),
    (lambda c: message(abi.NLMSG_ERROR, struct.pack("=i", 0) + c.data[:16], seq=6),
     "not 5"),
    (lambda c: message(abi.NLMSG_ERROR, struct.pack("=i", 0) + c.data[:16], pid=1),
     "pid 1"),
    (lambda c: message(abi.NLMSG_ERROR, struct.pack("=i", 5) + c.data[:16]), "error 5"),
    (lambda c: message(abi.NLMSG_ERROR, struct.pack("=i", 0) + b"\0" * 16), "echoes header"),
    (lambda c: message(abi.NLMSG_ERROR, struct.pack("=i", -22) + c.data[:16] + b"\0" * 12),
     "another request body"),
    (lambda c: error(c, -22, tlvs=nlfuzz.nla(nlfuzz.NLMSGERR_ATTR_OFFS,
                                             struct.pack("=I", 28))), "points at byte 28"),
    (lambda c: message(FAMILY, nlfuzz.GENL_HDR.pack(99, 1, 0)), "command 99"),
    (lambda c: message(FAMILY, nlfuzz.GENL_HDR.pack(1, 1, 0) + struct.pack("=HH", 40, 1)),
     "nla_len 40"),
    (lambda c: message(77, b""), "type 77"),
    (lambda c: error(c, 0)[:-4], "nlmsg_len"),
])
def test_what_is_not_a_proper_answer(bad, words):
    case = request()
    datagram = bad(case)
    problem = judged(case, datagram) if datagram else judged(case)
    assert words in problem, problem
