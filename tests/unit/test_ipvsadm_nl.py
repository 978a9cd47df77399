"""nl.Channel.pipeline against a socket that answers as the kernel does:
an error message for each refused request, an ACK only where asked."""

from __future__ import annotations

import collections
import errno
import struct

import pytest

from ipvsadm_py import abi, nl


class KernelLike:
    """Stands in for the netlink socket; ``refuse`` picks refused requests."""

    def __init__(self, refuse) -> None:
        self.refuse = refuse
        self.queue: collections.deque[bytes] = collections.deque()
        self.requests: list[tuple[int, int]] = []     # (seq, flags) as sent
        self.reads = 0

    def send(self, data: bytes) -> int:
        pos = 0
        while pos + 16 <= len(data):
            length, _type, flags, seq, _pid = struct.unpack_from("=IHHII", data, pos)
            self.requests.append((seq, flags))
            err = -errno.EEXIST if self.refuse(len(self.requests) - 1) else 0
            if err or flags & abi.NLM_F_ACK:
                self.queue.append(struct.pack("=IHHIIi", 36, abi.NLMSG_ERROR, 0, seq, 0, err)
                                  + data[pos:pos + 16])
            pos += (length + 3) & ~3
        return len(data)

    def recv_into(self, buf) -> int:
        self.reads += 1
        reply = self.queue.popleft()
        buf[:len(reply)] = reply
        return len(reply)


def _channel(sock: KernelLike) -> nl.Channel:
    return nl.Channel(family=30, sock=sock)


@pytest.mark.parametrize("count", [1, 5, nl.BATCH, nl.BATCH + 1, 3 * nl.BATCH - 7])
def test_pipeline_reports_each_refusal_in_place(count):
    refused = {i for i in range(count) if i % 7 == 3} | {count - 1}
    sock = KernelLike(lambda i: i in refused)
    results = _channel(sock).pipeline([(abi.CMD_FLUSH, [])] * count)
    assert results == [errno.EEXIST if i in refused else 0 for i in range(count)]
    batches = -(-count // nl.BATCH)
    # one read per refusal, and one per batch for its closing ACK (unless
    # the batch's last request was refused: its error closes the batch)
    last_refused = sum(1 for b in range(batches)
                       if min((b + 1) * nl.BATCH, count) - 1 in refused)
    assert sock.reads == len(refused) + batches - last_refused


def test_only_the_last_request_of_a_batch_asks_for_an_ack():
    sock = KernelLike(lambda i: False)
    count = nl.BATCH + 3
    assert _channel(sock).pipeline([(abi.CMD_FLUSH, [])] * count) == [0] * count
    acked = [i for i, (_seq, flags) in enumerate(sock.requests) if flags & abi.NLM_F_ACK]
    assert acked == [nl.BATCH - 1, count - 1]
    assert [seq for seq, _ in sock.requests] == list(range(1, count + 1))
    assert sock.reads == 2
