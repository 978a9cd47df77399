"""The TOA option parser of toa.ko (kernel/toa/toa_parse.c), run on the host.

toa_parse.c depends on nothing but a few types and memcpy(), so it is
compiled here as a shared library against tests/unit/toa_shim (stand-ins
for <linux/types.h>, <linux/in6.h>, <linux/string.h>) and called through
ctypes.  Every option area is placed at the very end of a readable page
followed by an unreadable one, in a forked child: reading a byte past the
area kills the child and fails the test.

Checked: the documented cases (each malformation the kernel tests send),
every kind 253/254 with every length byte in every area size, and random
areas against an independent reference parser written below.
"""

from __future__ import annotations

import ctypes
import json
import mmap
import multiprocessing
import random
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from tools import kbuild

SOURCE = kbuild.ROOT / "kernel/toa/toa_parse.c"
SHIM = Path(__file__).parent / "toa_shim"
ABSENT, FOUND, BAD_LEN, TRUNCATED, AFTER_EOL, DUPLICATE = range(6)
NAMES = ["ABSENT", "FOUND", "BAD_LEN", "TRUNCATED", "AFTER_EOL", "DUPLICATE"]

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


class ToaAddr(ctypes.Structure):
    _fields_ = [("v6", ctypes.c_bool), ("port", ctypes.c_uint16),
                ("addr", ctypes.c_ubyte * 16)]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toa_parse") / "libtoaparse.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
                    "-I", str(SHIM), str(SOURCE), "-o", str(out)], check=True)
    return out


def reference(area: bytes) -> tuple[int, tuple | None]:
    """The rules of docs/toa.md, written independently of the C code."""
    found, i = None, 0
    while i < len(area):
        kind = area[i]
        if kind == 0:
            return (AFTER_EOL, None) if any(area[i + 1:]) else \
                ((FOUND, found) if found else (ABSENT, None))
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(area):
            return TRUNCATED, None
        length = area[i + 1]
        if kind in (253, 254):
            if length not in ((8, 20) if kind == 254 else (20,)):
                return BAD_LEN, None
        if length < 2 or i + length > len(area):
            return TRUNCATED, None
        if kind in (253, 254):
            if found:
                return DUPLICATE, None
            port = struct.unpack("!H", area[i + 2:i + 4])[0]
            family = socket.AF_INET6 if length == 20 else socket.AF_INET
            found = (socket.inet_ntop(family, area[i + 4:i + length]), port)
        i += length
    return (FOUND, found) if found else (ABSENT, None)


def _run_guarded(lib: str, areas: list[bytes], results: str) -> None:
    """Child process: parse each area placed right before a PROT_NONE page."""
    parser = ctypes.CDLL(lib)
    parser.toa_parse_options.argtypes = [ctypes.c_void_p, ctypes.c_uint,
                                         ctypes.POINTER(ToaAddr)]
    page = mmap.PAGESIZE
    buf = mmap.mmap(-1, 2 * page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + page, page, 0) == 0   # PROT_NONE
    out = []
    for area in areas:
        start = page - len(area)
        buf[start:page] = area
        addr = ToaAddr()
        verdict = parser.toa_parse_options(base + start, len(area), ctypes.byref(addr))
        decoded = None
        if verdict == FOUND:
            family = socket.AF_INET6 if addr.v6 else socket.AF_INET
            raw = bytes(addr.addr)[:16 if addr.v6 else 4]
            decoded = (socket.inet_ntop(family, raw), socket.ntohs(addr.port))
        out.append((verdict, decoded))
    Path(results).write_text(json.dumps(out))


def parse_all(library: Path, areas: list[bytes]) -> list[tuple[int, tuple | None]]:
    results = library.parent / f"results-{len(areas)}.json"
    child = multiprocessing.get_context("fork").Process(
        target=_run_guarded, args=(str(library), areas, str(results)))
    child.start()
    child.join(timeout=300)
    assert child.exitcode == 0, f"parser child died (exit {child.exitcode}): out-of-bounds read?"
    return [(v, tuple(d) if d else None) for v, d in json.loads(results.read_text())]


def toa4(addr: str = "198.51.100.7", port: int = 40001, kind: int = 254) -> bytes:
    return struct.pack("!BBH", kind, 8, port) + socket.inet_aton(addr)


def toa6(addr: str = "2001:db8::7", port: int = 40002, kind: int = 254) -> bytes:
    return struct.pack("!BBH", kind, 20, port) + socket.inet_pton(socket.AF_INET6, addr)


CASES = {
    "empty": (b"", ABSENT, None),
    "ipv4": (toa4(), FOUND, ("198.51.100.7", 40001)),
    "ipv6": (toa6(), FOUND, ("2001:db8::7", 40002)),
    "ipv6-legacy-253": (toa6(kind=253), FOUND, ("2001:db8::7", 40002)),
    "after-mss-sack-ts": (b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + bytes(8) + b"\x01\x01" + toa4(),
                          FOUND, ("198.51.100.7", 40001)),
    "padding-after-eol": (toa4() + b"\x00\x00\x00\x00", FOUND, ("198.51.100.7", 40001)),
    "only-nops": (b"\x01" * 8, ABSENT, None),
    "mss-only": (b"\x02\x04\x05\xb4", ABSENT, None),
    **{f"length-{n}": (bytes([254, n]) + bytes(6), BAD_LEN, None)
       for n in (0, 1, 7, 9, 19, 21, 255)},
    "253-with-length-8": (toa4(kind=253), BAD_LEN, None),
    "length-past-the-end": (b"\x01\x01\xfe\x08", TRUNCATED, None),
    "no-length-byte": (b"\x01\x01\x01\xfe", TRUNCATED, None),
    "ipv6-cut-short": (b"\xfe\x14" + bytes(6), TRUNCATED, None),
    "other-option-past-the-end": (b"\x08\x1e\x00\x00" + toa4(), TRUNCATED, None),
    "other-option-length-0": (b"\x03\x00\x00\x00" + toa4(), TRUNCATED, None),
    "toa-after-eol": (b"\x00" + toa4() + b"\x00\x00\x00", AFTER_EOL, None),
    "two-toa": (toa4() + toa4(port=1), DUPLICATE, None),
    "ipv4-and-ipv6": (toa4() + toa6(), DUPLICATE, None),
}


def test_documented_cases(library):
    areas = [area for area, _, _ in CASES.values()]
    got = parse_all(library, areas)
    for (name, (_, verdict, decoded)), (v, d) in zip(CASES.items(), got):
        assert (NAMES[v], d) == (NAMES[verdict], decoded), name


def test_every_length_byte_in_every_area_size(library):
    areas = []
    for kind in (253, 254):
        for length in range(256):
            option = bytes([kind, length]) + bytes(range(2, 40))
            for size in range(1, 41):
                areas.append((b"\x01" * max(0, size - len(option)) + option)[:size])
    got = parse_all(library, areas)
    for area, result in zip(areas, got):
        assert result == reference(area), area.hex()


def test_random_areas_match_the_reference(library):
    rng = random.Random(20240601)
    alphabet = [0, 1, 2, 3, 4, 8, 19, 20, 21, 253, 254, 255]
    areas = []
    for _ in range(20000):
        size = rng.randrange(0, 41)
        areas.append(bytes(rng.choice(alphabet) if rng.random() < 0.6 else rng.randrange(256)
                           for _ in range(size)))
    # Well-formed areas with TOA somewhere among other options, too.
    for _ in range(2000):
        parts = [rng.choice([b"\x01", b"\x02\x04\x05\xb4", b"\x04\x02", b"\x03\x03\x07"])
                 for _ in range(rng.randrange(4))]
        parts.insert(rng.randrange(len(parts) + 1), rng.choice([toa4(), toa6(), toa6(kind=253)]))
        areas.append(b"".join(parts)[:40])
    got = parse_all(library, areas)
    mismatches = [(a.hex(), r, reference(a)) for a, r in zip(areas, got) if r != reference(a)]
    assert not mismatches, mismatches[:5]
    assert sum(r[0] == FOUND for r in got) > 1000   # the generator reaches the good path
