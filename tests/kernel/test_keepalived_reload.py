"""Reload (SIGHUP) without loss: a stream through the VIP completes while the
configuration changes under it.

::

    client ==== stream (echo) ====> lb ============================> rs1
                                    keepalived reloaded three times: rs2, rs3
    new connections in between      local addresses 10.0.3.1 -> .2 -> both,
                                    servers added, removed, re-weighted,
                                    SYNPROXY on, then off

The stream's local address (10.0.3.1) is removed by the first reload: it
leaves the pool and drains (the stream keeps it); new connections get
10.0.3.2.  rs1, which serves the stream, stays in every version.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time

import pytest

from tools import netlab
from tools.keepalived_lab import dests, laddrs, record, wait_table
from tests.kernel.keepalived_support import (KA_NS, connect_to, fnat_topo,  # noqa: F401
                                             explained, keepalived, servers, toa_off,
                                             whoami_via)

pytestmark = pytest.mark.kernel

PORT = 80
KEY = f"tcp {netlab.VIP4}:{PORT}"


def config(laddr_list: list[str], weights: dict[int, int], synproxy: bool) -> str:
    rs = "".join(
        f"    real_server {netlab.rs_addr(i)} {PORT} {{\n        weight {w}\n"
        f"        TCP_CHECK {{\n            connect_timeout 2\n        }}\n    }}\n"
        for i, w in sorted(weights.items()))
    return (f"virtual_server {netlab.VIP4} {PORT} {{\n    delay_loop 2\n    lb_algo wrr\n"
            f"    lb_kind FNAT\n    protocol TCP\n" + ("    syn_proxy\n" if synproxy else "")
            + "    local_address {\n" + "".join(f"        {a}\n" for a in laddr_list)
            + f"    }}\n{rs}}}\n")


STEPS = [  # (local addresses, real server weights, SYNPROXY)
    (["10.0.3.1"], {1: 1, 2: 1}, False),
    (["10.0.3.2"], {1: 1, 2: 3, 3: 1}, True),
    (["10.0.3.1", "10.0.3.2"], {1: 2, 2: 1}, False),
    (["10.0.3.2"], {1: 1, 2: 1, 3: 2}, True),
]


def matches(table: dict, step: tuple) -> bool:
    laddr_list, weights, synproxy = step
    svc = table.get(KEY)
    if svc is None:
        return False
    got = {d["address"]: d["weight"] for d in dests(svc).values()}
    want = {netlab.rs_addr(i): w for i, w in weights.items()}
    return laddrs(svc) == sorted(laddr_list) and got == want and svc["synproxy"] is synproxy


class Stream:
    """Echoed bytes through one connection until stopped; compares hashes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent, self.got = hashlib.sha256(), hashlib.sha256()
        self.n_sent = self.n_got = 0
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.sock.settimeout(120)
        self.reader.start()
        self.writer.start()

    def _write(self) -> None:
        try:
            while not self.stopping.is_set():
                block = os.urandom(16384)
                self.sock.sendall(block)
                self.sent.update(block)
                self.n_sent += len(block)
                self.stopping.wait(0.02)
            self.sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self.error = exc

    def _read(self) -> None:
        try:
            while data := self.sock.recv(65536):
                self.got.update(data)
                self.n_got += len(data)
        except OSError as exc:
            self.error = exc

    def wait_moving(self, timeout: float = 60.0) -> None:
        """Returns once more bytes came back than when called: the stream
        still flows after the last change."""
        before = self.n_got
        try:
            netlab.wait_for(lambda: self.n_got > before or self.error, timeout, 0.05)
        except TimeoutError:
            raise AssertionError(f"the stream stalled at {before} bytes") from None
        assert self.error is None, f"the stream broke: {self.error!r}"

    def finish(self) -> None:
        self.stopping.set()
        self.writer.join(120)
        self.reader.join(120)
        assert self.error is None, f"the stream broke: {self.error!r}"
        assert self.n_got == self.n_sent > 0, (self.n_got, self.n_sent)
        assert self.got.digest() == self.sent.digest()


def test_stream_survives_reloads(fnat_topo, keepalived, toa_off, kver):
    topo = fnat_topo
    servers(topo, 4, PORT, 3)
    keepalived.start(config(*STEPS[0]))
    wait_table(KA_NS, lambda t: matches(t, STEPS[0]))
    sock = connect_to(topo, netlab.VIP4, PORT, "rs1")
    stream = Stream(sock)
    applied = []      # seconds from SIGHUP to the whole new table (polled every 0.5 s)
    try:
        with explained(keepalived):
            for step in STEPS[1:]:
                t0 = time.monotonic()
                keepalived.reload(config(*step))
                wait_table(KA_NS, lambda t, step=step: matches(t, step))
                applied.append(round(time.monotonic() - t0, 2))
                assert stream.error is None, stream.error
                name, peer, _ = whoami_via(topo, netlab.VIP4, PORT)   # new connections too
                assert peer in step[0], (peer, step)
                stream.wait_moving()
    finally:
        stream.finish()
        sock.close()
    record(kver, "reload", {"reloads": len(applied), "table_applied_after_s": applied,
                            "stream_bytes_echoed_intact": stream.n_got})
