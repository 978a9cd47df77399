"""TOA sockets that other kernel features use too: kTLS and sockmap.

Lab as in test_toa.py.  kTLS keeps its state in the socket's ULP slot;
sockmap (a psock) takes sk_user_data and refuses a socket whose slot is
already in use.  toa.ko writes neither, so both must keep working on a
TOA socket, and the client address must stay visible.

kTLS is checked end to end without a TLS library: the crafted client
decrypts what the server's kTLS sent, and encrypts what the server's kTLS
must decrypt, with AES-GCM from the kernel's crypto API (AF_ALG).  The
sockmap program is two hand-assembled BPF instructions ("return SK_PASS"),
loaded with the bpf(2) system call through ctypes: no extra tools.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
from typing import Iterator

import pytest

from lvs_tools.toa_craft import toa_option
from tests.kernel.toa_support import (CLIENT4, LB4, RS4, Counters, accept_peer, lab,
                                      peername, recv_exactly)

pytestmark = pytest.mark.kernel
__all__ = ["lab"]

# ------------------------------------------------------------------ kTLS
TCP_ULP, SOL_TLS, TLS_TX, TLS_RX = 31, 282, 1, 2
TLS_1_2, AES_GCM_128 = 0x0303, 51
APP_DATA = 0x17


@contextlib.contextmanager
def aes_gcm(key: bytes) -> Iterator[socket.socket]:
    """An AF_ALG operation socket doing AES-GCM with a 16-byte tag."""
    alg = socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0)
    with alg:
        alg.bind(("aead", "gcm(aes)"))
        alg.setsockopt(socket.SOL_ALG, socket.ALG_SET_KEY, key)
        alg.setsockopt(socket.SOL_ALG, socket.ALG_SET_AEAD_AUTHSIZE, None, 16)
        op, _ = alg.accept()
        with op:
            yield op


def tls12_aad(seq: int, length: int) -> bytes:
    return struct.pack("!QBHH", seq, APP_DATA, TLS_1_2, length)


def tls12_open(record: bytes, key: bytes, salt: bytes, seq: int) -> bytes:
    """Decrypt one TLS 1.2 AES-GCM application-data record."""
    kind, version, length = struct.unpack("!BHH", record[:5])
    assert (kind, version, length) == (APP_DATA, TLS_1_2, len(record) - 5)
    explicit, sealed = record[5:13], record[13:]
    aad = tls12_aad(seq, len(sealed) - 16)
    with aes_gcm(key) as op:
        op.sendmsg_afalg([aad + sealed], op=socket.ALG_OP_DECRYPT, iv=salt + explicit,
                         assoclen=len(aad))
        return op.recv(len(aad) + len(sealed) - 16)[len(aad):]


def tls12_seal(plain: bytes, key: bytes, salt: bytes, explicit: bytes, seq: int) -> bytes:
    """One TLS 1.2 AES-GCM application-data record."""
    aad = tls12_aad(seq, len(plain))
    with aes_gcm(key) as op:
        op.sendmsg_afalg([aad + plain], op=socket.ALG_OP_ENCRYPT, iv=salt + explicit,
                         assoclen=len(aad))
        sealed = op.recv(len(aad) + len(plain) + 16)[len(aad):]
    return struct.pack("!BHH", APP_DATA, TLS_1_2, 8 + len(sealed)) + explicit + sealed


def crypto_info(key: bytes, iv: bytes, salt: bytes) -> bytes:
    """struct tls12_crypto_info_aes_gcm_128, record sequence 0."""
    return struct.pack("=HH8s16s4s8s", TLS_1_2, AES_GCM_128, iv, key, salt, bytes(8))


def test_ktls_on_a_toa_socket(lab):
    tx_key, tx_iv, tx_salt = os.urandom(16), os.urandom(8), os.urandom(4)
    rx_key, rx_salt = os.urandom(16), os.urandom(4)
    with lab.listen(socket.AF_INET, RS4, 8400) as server, \
            lab.connection(LB4, RS4, 8400) as conn:
        counters = Counters()
        conn.handshake(toa_option(CLIENT4, 42000))
        accepted, seen = accept_peer(server)
        with accepted:
            assert seen == (CLIENT4, 42000)
            accepted.setsockopt(socket.IPPROTO_TCP, TCP_ULP, b"tls")
            accepted.setsockopt(SOL_TLS, TLS_TX, crypto_info(tx_key, tx_iv, tx_salt))
            accepted.setsockopt(SOL_TLS, TLS_RX, crypto_info(rx_key, bytes(8), rx_salt))
            # Server -> client: the kernel encrypts, we decrypt.
            message = b"sent by kTLS from a TOA socket"
            accepted.sendall(message)
            record = conn.recv(5 + 8 + len(message) + 16)
            assert tls12_open(record, tx_key, tx_salt, seq=0) == message
            # Client -> server: we encrypt, the kernel decrypts.
            reply = b"decrypted by kTLS on a TOA socket"
            conn.send(tls12_seal(reply, rx_key, rx_salt, os.urandom(8), seq=0))
            assert recv_exactly(accepted, len(reply)) == reply
            assert peername(accepted) == (CLIENT4, 42000)
        conn.reset()
    delta = counters.delta()
    assert delta.get("getname_toa_ok") == 2 and "store_fail" not in delta, delta


# ------------------------------------------------------------------ sockmap
SYS_BPF = 321
BPF_MAP_CREATE, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD, BPF_PROG_ATTACH = 0, 2, 5, 8
BPF_MAP_TYPE_SOCKMAP, BPF_PROG_TYPE_SK_SKB, BPF_SK_SKB_STREAM_VERDICT = 15, 14, 5
SK_PASS = 1
# r0 = SK_PASS; exit
VERDICT_PASS = struct.pack("<BBhi", 0xB7, 0x00, 0, SK_PASS) + struct.pack("<BBhi", 0x95, 0, 0, 0)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, 128)
    ret = _libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(cmd), buf, ctypes.c_uint(128))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return ret


class SockMap:
    """A sockmap with a stream-verdict program that passes everything."""

    def __init__(self) -> None:
        self.map_fd = bpf(BPF_MAP_CREATE,
                          struct.pack("=IIIII", BPF_MAP_TYPE_SOCKMAP, 4, 4, 4, 0))
        insns = ctypes.create_string_buffer(VERDICT_PASS, len(VERDICT_PASS))
        license = ctypes.create_string_buffer(b"GPL")
        self.prog_fd = bpf(BPF_PROG_LOAD, struct.pack(
            "=IIQQIIQII", BPF_PROG_TYPE_SK_SKB, len(VERDICT_PASS) // 8,
            ctypes.addressof(insns), ctypes.addressof(license), 0, 0, 0, 0, 0))
        bpf(BPF_PROG_ATTACH, struct.pack("=IIII", self.map_fd, self.prog_fd,
                                         BPF_SK_SKB_STREAM_VERDICT, 0))

    def add(self, index: int, sock: socket.socket) -> None:
        """Fails with EBUSY if anything holds the socket's sk_user_data."""
        key, value = ctypes.c_uint32(index), ctypes.c_uint32(sock.fileno())
        bpf(BPF_MAP_UPDATE_ELEM, struct.pack("=IIQQQ", self.map_fd, 0,
                                             ctypes.addressof(key), ctypes.addressof(value), 0))

    def close(self) -> None:
        os.close(self.prog_fd)
        os.close(self.map_fd)


@pytest.fixture
def sockmap() -> Iterator[SockMap]:
    smap = SockMap()
    try:
        yield smap
    finally:
        smap.close()


def test_sockmap_takes_a_toa_socket(lab, sockmap):
    with lab.listen(socket.AF_INET, RS4, 8410) as server, \
            lab.connection(LB4, RS4, 8410) as conn:
        conn.handshake(toa_option(CLIENT4, 42100))
        accepted, seen = accept_peer(server)
        with accepted:
            assert seen == (CLIENT4, 42100)
            sockmap.add(0, accepted)
            conn.send(b"through the verdict program")
            assert recv_exactly(accepted, 27) == b"through the verdict program"
            assert peername(accepted) == (CLIENT4, 42100)
        conn.reset()


def test_toa_on_data_reaches_a_socket_already_in_a_sockmap(lab, sockmap):
    """The psock holds sk_user_data before the option arrives: TOA still works."""
    with lab.listen(socket.AF_INET, RS4, 8411) as server, \
            lab.connection(LB4, RS4, 8411) as conn:
        conn.handshake()
        accepted, seen = accept_peer(server)
        with accepted:
            assert seen == (LB4, conn.sport)
            sockmap.add(1, accepted)
            counters = Counters()
            conn.send(b"first request", toa_option(CLIENT4, 42101))
            assert recv_exactly(accepted, 13) == b"first request"
            assert peername(accepted) == (CLIENT4, 42101)
            assert counters.delta().get("data_seg_toa") == 1
        conn.reset()
