"""FULLNAT and SYNPROXY sessions survive a balancer fail-over (connection sync).

::

    client ---- lb1 (master sync daemon) ---- rs1
           \\--- lb2 (backup sync daemon) ---/
                 lb1 s0 ---- s0 lb2: the sync link

tests/kernel/sync_support.py has the lab: lb1 holds the gateway addresses,
the VIPs and the local addresses until a fail-over moves them to lb2.  The
same services are configured on both: TCP with FULLNAT and SYNPROXY (TOA
on), UDP with FULLNAT.  The master is started with ipvsadm-py, the backup
with the stock ipvsadm.  Streams cross the fail-over and must lose nothing;
crafted and fuzzed sync messages go to the backup's daemon.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import time
from pathlib import Path

import pytest
from netaddr import IPAddress

from ipvsadm_py import IPVS, Dest, Forward, LocalAddress, Protocol, Service
from tools import netlab, whoami
from tools.guest_init import kernel_log_problems
from tools.keepalived_lab import record

from tests.kernel import sync_support as ss

pytestmark = pytest.mark.kernel

TPORT, UPORT, BULK_PORT = 80, 53, 54
TOA_ENABLED = Path("/sys/module/toa/parameters/enabled")


def _services(pair: ss.Pair, lb: str, family: int, *, laddr: bool = True,
              dest: bool = True) -> None:
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    mask = 128 if family == 6 else 0xFFFFFFFF
    with pair.inside(lb):
        ipvs = IPVS()
    with ipvs:
        for proto, port, synproxy in ((Protocol.TCP, TPORT, True), (Protocol.UDP, UPORT, False),
                                      (Protocol.UDP, BULK_PORT, False)):
            svc = Service(protocol=proto, addr=IPAddress(ss.VIP[family]), port=port, af=af,
                          scheduler="rr", netmask=mask, synproxy=synproxy)
            ipvs.add_service(svc)
            if laddr:
                ipvs.add_laddr(svc, LocalAddress(addr=IPAddress(ss.LADDR[family])))
            if dest:
                ipvs.add_dest(svc, Dest(addr=IPAddress(ss.RS[family]), port=port, af=af,
                                        forward=Forward.FULLNAT, weight=1))


@pytest.fixture
def toa_on():
    """toa.ko (loaded with our modules) reports the client as the peer."""
    if not TOA_ENABLED.exists():
        yield False
        return
    before = TOA_ENABLED.read_text().strip()
    TOA_ENABLED.write_text("Y")
    yield True
    TOA_ENABLED.write_text(before)


@pytest.fixture
def pair():
    with ss.Pair() as the_pair:
        yield the_pair


@pytest.fixture
def servers(pair):
    """On rs1, for each family: TCP whoami (then echo), UDP whoami, and a UDP
    sink for the bulk sessions."""
    started = []
    for family in (4, 6):
        for kind, port, cls in ((socket.SOCK_STREAM, TPORT, whoami.TcpWhoami),
                                (socket.SOCK_DGRAM, UPORT, whoami.UdpWhoami)):
            started.append(cls(whoami.listen(pair.inside, pair.rs, family, kind, port,
                                             ss.RS[family]), "rs1"))
    sinks = [whoami.listen(pair.inside, pair.rs, f, socket.SOCK_DGRAM, BULK_PORT, ss.RS[f])
             for f in (4, 6)]
    yield {(s.sock.family, s.sock.type): s for s in started}
    for one in started:
        one.close()
    for sock in sinks:
        sock.close()


def _session_on(pair: ss.Pair, ns: str, proto: str, cport: int) -> list[str]:
    mark = f" {cport:04X} "
    return [line for line in pair.conns(ns) if line.startswith(proto) and mark in line]


def _connect(pair: ss.Pair, family: int, port: int, kind: int) -> socket.socket:
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    with pair.inside(pair.client):
        sock = socket.socket(af, kind)
    sock.settimeout(20)
    sock.connect((ss.VIP[family], port))
    return sock


# ---------------------------------------------------------------- fail-over

def _tcp_stream_across_fail_over(pair: ss.Pair, family: int, toa: bool,
                                 before_fail_over=None) -> None:
    sock = _connect(pair, family, TPORT, socket.SOCK_STREAM)
    cport = sock.getsockname()[1]
    sock.sendall(b"hello\n")
    name, peer, _ = sock.recv(256).decode().split()
    assert name == "rs1"
    if toa:
        assert peer == ss.CLIENT[family], "the real server should see the client through TOA"

    def fail_over() -> None:
        # the backup must hold the session (synced after the master's 3rd,
        # 53rd, ... packet of it) before the master goes away
        netlab.wait_for(lambda: _session_on(pair, pair.lbs[1], "TCP", cport), 60,
                        what="the session on the backup")
        if before_fail_over:
            before_fail_over()
        pair.fail_over()

    ss.echo_stream(sock, fail_over)
    sock.close()
    # the second half went through the backup, which holds the session
    assert _session_on(pair, pair.lbs[1], "TCP", cport)


def _udp_flow_across_fail_over(pair: ss.Pair, family: int) -> None:
    sock = _connect(pair, family, UPORT, socket.SOCK_DGRAM)
    sock.settimeout(1)
    cport = sock.getsockname()[1]
    peers = set()
    for index in range(40):
        if index == 20:
            netlab.wait_for(lambda: _session_on(pair, pair.lbs[1], "UDP", cport), 60,
                        what="the session on the backup")
            pair.fail_over()
        payload = f"seq {index}".encode()
        for _attempt in range(20):       # UDP: a datagram lost in the switch is sent again
            sock.send(payload)
            try:
                reply = sock.recv(4096)
            except TimeoutError:
                continue
            if reply.endswith(payload):
                break
        else:
            raise AssertionError(f"datagram {index} never answered")
        _name, peer, port = reply.split(b" | ")[0].decode().split()
        peers.add((peer, int(port)))
    sock.close()
    # one session: the real server saw the same local address and port
    # before and after the fail-over
    assert len(peers) == 1, peers
    assert next(iter(peers))[0] == ss.LADDR[family]


def _check_counters(pair: ss.Pair) -> None:
    backup = pair.ext_stats(pair.lbs[1])
    master = pair.ext_stats(pair.lbs[0])
    assert master["sync_fullnat_sent"] >= 1, master
    assert backup["sync_fullnat_recv"] >= 1, backup
    for name in ("sync_fullnat_bad", "sync_fullnat_no_laddr", "sync_fullnat_no_dest",
                 "sync_fullnat_conflict", "sync_msg_dropped"):
        assert backup[name] == 0, (name, backup)


FAMILIES = pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])


@FAMILIES
def test_tcp_stream_survives_fail_over(pair, servers, toa_on, family, kmsg_mark):
    """A TCP stream through FULLNAT+SYNPROXY, with TOA, goes on through the
    backup when the master goes away: every byte echoed, no reset."""
    for lb in pair.lbs:
        _services(pair, lb, family)
    pair.start_daemons()
    _tcp_stream_across_fail_over(pair, family, toa_on)
    _check_counters(pair)
    assert kernel_log_problems(kmsg_mark()) == []


@FAMILIES
def test_udp_flow_survives_fail_over(pair, servers, family, kmsg_mark):
    """A UDP flow through FULLNAT goes on through the backup with the same
    local address and port: the real server sees one session."""
    for lb in pair.lbs:
        _services(pair, lb, family)
    pair.start_daemons()
    _udp_flow_across_fail_over(pair, family)
    _check_counters(pair)
    assert kernel_log_problems(kmsg_mark()) == []


def test_synced_session_holds_its_local_port(pair, servers):
    """A synced session's local port is taken on the backup: the backup's
    own new sessions never get that port (the range is narrowed to it and
    one other), and the session's entry lists it."""
    family = 4
    for lb in pair.lbs:
        _services(pair, lb, family)
    pair.start_daemons()
    sock = _connect(pair, family, UPORT, socket.SOCK_DGRAM)
    for _ in range(4):
        sock.send(b"x")
        sock.recv(4096)
    cport = sock.getsockname()[1]
    line = netlab.wait_for(lambda: _session_on(pair, pair.lbs[1], "UDP", cport), 60,
                       what="the session on the backup")[0]
    lport = int(line.split()[-1], 16)
    spare = lport + 1 if lport < 65535 else lport - 1
    # the backup's own sessions: only lport and one other port in its range
    pair.sh(pair.lbs[1], f"sysctl -qw net.ipv4.vs.fullnat_lport_min={min(lport, spare)} "
                         f"net.ipv4.vs.fullnat_lport_max={max(lport, spare)}")
    pair.fail_over()
    others = []
    for _ in range(3):
        other = _connect(pair, family, UPORT, socket.SOCK_DGRAM)
        other.settimeout(3)
        other.send(b"y")
        try:
            others.append(other.recv(4096).split(b" | ")[0].decode().split()[2])
        except TimeoutError:
            others.append(None)
        other.close()
    sock.send(b"z")
    assert int(sock.recv(4096).split(b" | ")[0].decode().split()[2]) == lport
    # the first new session takes the other port; the synced one keeps lport
    assert others[0] == str(spare), others
    assert str(lport) not in others, others
    sock.close()


def test_former_master_lets_its_copy_expire_silently(pair, servers):
    """A balancer that forwarded a session and is now a backup only (as
    keepalived makes it on losing VRRP) lets its stale copy expire without
    resetting it (conn_expire_tcp_rst is on): the session, served by the new
    master, goes on."""
    family = 4
    for lb in pair.lbs:
        _services(pair, lb, family)
    old, new = pair.lbs
    pair.sh(old, "ipvsadm --set 6 0 0")     # its copy expires 6 s after its last packet
    pair.start_daemons()
    sock = _connect(pair, family, TPORT, socket.SOCK_STREAM)
    cport = sock.getsockname()[1]
    sock.sendall(b"hello\n")
    sock.recv(256)
    for _ in range(4):
        sock.sendall(b"x" * 100)
        sock.recv(4096)
    netlab.wait_for(lambda: _session_on(pair, new, "TCP", cport), 60,
                    what="the session on the backup")
    # the old master turns backup and gives its addresses away, its links
    # stay up: a reset it sent would reach both ends
    pair.sh(old, "ipvsadm --stop-daemon master && "
                 "ipvsadm --start-daemon backup --mcast-interface s0")
    pair.ip_batch(old, pair._moving("del"))
    pair.activate(new)
    before = pair.ext_stats(old)["conn_expire_tcp_rst"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline or _session_on(pair, old, "TCP", cport):
        sock.sendall(b"y" * 100)            # through the new master
        assert len(sock.recv(4096)) == 100
        time.sleep(1)
        assert time.monotonic() < deadline + 60, "the old copy did not expire"
    assert pair.ext_stats(old)["conn_expire_tcp_rst"] == before
    sock.sendall(b"z" * 100)
    assert len(sock.recv(4096)) == 100, "the session should still work"
    sock.close()


# ---------------------------------------------------------------- many sessions

def _new_sessions(pair: ss.Pair, first_port: int, count: int) -> None:
    """``count`` UDP sessions to the bulk service, one datagram each from
    client ports ``first_port`` upwards."""
    for port in range(first_port, first_port + count):
        with pair.inside(pair.client):
            one = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with one:
            one.bind((ss.CLIENT[4], port))
            one.sendto(b"s", (ss.VIP[4], BULK_PORT))


def test_ten_thousand_sessions_synced(pair, servers, kver):
    """10,000 live UDP sessions on the master: the backup holds all of them.
    The memory a session takes is recorded (build/guest/KVER/sync-measures.json)."""
    family, count = 4, 10_000
    for lb in pair.lbs:
        _services(pair, lb, family)
    # sync every session on its first packet; room for the bursts
    pair.sh(pair.lbs[0], "sysctl -qw net.ipv4.vs.sync_threshold='1 0'")
    pair.sh(pair.lbs[1], "sysctl -qw net.ipv4.vs.sync_sock_size=4194304")
    pair.start_daemons()
    memory_before = _slab_bytes()
    sent = 0
    while sent < count:
        batch = min(1000, count - sent)
        _new_sessions(pair, 20000 + sent, batch)
        sent += batch
        netlab.wait_for(lambda: pair.ext_stats(pair.lbs[1])["sync_fullnat_recv"] >= sent, 120,
                    interval=0.5, what=f"{sent} sessions on the backup")
    master = [line for line in pair.conns(pair.lbs[0]) if f" {BULK_PORT:04X} " in line]
    backup = [line for line in pair.conns(pair.lbs[1]) if f" {BULK_PORT:04X} " in line]
    assert len(master) == count
    assert len(backup) == count
    # the same client port and local tuple on both sides
    def tuples(lines):
        return sorted((f[2], f[-2], f[-1]) for f in (line.split() for line in lines))
    assert tuples(master) == tuples(backup)
    stats = pair.ext_stats(pair.lbs[1])
    assert stats["sync_fullnat_recv"] == count and stats["sync_fullnat_conflict"] == 0
    memory_after = _slab_bytes()
    # master and backup both hold ``count`` more sessions in this guest
    record(kver, "sync 10,000 sessions", {
        "sessions": count, "measured_in": memory_after[0],
        "bytes_per_session": round((memory_after[1] - memory_before[1]) / (2 * count))},
        file="sync-measures.json")


@contextlib.contextmanager
def _meanwhile(pair: ss.Pair, ns: str, on: str, off: str):
    """Shell commands ``on`` in ``ns`` for the block, ``off`` after it."""
    pair.sh(ns, on)
    try:
        yield
    finally:
        pair.sh(ns, off)


def _steady(read, quiet: float = 4.0, timeout: float = 30.0) -> None:
    """Wait until ``read()`` has not changed for ``quiet`` seconds."""
    value, since, deadline = read(), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"still changing after {timeout:.0f} s"
        time.sleep(0.5)
        now = read()
        if now != value:
            value, since = now, time.monotonic()


def test_sync_messages_counted_and_losses_seen(pair, servers, kmsg_mark):
    """The master counts the messages it sends and the ones it loses (a send
    that fails, a full queue), the backup the ones it receives: without
    trouble they agree, and each kind of loss is counted where it happens."""
    master, backup = pair.lbs
    for lb in pair.lbs:
        _services(pair, lb, 4)
    pair.sh(master, "sysctl -qw net.ipv4.vs.sync_threshold='1 0'")
    # the master's socket gets the smallest send buffer: a message held
    # on the sync link then blocks the daemon
    pair.sh(master, "sysctl -qw net.ipv4.vs.sync_sock_size=1")
    pair.sh(backup, "sysctl -qw net.ipv4.vs.sync_sock_size=4194304")
    pair.start_daemons()

    def counts() -> dict[str, int]:
        m, b = pair.ext_stats(master), pair.ext_stats(backup)
        return {"sent": m["sync_msg_sent"], "send_error": m["sync_msg_send_error"],
                "queue_full": m["sync_msg_queue_full"], "recv": b["sync_msg_recv"],
                "sessions": b["sync_fullnat_recv"], "backup_sent": b["sync_msg_sent"],
                "master_recv": m["sync_msg_recv"]}

    # 1. nothing lost: what the master sent, the backup received
    _new_sessions(pair, 20000, 300)
    netlab.wait_for(lambda: counts()["sessions"] >= 300, 60, interval=0.5,
                    what="300 sessions on the backup")
    netlab.wait_for(lambda: (lambda c: c["sent"] == c["recv"])(counts()), 30, interval=0.5,
                    what="the backup to receive every message sent")
    clean = counts()
    assert clean["sent"] >= 300 // 40, clean          # at most ~40 entries a message
    assert clean["send_error"] == clean["queue_full"] == 0, clean
    assert clean["backup_sent"] == clean["master_recv"] == 0, clean

    # 2. sends fail (a filter drops them on the master): counted as lost
    drop = ("nft add table ip synclost && "
            "nft add chain ip synclost out '{ type filter hook output priority 0; }' && "
            f"nft add rule ip synclost out udp dport {ss.SYNC_PORT} drop")
    with _meanwhile(pair, master, drop, "nft delete table ip synclost"):
        _new_sessions(pair, 21000, 100)
        netlab.wait_for(lambda: counts()["send_error"] > 0, 30, interval=0.5,
                        what="a send error counted")
        # the last, partly filled message leaves within about 3 s (flush
        # time 2 s, checked every second): it must fail too
        _steady(lambda: counts()["send_error"])
    failed = counts()
    assert failed["recv"] == clean["recv"] and failed["sessions"] == clean["sessions"], failed
    assert failed["sent"] == clean["sent"], "a failed send must not count as sent"
    assert failed["queue_full"] == 0, failed

    # 3. the sync link is slow and the queue short: the daemon lags, and
    # the messages past the queue are counted as dropped
    slow = ("sysctl -qw net.ipv4.vs.sync_qlen_max=2 && "
            "tc qdisc add dev s0 root tbf rate 8kbit burst 1600 limit 100000")
    # (the link is then made fast, not removed: the messages it holds
    # still arrive, so every message counted as sent is received)
    with _meanwhile(pair, master, slow,
                    "tc qdisc change dev s0 root tbf rate 1gbit burst 1600 limit 100000; "
                    "sysctl -qw net.ipv4.vs.sync_qlen_max=10000"):
        _new_sessions(pair, 22000, 2000)
        netlab.wait_for(lambda: counts()["queue_full"] > 0, 60, interval=0.5,
                        what="a full queue counted")
    lagged = counts()
    assert lagged["send_error"] == failed["send_error"], lagged

    # 4. the daemon recovers: new sessions reach the backup again
    _new_sessions(pair, 25000, 50)

    def missing() -> list[int]:
        held = {int(line.split()[2], 16) for line in pair.conns(backup)
                if line.startswith("UDP")}
        return [port for port in range(25000, 25050) if port not in held]
    netlab.wait_for(lambda: not missing(), 60, interval=0.5,
                    what="the sessions made after the losses on the backup")
    assert counts()["sessions"] < 300 + 100 + 2000 + 50, "some sessions should have been lost"
    # a retry after a full socket buffer is not a second message, and a
    # message dropped at the full queue was never sent
    netlab.wait_for(lambda: (lambda c: c["sent"] == c["recv"])(counts()), 30, interval=0.5,
                    what="the backup to receive every message sent")
    assert kernel_log_problems(kmsg_mark()) == []


def _slab_bytes() -> tuple[str, int]:
    """Bytes in the ip_vs_conn slab, or, where the kernel merged that cache
    with others (no slub_nomerge), all unreclaimable slab memory."""
    for line in Path("/proc/slabinfo").read_text().splitlines():
        if line.startswith("ip_vs_conn "):
            fields = line.split()
            return "ip_vs_conn slab", int(fields[1]) * int(fields[3])
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("SUnreclaim:"):
            return "SUnreclaim (whole guest)", int(line.split()[1]) * 1024
    raise AssertionError("neither /proc/slabinfo nor /proc/meminfo says how much slab is used")


# ---------------------------------------------------------------- hostile input

def _crafted(sock: socket.socket, family: int, cport: int, options: bytes, **kw) -> None:
    ss.send(sock, ss.message([ss.entry(family, proto=socket.IPPROTO_TCP, cport=cport,
                                       vport=TPORT, dport=TPORT, options=options, **kw)]))


def test_backup_refuses_what_it_cannot_place(pair, servers):
    """Crafted messages to the backup: an unknown local address, a real
    server it does not have, a local tuple in use, a malformed, a
    version-0, a FULLNAT entry without our parameter and one whose
    parameter's method differs from the backup's server are not created
    and each is counted; a newer version's longer parameter is read."""
    family = 4
    _services(pair, pair.lbs[1], family)
    pair.sh(pair.lbs[1], "ipvsadm --start-daemon backup --mcast-interface s0")
    sock = ss.sender(pair, pair.lbs[0])
    seq = ss.SEQ_INIT | ss.SEQ_RS_ISN | ss.SEQ_C_NXT | ss.SP_EST
    flags = ss.CONN_F_FULLNAT
    both = ss.FNAT_F_FULLNAT | ss.FNAT_F_SYNPROXY
    good = dict(lport=40000, flags=both, delta=7, rs_isn=9, c_nxt=11, sp_delta=13,
                seq_flags=seq)
    cases = [  # client port, option, extra entry fields, counter that moves
        (1001, ss.fnat_option(family, **{**good, "laddr": "10.0.3.99"}), {},
         "sync_fullnat_no_laddr"),
        (1002, ss.fnat_option(family, **good), {"daddr": "10.0.2.99"}, "sync_fullnat_no_dest"),
        (1003, ss.fnat_option(family, **{**good, "version": 0}), {}, "sync_fullnat_bad"),
        (1004, ss.fnat_option(family, **good)[:-3], {}, None),      # truncated: whole message
        (1005, b"", {}, "sync_fullnat_bad"),
        (1006, ss.fnat_option(family, **{**good, "lport": 0}), {}, "sync_fullnat_bad"),
        (1007, ss.fnat_option(family, **good) * 2, {}, "sync_fullnat_bad"),
        # SYNPROXY state only, for a session the backup's server makes FULLNAT
        (1008, ss.fnat_option(family, **{**good, "flags": ss.FNAT_F_SYNPROXY}), {},
         "sync_fullnat_bad"),
    ]
    for cport, option, extra, counter in cases:
        before = pair.ext_stats(pair.lbs[1])
        raw = option
        if cport == 1004:   # the option's length says more than the entry has
            raw = bytes([ss.OPT_FNAT, 40]) + option[2:]
        _crafted(sock, family, cport, raw, flags=flags, **extra)
        counter = counter or "sync_msg_dropped"
        netlab.wait_for(lambda: pair.ext_stats(pair.lbs[1])[counter] > before[counter], 20,
                    what=f"{counter} after the entry of client port {cport}")
        assert not _session_on(pair, pair.lbs[1], "TCP", cport)
    # accepted: version 1, and a version 2 with 8 more bytes
    for cport, version, extra in ((2001, 1, b""), (2002, 2, b"\x01" * 8)):
        _crafted(sock, family, cport,
                 ss.fnat_option(family, **{**good, "lport": 40000 + cport, "version": version},
                                extra=extra), flags=flags)
        line = netlab.wait_for(lambda: _session_on(pair, pair.lbs[1], "TCP", cport), 20,
                           what=f"the session of client port {cport}")[0]
        assert line.split()[-1] == f"{40000 + cport:04X}", line
    # a second session on the same local tuple (same real server): refused
    before = pair.ext_stats(pair.lbs[1])
    _crafted(sock, family, 3001,
             ss.fnat_option(family, **{**good, "lport": 42001}), flags=flags)
    netlab.wait_for(lambda: pair.ext_stats(pair.lbs[1])["sync_fullnat_conflict"] >
                before["sync_fullnat_conflict"], 20, what="the conflict counted")
    assert not _session_on(pair, pair.lbs[1], "TCP", 3001)
    assert _session_on(pair, pair.lbs[1], "TCP", 2001)
    sock.close()


def _mutations(base: list[bytes], count: int, rng: random.Random):
    for _ in range(count):
        msg = bytearray(rng.choice(base))
        how = rng.randrange(5)
        if how == 0:            # flip bytes
            for _ in range(rng.randint(1, 8)):
                msg[rng.randrange(len(msg))] = rng.randrange(256)
        elif how == 1:          # truncate, header size kept or fixed up
            msg = msg[:rng.randrange(1, len(msg))]
            if rng.random() < 0.5 and len(msg) >= 4:
                struct.pack_into("!H", msg, 2, len(msg))
        elif how == 2:          # random bytes after a valid header
            msg = msg[:8] + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
            struct.pack_into("!H", msg, 2, len(msg))
        elif how == 3:          # an option's length or type changed
            pos = rng.randrange(8, len(msg))
            msg[pos] = rng.choice([0, 1, 2, 3, ss.OPT_FNAT, ss.OPT_FNAT | 0x40, 255])
        else:                   # entry size field
            if len(msg) > 12:
                struct.pack_into("!H", msg, 10, rng.randrange(65536))
        yield bytes(msg)


def test_fuzzed_messages_break_nothing(pair, servers, toa_on, kmsg_mark):
    """10,000 malformed messages reach the backup while a synced session
    lives: they are counted, the kernel logs no problem, and the session
    still survives the fail-over afterwards."""
    family = 4
    for lb in pair.lbs:
        _services(pair, lb, family)
    pair.start_daemons()
    rng = random.Random(8848)
    good = ss.fnat_option(family, lport=41000, flags=ss.FNAT_F_FULLNAT | ss.FNAT_F_SYNPROXY,
                          delta=1, rs_isn=2, c_nxt=3, sp_delta=4,
                          seq_flags=ss.SEQ_INIT | ss.SEQ_RS_ISN | ss.SP_EST)
    # other clients than the streaming one: a mutation never names its session
    c4, c6 = "10.0.1.50", "2001:db8:1::50"
    base = [
        ss.message([ss.entry(4, proto=socket.IPPROTO_TCP, cport=5000 + i, vport=TPORT,
                             dport=TPORT, caddr=c4, options=good) for i in range(3)]),
        ss.message([ss.entry(4, proto=socket.IPPROTO_UDP, cport=6000, vport=UPORT, dport=UPORT,
                             caddr=c4, options=ss.fnat_option(4, lport=41001))]),
        ss.message([ss.entry(4, proto=socket.IPPROTO_TCP, cport=7000, vport=TPORT, dport=TPORT,
                             caddr=c4, flags=ss.CONN_F_MASQ)]),
        ss.message([ss.entry(6, proto=socket.IPPROTO_TCP, cport=8000, vport=TPORT, dport=TPORT,
                             caddr=c6, options=ss.fnat_option(6, lport=41002))]),
    ]
    sock = ss.sender(pair, pair.lbs[0])
    before = pair.ext_stats(pair.lbs[1])

    def fuzz() -> None:
        for index, msg in enumerate(_mutations(base, 10_000, rng)):
            ss.send(sock, msg)
            if index % 200 == 199:
                time.sleep(0.05)    # the backup thread keeps up; nothing is lost in its socket

    _tcp_stream_across_fail_over(pair, family, toa_on, before_fail_over=fuzz)
    after = pair.ext_stats(pair.lbs[1])
    counted = sum(after[n] - before[n] for n in ("sync_msg_dropped", "sync_conn_skipped",
                                                  "sync_fullnat_bad"))
    assert counted >= 1000, {n: after[n] - before[n] for n in after if n.startswith("sync")}
    sock.close()
    assert kernel_log_problems(kmsg_mark()) == []
