"""An accept/close storm while another kprobe keeps one CPU busy.

Lab as in test_toa.py, plus two things that make TCP run in softirq on a
CPU where another probe's handler is running:

  * RPS on the tun device steers every segment of the lab to the "busy"
    CPU: the writer (this process, on the other CPUs) queues it there and
    an IPI makes that CPU process it in NET_RX softirq, interrupting
    whatever runs there;
  * a spinner process pinned to the busy CPU calls getppid() in a loop,
    and a BPF program attached as a kprobe to the getppid system call
    busy-loops for a while on each call: most of the busy CPU's time is
    spent inside that probe's handler (preemption off, interrupts on).

A kprobe hit while another kprobe's handler runs on the same CPU is not
delivered (it counts in its nmissed).  toa.ko's hooks on
tcp_child_process, tcp_rcv_established and inet_sock_destruct run there:
a hook that is skipped loses a client, or leaves the record of a freed
socket behind for the next socket allocated at the same address.

Every connection carries a client address and port of its own, in TOA on
the handshake ACK or on the first data segment, and says which in its
payload; the server compares accept(), getpeername() and the payload.
The server closes first and the client then resets, so that the socket
is freed in softirq on the busy CPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import struct
import subprocess
import sys
import threading
from typing import Iterator

import pytest

from lvs_tools.toa_craft import CraftedConnection, HandshakeError, toa_option
from tests.kernel.toa_support import (LB4, NS, RS4, Counters, accept_peer, lab, live,
                                      stats, wait_records_freed)

pytestmark = pytest.mark.kernel
__all__ = ["lab"]

PORT = 8600
CONNECTIONS = 200
BUSY_FUNCTION = "__x64_sys_getppid"
LOOPS = 50_000          # iterations of the probe's busy loop per call

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_BPF, SYS_PERF_EVENT_OPEN = 321, 298
BPF_PROG_LOAD, BPF_PROG_TYPE_KPROBE = 5, 2
PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_SET_BPF = 0x2400, 0x40042408


def _insn(code: int, regs: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, regs, off, imm)


# r0 = 1 (count the hit); r1 = LOOPS; do r1 -= 1 while r1 != 0; exit
BUSY_PROG = (_insn(0xB7, 0x00, 0, 1) + _insn(0xB7, 0x01, 0, LOOPS) +
             _insn(0x17, 0x01, 0, 1) + _insn(0x55, 0x01, -2, 0) + _insn(0x95))


def _syscall(nr: int, *args) -> int:
    ret = _libc.syscall(ctypes.c_long(nr), *args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syscall {nr}: {os.strerror(err)}")
    return ret


def load_busy_prog() -> int:
    """The verifier walks each iteration of the loop (no log: it would be
    as long)."""
    insns = ctypes.create_string_buffer(BUSY_PROG, len(BUSY_PROG))
    license = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(struct.pack(
        "=IIQQIIQ", BPF_PROG_TYPE_KPROBE, len(BUSY_PROG) // 8, ctypes.addressof(insns),
        ctypes.addressof(license), 0, 0, 0), 128)
    return _syscall(SYS_BPF, ctypes.c_int(BPF_PROG_LOAD), attr, ctypes.c_uint(128))


class BusyProbe:
    """A kprobe (perf kprobe PMU) on BUSY_FUNCTION running the busy program;
    ``hits()`` counts the calls it handled on ``cpu``."""

    def __init__(self, cpu: int) -> None:
        self.prog_fd = load_busy_prog()
        pmu = int(open("/sys/bus/event_source/devices/kprobe/type").read())
        self.func = ctypes.create_string_buffer(BUSY_FUNCTION.encode())
        # perf_event_attr, PERF_ATTR_SIZE_VER1: type, size, config,
        # sample_period, sample_type, read_format, flags (disabled), wakeup,
        # bp_type, kprobe_func, probe_offset
        attr = ctypes.create_string_buffer(struct.pack(
            "=IIQQQQQIIQQ", pmu, 72, 0, 0, 0, 0, 1, 0, 0,
            ctypes.addressof(self.func), 0), 128)
        self.fd = _syscall(SYS_PERF_EVENT_OPEN, attr, ctypes.c_int(-1), ctypes.c_int(cpu),
                           ctypes.c_int(-1), ctypes.c_ulong(0))
        _syscall_ioctl(self.fd, PERF_EVENT_IOC_SET_BPF, self.prog_fd)
        _syscall_ioctl(self.fd, PERF_EVENT_IOC_ENABLE, 0)

    def hits(self) -> int:
        return struct.unpack("=Q", os.read(self.fd, 8))[0]

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.prog_fd)


def _syscall_ioctl(fd: int, request: int, arg: int) -> None:
    if _libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_long(arg)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ioctl {request:#x}: {os.strerror(err)}")


SPINNER = ("import os, sys\n"
           "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
           "while True:\n"
           "    os.getppid()\n")


@contextlib.contextmanager
def busy_cpu(cpu: int) -> Iterator[BusyProbe]:
    """The probe on getppid and a spinner calling it on ``cpu``."""
    probe = BusyProbe(cpu)
    spinner = subprocess.Popen([sys.executable, "-c", SPINNER, str(cpu)])
    try:
        yield probe
    finally:
        spinner.kill()
        spinner.wait()
        probe.close()


@contextlib.contextmanager
def rps_to(cpu: int) -> Iterator[None]:
    """Steer every segment the tun device receives to ``cpu``."""
    path = "/sys/class/net/toa0/queues/rx-0/rps_cpus"

    def write(mask: str) -> None:
        subprocess.run(["ip", "netns", "exec", NS, "sh", "-c", f"echo {mask} > {path}"],
                       check=True)
    write(f"{1 << cpu:x}")
    try:
        yield
    finally:
        write("0")


@contextlib.contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """This thread (and the threads it starts) on ``cpus``."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def client_of(index: int) -> tuple[str, int]:
    """A distinct client address and port for every connection."""
    return f"198.51.{100 + index // 250}.{index % 250 + 1}", 20000 + index


class Storm:
    """Crafted connections from the balancer's address (clients) and a
    server that checks what each accepted socket reports."""

    def __init__(self, lab, server: socket.socket, count: int, clients: int = 2) -> None:
        self.lab, self.server, self.count = lab, server, count
        self.next = 0
        self.lock = threading.Lock()
        self.wrong: list[str] = []
        self.failed: list[str] = []
        self.served = 0
        self.threads = [threading.Thread(target=self._client, daemon=True)
                        for _ in range(clients)]
        self.threads.append(threading.Thread(target=self._serve, daemon=True))

    def run(self) -> None:
        for thread in self.threads:
            thread.start()
        for thread in self.threads:
            thread.join(timeout=1800)

    def _take(self) -> tuple[int, CraftedConnection] | None:
        """The next connection's number, and the connection (its source
        port is unique: Lab.connection() counts ports)."""
        with self.lock:
            if self.next >= self.count:
                return None
            self.next += 1
            return self.next - 1, self.lab.connection(LB4, RS4, PORT)

    def _client(self) -> None:
        while (taken := self._take()) is not None:
            index, conn = taken
            addr, port = client_of(index)
            option = toa_option(addr, port)
            on_ack = bool(index % 2)
            payload = f"{addr} {port} {'ack' if on_ack else 'data'}\n".encode()
            try:
                if on_ack:
                    conn.handshake(option)
                    conn.send(payload)
                else:
                    conn.handshake()
                    conn.send(payload, option)
                # The server reads and closes first; our RST then frees
                # its orphan in softirq.
                conn.wait_fin()
            except HandshakeError as exc:
                self.failed.append(str(exc))
            finally:
                conn.reset()

    def _serve(self) -> None:
        self.server.settimeout(60)
        for _ in range(self.count):
            try:
                sock, seen = accept_peer(self.server)
            except OSError as exc:
                self.failed.append(f"accept: {exc}")
                return
            with sock:
                self._check(sock, seen)
            self.served += 1

    def _check(self, sock: socket.socket, seen: tuple[str, int]) -> None:
        """getpeername() once the payload (and so the option) is in must
        name the client.  accept() must too when TOA was on the handshake
        ACK; with TOA on the data it may come first and show the balancer
        (docs/toa.md, Limits), never another client."""
        sock.settimeout(30)
        try:
            line = b""
            while not line.endswith(b"\n"):
                chunk = sock.recv(64)
                if not chunk:
                    break
                line += chunk
            name = sock.getpeername()
        except OSError as exc:
            self.failed.append(f"server: {exc}")
            return
        addr, port, where = line.decode().split()
        want = (addr, int(port))
        early = where == "data" and seen[0] == LB4
        if (seen != want and not early) or (name[0], name[1]) != want:
            self.wrong.append(f"client {want} (TOA on {where}): accept() {seen}, "
                              f"getpeername() {name[:2]}")


def _per_cpu(counter: str, cpu: int) -> int:
    """One CPU's column of a /proc/net/toa_stats line."""
    lines = open("/proc/net/toa_stats").read().splitlines()
    column = lines[0].split().index(f"CPU{cpu}")
    row = next(line.split() for line in lines if line.split()[0] == counter)
    return int(row[column])


def test_every_socket_sees_its_own_client_while_another_kprobe_runs(lab):
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("needs two CPUs")
    busy, others = cpus[-1], set(cpus[:-1])
    start = stats()
    counters = Counters()
    on_busy = _per_cpu("syn_recv_sock_toa", busy) + _per_cpu("data_seg_toa", busy)
    with lab.listen(socket.AF_INET, RS4, PORT) as server, pinned(others), \
            rps_to(busy), busy_cpu(busy) as probe:
        storm = Storm(lab, server, CONNECTIONS)
        storm.run()
        busy_hits = probe.hits()
    delta = counters.delta()
    final = wait_records_freed(live(start))
    print(f"counter changes {delta}; records alive before {live(start)}, after "
          f"{live(final)}; busy probe ran {busy_hits} times; {len(storm.wrong)} wrong")
    assert not storm.failed, storm.failed[:5]
    assert storm.served == CONNECTIONS
    # The interference was real: the other probe ran all along, and TOA
    # segments were processed on its CPU.
    assert busy_hits > CONNECTIONS, busy_hits
    on_busy = _per_cpu("syn_recv_sock_toa", busy) + _per_cpu("data_seg_toa", busy) - on_busy
    assert on_busy > 0, delta
    # Every socket saw its own client ...
    assert storm.wrong == [], (len(storm.wrong), storm.wrong[:5], delta)
    assert delta.get("syn_recv_sock_toa", 0) + delta.get("data_seg_toa", 0) == CONNECTIONS, delta
    # ... no hook was skipped, and every record went with its socket.
    assert "probe_missed" not in delta, delta
    assert live(final) <= live(start), (start, final, delta)


def test_ftrace_cannot_be_switched_off_under_the_hooks():
    """Switching ftrace off would silence the hooks, and records would
    outlive their sockets: the kernel refuses while toa is loaded."""
    sysctl = "/proc/sys/kernel/ftrace_enabled"
    try:
        with pytest.raises(OSError) as err:
            with open(sysctl, "w") as f:
                f.write("0")
        assert err.value.errno == errno.EBUSY
        assert open(sysctl).read().strip() == "1"
    finally:
        with open(sysctl, "w") as f:      # on again for the tests after us
            f.write("1")
