"""Netlink messages to and from bytes, driven by the attribute sets of
:mod:`ipvsadm_py.abi`.

An attribute is named by its set's ``nla_map`` name without the prefix, in
lower case (``IPVS_SVC_ATTR_SCHED_NAME`` is ``sched_name``), going out as
coming back.  A run of attributes to send is a list of (name, value) pairs;
a nested attribute's value is such a list too.  Decoded attributes are a dict
by name; counters (``stats``, ``stats64``) stay bytes until asked for
(:class:`LazyAttrs`), since most listings do not show them.

:func:`encode`, :func:`parse_stream` and :func:`decode_attrs` are the entry
points.  The reading and writing done here is plain ``struct`` work;
:mod:`ipvsadm_py.wire_fast` holds the two optimisations behind them (layout
plans for decoding dumps, remembered service encodings for restores), and
:func:`walk_attrs` is the plain decoder they are checked against.

Nothing here prints, opens sockets or knows what the messages mean.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Iterator

from ipvsadm_py import abi, wire_fast

# typing is imported only by type checkers: each ipvsadm-py call would pay
# for its import at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    Attrs = list[tuple[str, Any]]
else:
    Attrs = list                      # the same name at run time

# The value of a ``flags`` attribute (struct ip_vs_flags).
SvcFlags = collections.namedtuple("SvcFlags", "flags mask")

_HDR = struct.Struct("=IHHII")        # struct nlmsghdr
_NLA = struct.Struct("=HH")           # struct nlattr
_ERR = struct.Struct("=i")
_TYPE_MASK = abi.NLA_TYPE_MASK
_PAIR = struct.Struct("=II")
_NUMBERS = {"uint8": "=B", "uint16": "=H", "uint32": "=I", "uint64": "=Q",
            "be16": ">H", "be32": ">I"}


def _names(attr_set: str) -> dict[int, tuple[str, str]]:
    """Attribute number -> (name, kind) of one attribute set."""
    cls = abi.ATTR_SETS[attr_set]
    return {number: (full.removeprefix(cls.prefix).lower(), kind)
            for number, (full, kind) in enumerate(cls.nla_map)}


ATTRS: dict[str, dict[int, tuple[str, str]]] = {name: _names(name) for name in abi.ATTR_SETS}
COUNTERS = frozenset({"stats", "stats64"})


# ---------------------------------------------------------------- decoding
class LazyAttrs:
    """A nested attribute kept as bytes until :meth:`get` decodes it."""

    __slots__ = ("attr_set", "raw")

    def __init__(self, attr_set: str, raw: bytes) -> None:
        self.attr_set, self.raw = attr_set, raw

    def get(self) -> dict[str, Any]:
        return decode_attrs(self.raw, 0, len(self.raw), self.attr_set)


def value_reader(kind: str) -> wire_fast.Field | None:
    """How a value of this kind is read (see :class:`wire_fast.Field`), or
    None for a kind that is not read."""
    if kind in _NUMBERS:
        fmt = _NUMBERS[kind]
        width = struct.calcsize(fmt)
        if fmt[0] == ">":
            return wire_fast.Field(width, None, lambda raw: int.from_bytes(raw, "big"))
        return wire_fast.Field(width, fmt[1:], None)
    if kind == "svc_flags":
        return wire_fast.Field(_PAIR.size, None, lambda raw: SvcFlags(*_PAIR.unpack(raw)))
    if kind == "cdata":
        return wire_fast.Field(0, None, None)
    if kind == "asciiz":
        return wire_fast.Field(0, None, lambda raw: raw.split(b"\0", 1)[0].decode())
    if kind in COUNTERS:
        return wire_fast.Field(0, None, lambda raw: LazyAttrs(kind, raw))
    if kind in ATTRS:
        return wire_fast.Field(0, None, lambda raw: decode_attrs(raw, 0, len(raw), kind))
    return None


_FIELDS: dict[str, dict[int, tuple[str, wire_fast.Field]]] = {}


def fields(attr_set: str) -> dict[int, tuple[str, wire_fast.Field]]:
    """Attribute number -> (name, how to read it) of the readable attributes
    of a set (made once)."""
    made = _FIELDS.get(attr_set)
    if made is None:
        made = _FIELDS[attr_set] = {}
        for number, (name, kind) in ATTRS[attr_set].items():
            reader = value_reader(kind)
            if reader is not None:
                made[number] = (name, reader)
    return made


def _reader(field: wire_fast.Field) -> Callable[[Any, int, int], Any]:
    """A function (data, lo, hi) -> the value of one attribute, for the walk."""
    width, code, convert = field
    if code is not None:
        unpack = struct.Struct("=" + code).unpack_from
        return lambda data, lo, hi: unpack(data, lo)[0]
    if convert is None:
        return lambda data, lo, hi: bytes(data[lo:lo + width if width else hi])
    return lambda data, lo, hi: convert(bytes(data[lo:lo + width if width else hi]))


_READERS: dict[str, dict[int, tuple[str, Any, int]]] = {}


def _readers(attr_set: str) -> dict[int, tuple[str, Any, int]]:
    """Attribute number -> (name, reader, fewest value bytes), made once."""
    made = _READERS.get(attr_set)
    if made is None:
        made = _READERS[attr_set] = {number: (name, _reader(field), field.width)
                                     for number, (name, field) in fields(attr_set).items()}
    return made


def walk_attrs(data: bytes | memoryview, start: int, end: int,
               attr_set: str) -> dict[str, Any]:
    """The attributes in ``data[start:end]``, read one by one.

    As the kernel's ``nla_ok()``: an attribute that overruns the region ends
    it; one too short for its kind (a u32 of two bytes) is left out; unknown
    numbers are skipped."""
    readers = _READERS.get(attr_set) or _readers(attr_set)
    header = _NLA.unpack_from
    out: dict[str, Any] = {}
    pos = start
    while pos + 4 <= end:
        length, number = header(data, pos)
        if length < 4 or pos + length > end:
            break
        entry = readers.get(number & _TYPE_MASK)
        if entry is not None and length - 4 >= entry[2]:
            out[entry[0]] = entry[1](data, pos + 4, pos + length)
        pos += (length + 3) & ~3
    return out


def new_plan_cache() -> wire_fast.PlanCache:
    """A decoder that plans layouts (what :func:`decode_attrs` uses)."""
    return wire_fast.PlanCache(fields, walk_attrs)


# decode_attrs(data, start, end, attr_set): what walk_attrs returns, read
# with a layout plan where a message of the same layout was seen before
# (dumps repeat a few).  The cache's method itself: one call less per
# message of a dump.
decode_attrs = new_plan_cache().decode


class Reply:
    """One decoded netlink message: its type, flags, sequence number, and
    either an error code (``NLMSG_ERROR``: 0 is an ACK) or the generic
    netlink command with its attributes."""

    __slots__ = ("type", "flags", "seq", "error", "cmd", "attrs")

    def __init__(self, type_: int, flags: int, seq: int) -> None:
        self.type, self.flags, self.seq = type_, flags, seq
        self.error: int | None = None
        self.cmd = 0
        self.attrs: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (f"Reply(type={self.type}, seq={self.seq}, error={self.error}, "
                f"cmd={self.cmd}, attrs={self.attrs!r})")


def parse_stream(data: bytes | memoryview, message: str = "ipvsmsg") -> Iterator[Reply]:
    """Every netlink message in a buffer read from the socket."""
    pos, end = 0, len(data)
    while pos + 16 <= end:
        length, type_, flags, seq, _pid = _HDR.unpack_from(data, pos)
        if length < 16:
            break
        reply = Reply(type_, flags, seq)
        if type_ == abi.NLMSG_ERROR:
            reply.error = -_ERR.unpack_from(data, pos + 16)[0]
        elif type_ != abi.NLMSG_DONE:
            reply.cmd = data[pos + 16]
            reply.attrs = decode_attrs(data, pos + 20, pos + length, message)
        yield reply
        pos += (length + 3) & ~3


# ---------------------------------------------------------------- encoding
def _attr(number: int, body: bytes) -> bytes:
    return _NLA.pack(len(body) + 4, number) + body + b"\0" * (-len(body) & 3)


def _encoder(number: int, kind: str) -> Callable[[Any], bytes]:
    """A function value -> the whole attribute (header, value, padding)."""
    if kind in _NUMBERS:
        size = struct.calcsize(_NUMBERS[kind])
        header = _NLA.pack(4 + size, number)
        pack = struct.Struct(_NUMBERS[kind] + "x" * (-size & 3)).pack
        return lambda value: header + pack(value)
    if kind == "cdata":
        return lambda value: _attr(number, bytes(value))
    if kind == "asciiz":
        return lambda value: _attr(number, value.encode() + b"\0")
    if kind == "svc_flags":
        header = _NLA.pack(4 + _PAIR.size, number)
        return lambda value: header + _PAIR.pack(*value)
    if kind == "service":
        # a restore names the same service on each of its real servers' lines
        return wire_fast.remembered(lambda value: _attr(number, encode_attrs(value, kind)))
    return lambda value: _attr(number, encode_attrs(value, kind))


_ENCODERS = {attr_set: {name: _encoder(number, kind) for number, (name, kind) in names.items()}
             for attr_set, names in ATTRS.items()}


def encode_attrs(attrs: Attrs, attr_set: str = "ipvsmsg") -> bytes:
    """A run of (name, value) attributes of one set as bytes."""
    encoders = _ENCODERS[attr_set]
    return b"".join([encoders[name](value) for name, value in attrs])


_GENL = {cmd: bytes((cmd, abi.GENL_VERSION, 0, 0)) for cmd in range(256)}


def encode(cmd: int, attrs: Attrs, *, family: int, flags: int, seq: int,
           message: str = "ipvsmsg") -> bytes:
    """One complete netlink message (header included) as bytes."""
    body = encode_attrs(attrs, message)
    return _HDR.pack(20 + len(body), family, flags, seq, 0) + _GENL[cmd] + body
