"""The IPVS generic netlink family under 10,000 malformed requests.

::

    +------------------- netns lvs-fuzz -------------------+
    |  one generic netlink socket (extended ACKs on)        |
    |      |  request, answer, request, answer, ...         |
    |      v                                                |
    |  IPVS of this namespace: fresh, then whatever the     |
    |  requests that got through made of it                 |
    +-------------------------------------------------------+

tools/nlfuzz.py makes the requests (every command 1..20, do and dump,
mutated near-valid ones, attribute soups, broken frames) from one seed and
judges each answer: exactly one final message (ACK/error, or NLMSG_DONE),
well formed, for that request, within TIMEOUT (one exception, upstream's:
a DEL_DAEMON that stops a sync thread before it ever ran gets no answer;
see del_daemon).  Afterwards the namespace's
IPVS must still list, flush and take a valid service, and the kernel log
must be clean.

The seed is new on every run and printed; ``LVS_FUZZ_SEED=N`` runs the same
requests again (``./inv vm --kver K -- "LVS_FUZZ_SEED=N python -m pytest
tests/kernel/test_netlink_fuzz.py"``).  A failure shows the seed, the
request (index, how it was made, its bytes) and what came back.
"""

from __future__ import annotations

import collections
import os
import random
import socket
import struct
import subprocess
import time
from contextlib import contextmanager
from typing import Iterator

import pytest
from netaddr import IPAddress
from pyroute2 import netns as pyr_netns

from ipvsadm_py import abi, nl
from ipvsadm_py.api import IPVS
from ipvsadm_py.model import Dest, Forward, LocalAddress, Protocol, Service
from tools import nlfuzz
from tools.guest_init import kernel_log_problems

pytestmark = pytest.mark.kernel

NS = "lvs-fuzz"
COUNT = 10_240
TIMEOUT = 30.0          # seconds for one answer: a hang, not a slow guest
SOL_NETLINK = 270
NETLINK_EXT_ACK = 11


def fuzz_seed() -> int:
    chosen = os.environ.get("LVS_FUZZ_SEED")
    return int(chosen) if chosen else random.SystemRandom().randrange(1 << 32)


@contextmanager
def inside(name: str) -> Iterator[None]:
    """Sockets made in this block belong to namespace ``name``."""
    pyr_netns.pushns(name)
    try:
        yield
    finally:
        pyr_netns.popns()


@pytest.fixture
def fuzz_ns() -> Iterator[str]:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"], check=True)
    try:
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def fuzz_socket(name: str) -> socket.socket:
    with inside(name):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_GENERIC)
    sock.bind((0, 0))
    sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.settimeout(TIMEOUT)
    return sock


def receiver(sock: socket.socket):
    def receive() -> bytes | None:
        try:
            return sock.recv(1 << 20)
        except socket.timeout:
            return None
    return receive


def probe(family: int, seq: int) -> nlfuzz.Case:
    """A GET_INFO with an ACK: sent after a request the kernel must drop
    silently, its answer must be the next thing to arrive."""
    data = (nlfuzz.NLMSG_HDR.pack(nlfuzz.NLMSG_HDR.size + nlfuzz.GENL_HDR.size, family,
                                  abi.NLM_F_REQUEST | abi.NLM_F_ACK, seq, 0)
            + nlfuzz.GENL_HDR.pack(abi.CMD_GET_INFO, abi.GENL_VERSION, 0))
    return nlfuzz.Case(-1, abi.CMD_GET_INFO, abi.NLM_F_REQUEST | abi.NLM_F_ACK, data, seq,
                       what="probe")


def failure(seed: int, case: nlfuzz.Case, answer: nlfuzz.Answer, cause: str = "") -> str:
    got = "\n".join(f"  type {kind} flags {flags:#x} seq {seq}: {payload[:256].hex()}"
                    for kind, flags, seq, _pid, payload in answer.messages) or "  nothing"
    return (f"seed {seed} (LVS_FUZZ_SEED={seed} reproduces it): {answer.problem}"
            f"{' ' + cause if cause else ''}\n{case.describe()}\nreceived:\n{got}")


def final_errno(answer: nlfuzz.Answer) -> int | str:
    """The answer's errno (0 = ACK) or 'done'/'silent', for the summary."""
    for kind, _flags, _seq, _pid, payload in reversed(answer.messages):
        if kind == abi.NLMSG_ERROR:
            return -struct.unpack_from("=i", payload)[0]
        if kind == abi.NLMSG_DONE:
            return "done"
    return "silent"


def daemon_states(sock: socket.socket, family: int, portid: int, seq: int) -> set[int]:
    """The states (1 master, 2 backup) of the namespace's running sync
    daemons, from a GET_DAEMON dump."""
    flags = abi.NLM_F_REQUEST | abi.NLM_F_DUMP
    payload = nlfuzz.GENL_HDR.pack(abi.CMD_GET_DAEMON, abi.GENL_VERSION, 0)
    data = nlfuzz.NLMSG_HDR.pack(nlfuzz.NLMSG_HDR.size + len(payload), family, flags,
                                 seq, 0) + payload
    dump = nlfuzz.Case(-1, abi.CMD_GET_DAEMON, flags, data, seq, what="daemon list")
    sock.send(data)
    answer = nlfuzz.judge(dump, receiver(sock), family, portid)
    assert not answer.problem, f"listing the sync daemons: {answer.problem}"
    states = set()
    for kind, _flags, _seq, _pid, body in answer.messages:
        if kind == family:
            nest = _attr(body[nlfuzz.GENL_HDR.size:], 3)            # IPVS_CMD_ATTR_DAEMON
            state = _attr(nest or b"", 1)                            # ..._DAEMON_ATTR_STATE
            if state is not None and len(state) >= 4:
                states.add(struct.unpack_from("=I", state)[0])
    return states


def _attr(data: bytes, wanted: int) -> bytes | None:
    """The payload of the first attribute of type ``wanted`` in ``data``."""
    pos = 0
    while pos + nlfuzz.NLA_HDR.size <= len(data):
        length, kind = nlfuzz.NLA_HDR.unpack_from(data, pos)
        if length < nlfuzz.NLA_HDR.size:
            return None
        if kind & nlfuzz.NLA_TYPE_MASK == wanted:
            return data[pos + nlfuzz.NLA_HDR.size:pos + length]
        pos += (length + 3) & ~3
    return None


def del_daemon(sock: socket.socket, family: int, portid: int, seed: int,
               case: nlfuzz.Case) -> int | str:
    """Send a DEL_DAEMON case and judge it; its outcome for the summary.

    The kernel runs a netlink request inside the sender's send(), so a
    probe sent right after is answered after it.  A DEL_DAEMON that stops
    a sync thread which has not run yet gets no answer at all: the
    thread's kthread_stop() returns -EINTR (the thread ends without
    running its function), stop_sync_thread() passes that on, and
    netlink_rcv_skb() sends no ACK and no error for -EINTR (upstream, both
    kernel lines; the daemon is stopped all the same).  A guest whose
    CPUs are busy elsewhere leaves a thread started a few requests earlier
    unscheduled that long.  Exactly that is accepted: no answer, the probe
    answered next, and one daemon fewer running than before."""
    before = daemon_states(sock, family, portid, case.seq + (1 << 29))
    sock.send(case.data)
    check = probe(family, case.seq + (1 << 30))
    sock.send(check.data)
    receive = receiver(sock)
    first = receive()
    messages, _framing = nlfuzz.split_messages(first or b"")
    if first is not None and messages and messages[0][2] == check.seq:
        # the probe's answer (its data message, then its ACK) came first
        probe_answer = nlfuzz.Answer()
        nlfuzz.take(probe_answer, first, check, family, portid)
        if not probe_answer.done and not probe_answer.problem:
            rest = nlfuzz.judge(check, receive, family, portid)
            probe_answer.messages += rest.messages
            probe_answer.done, probe_answer.problem = rest.done, rest.problem
        assert probe_answer.done and not probe_answer.problem, failure(
            seed, case, probe_answer, "(answering the probe sent after it)")
        after = daemon_states(sock, family, portid, case.seq + (1 << 29) + 1)
        assert len(after) < len(before), failure(
            seed, case, nlfuzz.Answer(problem="no answer"),
            f"(and no daemon stopped: running {sorted(before)} before, {sorted(after)} after)")
        return "stopped, no answer (-EINTR)"
    answer = nlfuzz.Answer()
    if first is not None:
        nlfuzz.take(answer, first, case, family, portid)
    if not answer.done and not answer.problem:
        rest = nlfuzz.judge(case, receive, family, portid)
        answer.messages += rest.messages
        answer.done, answer.problem = rest.done, rest.problem
    assert not answer.problem, failure(seed, case, answer)
    probe_answer = nlfuzz.judge(check, receive, family, portid)
    assert not probe_answer.problem, failure(seed, case, probe_answer,
                                             "(answering the probe sent after it)")
    return final_errno(answer)


def run_cases(sock: socket.socket, family: int, seed: int) -> dict[int, collections.Counter]:
    """Send every case, judge every answer; the outcome counts per command."""
    portid = sock.getsockname()[0]
    receive = receiver(sock)
    cases = nlfuzz.Fuzzer(seed).cases(family, COUNT)
    assert {c.cmd for c in cases} >= set(nlfuzz.COMMANDS)
    outcomes: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for case in cases:
        if case.cmd == abi.CMD_DEL_DAEMON and case.answered:
            outcomes[case.cmd][del_daemon(sock, family, portid, seed, case)] += 1
            continue
        sock.send(case.data)
        if case.answered:
            answer = nlfuzz.judge(case, receive, family, portid)
            assert not answer.problem, failure(seed, case, answer)
            outcomes[case.cmd][final_errno(answer)] += 1
        else:
            check = probe(family, case.seq + (1 << 30))
            sock.send(check.data)
            answer = nlfuzz.judge(check, receive, family, portid)
            assert not answer.problem, failure(seed, case, answer,
                                               "(answering the probe sent after it)")
            outcomes[case.cmd]["silent"] += 1
    return outcomes


def check_state(name: str) -> None:
    """IPVS of the namespace lists, flushes, and takes a valid service."""
    with inside(name):
        ipvs = IPVS()
    with ipvs:
        ipvs.info()
        ipvs.timeouts()
        ipvs.daemons()
        for svc, _dests in ipvs.table():
            ipvs.laddrs(svc)
        ipvs.flush()
        assert ipvs.services() == []
        svc = Service(protocol=Protocol.TCP, addr=IPAddress("10.99.0.1"), port=80,
                      scheduler="rr")
        ipvs.add_service(svc)
        ipvs.add_dest(svc, Dest(addr=IPAddress("10.99.1.1"), port=80, forward=Forward.MASQ))
        ipvs.add_laddr(svc, LocalAddress(addr=IPAddress("10.99.2.1")))
        (got, dests), = ipvs.table()
        assert got.key == svc.key and [d.key for d in dests] == [
            Dest(addr=IPAddress("10.99.1.1"), port=80).key]
        assert [str(la.addr) for la in ipvs.laddrs(svc)] == ["10.99.2.1"]
        ipvs.delete_service(svc)
        assert ipvs.services() == []


def test_malformed_requests_get_proper_answers(fuzz_ns, kmsg_mark):
    seed = fuzz_seed()
    print(f"netlink fuzz seed {seed}")
    with inside(fuzz_ns):
        family = nl.resolve_family()
    sock = fuzz_socket(fuzz_ns)
    started = time.monotonic()
    try:
        outcomes = run_cases(sock, family, seed)
    finally:
        sock.close()
    print(f"{COUNT} requests in {time.monotonic() - started:.0f} s; answers per command "
          "(errno, 0 = ACK):")
    for cmd in sorted(outcomes):
        print(f"  {cmd:3}: {dict(outcomes[cmd].most_common())}")
    # the requests got past the parsers: some of each kind were carried out
    for cmd in (abi.CMD_NEW_SERVICE, abi.CMD_NEW_DEST, abi.CMD_NEW_LADDR,
                abi.CMD_GET_SERVICE, abi.CMD_GET_DEST, abi.CMD_GET_LADDR, abi.CMD_FLUSH):
        assert outcomes[cmd][0] + outcomes[cmd]["done"] > 0, (seed, cmd, outcomes[cmd])
    check_state(fuzz_ns)
    assert kernel_log_problems(kmsg_mark()) == []
