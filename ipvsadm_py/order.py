"""ipvsadm's order of services and real servers, quirks included.

ipvsadm sorts with glibc's ``qsort`` (a merge sort) and compares addresses
by subtracting 32-bit words into a C ``int``: far-apart addresses compare
the wrong way round (``200.0.0.1`` may sort before ``10.0.0.1``), and which
way depends on the merge.  :func:`sort_services` and :func:`sort_dests`
give the same order; when no difference can wrap they use a plain sort.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from ipvsadm_py.model import AF_INET6, Dest, Service, packed

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")


def i32(value: int) -> int:
    """The C ``int`` a 32-bit unsigned difference becomes."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


_WORDS6 = struct.Struct(">IIII").unpack


def _words(raw: bytes | None) -> tuple[int, ...]:
    """The address as four 32-bit words (ipvsadm compares them one by one)."""
    if not raw:
        return (0, 0, 0, 0)
    if len(raw) == 4:
        return (int.from_bytes(raw, "big"), 0, 0, 0)
    return _WORDS6(raw)


def _compare_words(af: int, a: tuple[int, ...], b: tuple[int, ...]) -> int:
    if af != AF_INET6:
        return i32(a[0] - b[0])
    for x, y in zip(a, b):
        r = i32(x - y)
        if r:
            return r
    return 0


def compare_services(a: Service, b: Service) -> int:
    """ipvsadm's service comparison: fwmark, family, protocol, address, port."""
    r = i32(a.fwmark - b.fwmark) or a.af - b.af or a.protocol - b.protocol
    if r:
        return r
    r = _compare_words(a.af, _words(packed(a) if not a.fwmark else None),
                       _words(packed(b) if not b.fwmark else None))
    return r or a.port - b.port


def compare_dests(a: Dest, b: Dest) -> int:
    """ipvsadm's real-server comparison (address by the first one's family, then port)."""
    r = _compare_words(a.af, _words(packed(a)), _words(packed(b)))
    return r or a.port - b.port


def msort(items: Sequence[T], cmp: Callable[[T, T], int]) -> list[T]:
    """glibc's qsort (a top-down merge sort, left first on ties), so that
    even an inconsistent comparison gives ipvsadm's order."""
    n = len(items)
    if n <= 1:
        return list(items)
    half = n // 2
    left, right = msort(items[:half], cmp), msort(items[half:], cmp)
    out: list[T] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out += left[i:]
    out += right[j:]
    return out


def _consistent(keys: list[tuple[int, ...]]) -> bool:
    """True when no 32-bit difference can wrap (every field spans < 2**31)."""
    return all(max(column) - min(column) < 1 << 31 for column in zip(*keys))


def sort_services(services: Sequence[Service]) -> list[Service]:
    keys = [(s.fwmark, s.af, s.protocol, *_words(packed(s) if not s.fwmark else None),
             s.port) for s in services]
    if _consistent(keys):   # then the comparison is a plain order
        return [services[i] for i in sorted(range(len(services)), key=keys.__getitem__)]
    return msort(list(services), compare_services)


def sort_dests(dests: Sequence[Dest]) -> list[Dest]:
    if len({d.af for d in dests}) <= 1:
        keys = [(*_words(packed(d)), d.port) for d in dests]
        if _consistent(keys):
            return [dests[i] for i in sorted(range(len(dests)), key=keys.__getitem__)]
    return msort(list(dests), compare_dests)
