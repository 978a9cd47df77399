"""Transport: one generic netlink socket to the IPVS family, with pipelining.

The family id comes from the generic netlink controller (the request
pyroute2's ``GenericNetlinkSocket.bind`` makes, done without importing
pyroute2: the command starts faster); requests then go over a plain
``AF_NETLINK`` socket, so that many of them can be sent in one ``sendmsg``
and their results read afterwards (the kernel handles the messages of one
buffer in order and answers each refused one with its error).  Dumps are
read until ``NLMSG_DONE``.  Nothing here knows what the messages mean.
"""

from __future__ import annotations

import errno as errno_mod
import itertools
import os
import socket
from collections.abc import Iterable, Sequence

from ipvsadm_py import abi, wire

NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
BUFFER = 8 << 20            # socket buffers: a batch's errors never overflow them
BATCH = 512                 # requests per sendmsg
RECV = 1 << 20


class NetlinkError(OSError):
    """The kernel refused a request: ``errno`` is its error, ``index`` the
    request's position in its batch."""

    def __init__(self, err: int, index: int = 0) -> None:
        super().__init__(err, os.strerror(err))
        self.index = index


class FamilyMissing(OSError):
    """The IPVS generic netlink family is not registered (module not loaded)."""


def resolve_family(name: str = abi.GENL_NAME) -> int:
    """The generic netlink family id of ``name`` (a controller request)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    try:
        sock.bind((0, 0))
        sock.send(wire.encode(abi.CTRL_CMD_GETFAMILY, [("family_name", name)],
                              family=abi.GENL_ID_CTRL,
                              flags=abi.NLM_F_REQUEST | abi.NLM_F_ACK, seq=1,
                              message="ctrlmsg"))
        family = None
        while True:
            for reply in wire.parse_stream(sock.recv(65536), "ctrlmsg"):
                if reply.error:
                    if reply.error == errno_mod.ENOENT:
                        raise FamilyMissing(errno_mod.ENOENT, f"generic netlink family "
                                            f"{name} is not registered")
                    raise OSError(reply.error, os.strerror(reply.error))
                if reply.error == 0:
                    if family is None:
                        raise FamilyMissing(errno_mod.ENOENT, f"no id for family {name}")
                    return family
                family = reply.attrs.get("family_id", family)
    finally:
        sock.close()


def _open_socket() -> socket.socket:
    """A generic netlink socket with large buffers: a batch's errors never
    overflow them."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    sock.bind((0, 0))
    _force_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF)
    _force_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF)
    try:   # ACKs of errors without the whole request: more fit in the buffer
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    except OSError:
        pass
    return sock


def _force_buffer(sock: socket.socket, force: int, plain: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, plain, BUFFER)


class Channel:
    """A socket to the IPVS family: ``request``, ``dump`` and ``pipeline``.

    ``family`` is looked up when not given; ``sock`` is any object with
    ``send`` and ``recv_into`` (a fresh netlink socket when not given)."""

    def __init__(self, family: int | None = None, sock: socket.socket | None = None) -> None:
        self.family = resolve_family() if family is None else family
        self.sock = _open_socket() if sock is None else sock
        self._seq = itertools.count(1)
        self._buf = bytearray(RECV)
        self._view = memoryview(self._buf)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reading
    def _read(self, message: str) -> list[wire.Reply]:
        size = self.sock.recv_into(self._buf)
        return list(wire.parse_stream(self._view[:size], message))

    def dump(self, cmd: int, attrs: wire.Attrs = (),
             message: str = "ipvsmsg") -> list[wire.Reply]:
        """Every reply of a dump request (raises NetlinkError on refusal)."""
        seq = next(self._seq)
        self.sock.send(wire.encode(cmd, list(attrs), family=self.family,
                                   flags=abi.NLM_F_REQUEST | abi.NLM_F_DUMP, seq=seq))
        out: list[wire.Reply] = []
        while True:
            for reply in self._read(message):
                if reply.seq != seq:
                    continue
                if reply.type == abi.NLMSG_DONE:
                    return out
                if reply.error is not None:
                    if reply.error:
                        raise NetlinkError(reply.error)
                    return out
                out.append(reply)

    def dump_many(self, requests: Sequence[tuple[int, wire.Attrs]],
                  message: str = "ipvsmsg") -> list[list[wire.Reply] | NetlinkError]:
        """Several dumps, one after the other on this socket; a refused one
        yields its NetlinkError in its place instead of raising."""
        results: list[list[wire.Reply] | NetlinkError] = []
        for cmd, attrs in requests:
            try:
                results.append(self.dump(cmd, attrs, message))
            except NetlinkError as exc:
                results.append(exc)
        return results

    def request(self, cmd: int, attrs: wire.Attrs = (),
                message: str = "ipvsmsg") -> list[wire.Reply]:
        """One request with an ACK; returns the replies before the ACK."""
        seq = next(self._seq)
        self.sock.send(wire.encode(cmd, list(attrs), family=self.family,
                                   flags=abi.NLM_F_REQUEST | abi.NLM_F_ACK, seq=seq))
        out: list[wire.Reply] = []
        while True:
            for reply in self._read(message):
                if reply.seq != seq:
                    continue
                if reply.error is not None:
                    if reply.error:
                        raise NetlinkError(reply.error)
                    return out
                out.append(reply)

    def pipeline(self, requests: Iterable[tuple[int, wire.Attrs]]) -> list[int]:
        """Send requests in batches, many per ``sendmsg``, then read their
        results.  Returns one errno per request (0 = done), in order; the
        kernel goes on after a refused request, as separate calls would.

        Only the last request of a batch asks for an ACK: the kernel answers
        a refused request with its error anyway, and handles the messages of
        one buffer in order, so the ACK of the last one means that every
        error of the batch has arrived before it (one read per batch instead
        of one per request)."""
        results: list[int] = []
        batch: list[tuple[int, wire.Attrs]] = []
        for request in requests:
            batch.append(request)
            if len(batch) == BATCH:
                results += self._flush(batch)
                batch = []
        if batch:
            results += self._flush(batch)
        return results

    def _flush(self, batch: list[tuple[int, wire.Attrs]]) -> list[int]:
        seqs = [next(self._seq) for _ in batch]
        first, last = seqs[0], seqs[-1]
        self.sock.send(b"".join([
            wire.encode(cmd, attrs, family=self.family, seq=seq,
                        flags=abi.NLM_F_REQUEST | (abi.NLM_F_ACK if seq == last else 0))
            for (cmd, attrs), seq in zip(batch, seqs)]))
        errors = [0] * len(batch)
        while True:
            for reply in self._read("ipvsmsg"):
                index = reply.seq - first
                if reply.error is None or not 0 <= index < len(batch):
                    continue
                errors[index] = reply.error
                if reply.seq == last:
                    return errors
