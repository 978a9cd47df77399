"""Wire layer: the IPVS generic netlink family as declarative message classes.

Numbers come from the kernel's ``include/uapi/linux/ip_vs.h`` (upstream) and
from the project's ABI contract (the FULLNAT/SYNPROXY extensions: commands
18-20, command attribute 7, forwarding method 5, service flag 0x8000).

The message classes below are declarations (``prefix`` and ``nla_map``, the
pyroute2 vocabulary).  Two codecs are made from them:

* :func:`pyroute2_classes` turns them into pyroute2 ``genlmsg``/``nla``
  classes (pyroute2's generic netlink codec; :func:`encode_pyroute2`);
* :func:`encode` / :func:`parse_stream` pack and unpack with ``struct``
  directly, driven by the same tables.  The command line uses these: they
  are much faster and need no pyroute2 import (about 250 modules, which is
  seconds of start-up on a slow file system).  The unit tests check that
  both codecs produce the same bytes.

Nothing here prints, opens sockets or knows about the command line.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Iterator

# typing is imported only by type checkers: it is not needed at run time,
# and each ipvsadm-py call would pay for its import.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

GENL_NAME = "IPVS"
GENL_VERSION = 1

# ---------------------------------------------------------------- commands
CMD_NEW_SERVICE = 1
CMD_SET_SERVICE = 2
CMD_DEL_SERVICE = 3
CMD_GET_SERVICE = 4
CMD_NEW_DEST = 5
CMD_SET_DEST = 6
CMD_DEL_DEST = 7
CMD_GET_DEST = 8
CMD_NEW_DAEMON = 9
CMD_DEL_DAEMON = 10
CMD_GET_DAEMON = 11
CMD_SET_CONFIG = 12
CMD_GET_CONFIG = 13
CMD_SET_INFO = 14
CMD_GET_INFO = 15
CMD_ZERO = 16
CMD_FLUSH = 17
# extensions (abi.md)
CMD_NEW_LADDR = 18
CMD_DEL_LADDR = 19
CMD_GET_LADDR = 20

# ---------------------------------------------------------------- values
AF_INET = 2
AF_INET6 = 10
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_SCTP = 132

FWD_MASQ = 0
FWD_LOCALNODE = 1
FWD_TUNNEL = 2
FWD_DROUTE = 3
FWD_BYPASS = 4
FWD_FULLNAT = 5          # extension
FWD_MASK = 0x7

SVC_F_PERSISTENT = 0x0001
SVC_F_HASHED = 0x0002
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED1 = 0x0008
SVC_F_SCHED2 = 0x0010
SVC_F_SCHED3 = 0x0020
SVC_F_SCHED_MASK = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3
SVC_F_SYNPROXY = 0x8000  # extension

TUN_TYPE_IPIP = 0
TUN_TYPE_GUE = 1
TUN_TYPE_GRE = 2
TUN_F_NOCSUM = 0
TUN_F_CSUM = 1
TUN_F_REMCSUM = 2

STATE_NONE = 0
STATE_MASTER = 1
STATE_BACKUP = 2

# ---------------------------------------------------------------- netlink
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300


class stats:
    """IPVS_SVC_ATTR_STATS / IPVS_DEST_ATTR_STATS (32-bit counters)."""

    prefix = "IPVS_STATS_ATTR_"
    nla_map = (
        ("IPVS_STATS_ATTR_UNSPEC", "none"),
        ("IPVS_STATS_ATTR_CONNS", "uint32"),
        ("IPVS_STATS_ATTR_INPKTS", "uint32"),
        ("IPVS_STATS_ATTR_OUTPKTS", "uint32"),
        ("IPVS_STATS_ATTR_INBYTES", "uint64"),
        ("IPVS_STATS_ATTR_OUTBYTES", "uint64"),
        ("IPVS_STATS_ATTR_CPS", "uint32"),
        ("IPVS_STATS_ATTR_INPPS", "uint32"),
        ("IPVS_STATS_ATTR_OUTPPS", "uint32"),
        ("IPVS_STATS_ATTR_INBPS", "uint32"),
        ("IPVS_STATS_ATTR_OUTBPS", "uint32"),
        ("IPVS_STATS_ATTR_PAD", "none"),
    )


class stats64:
    """IPVS_SVC_ATTR_STATS64 / IPVS_DEST_ATTR_STATS64 (64-bit counters)."""

    prefix = "IPVS_STATS_ATTR_"
    nla_map = tuple((name, "none" if kind == "none" else "uint64")
                    for name, kind in stats.nla_map)


class svc_flags:
    """struct ip_vs_flags: the flag bits and the mask of bits to change."""

    fields = (("flags", "I"), ("mask", "I"))


# The value of IPVS_SVC_ATTR_FLAGS for the encoders (a dict with the same
# keys works too; this one can be hashed).
SvcFlags = collections.namedtuple("SvcFlags", "flags mask")


class service:
    """IPVS_CMD_ATTR_SERVICE: a virtual service (nested)."""

    prefix = "IPVS_SVC_ATTR_"
    nla_map = (
        ("IPVS_SVC_ATTR_UNSPEC", "none"),
        ("IPVS_SVC_ATTR_AF", "uint16"),
        ("IPVS_SVC_ATTR_PROTOCOL", "uint16"),
        ("IPVS_SVC_ATTR_ADDR", "cdata"),       # 16 bytes, union nf_inet_addr
        ("IPVS_SVC_ATTR_PORT", "be16"),
        ("IPVS_SVC_ATTR_FWMARK", "uint32"),
        ("IPVS_SVC_ATTR_SCHED_NAME", "asciiz"),
        ("IPVS_SVC_ATTR_FLAGS", "svc_flags"),
        ("IPVS_SVC_ATTR_TIMEOUT", "uint32"),
        ("IPVS_SVC_ATTR_NETMASK", "cdata"),    # be32 mask (IPv4) / prefix (IPv6)
        ("IPVS_SVC_ATTR_STATS", "stats"),
        ("IPVS_SVC_ATTR_PE_NAME", "asciiz"),
        ("IPVS_SVC_ATTR_STATS64", "stats64"),
    )
    svc_flags = svc_flags
    stats = stats
    stats64 = stats64


class dest:
    """IPVS_CMD_ATTR_DEST: a real server (nested)."""

    prefix = "IPVS_DEST_ATTR_"
    nla_map = (
        ("IPVS_DEST_ATTR_UNSPEC", "none"),
        ("IPVS_DEST_ATTR_ADDR", "cdata"),
        ("IPVS_DEST_ATTR_PORT", "be16"),
        ("IPVS_DEST_ATTR_FWD_METHOD", "uint32"),
        ("IPVS_DEST_ATTR_WEIGHT", "uint32"),
        ("IPVS_DEST_ATTR_U_THRESH", "uint32"),
        ("IPVS_DEST_ATTR_L_THRESH", "uint32"),
        ("IPVS_DEST_ATTR_ACTIVE_CONNS", "uint32"),
        ("IPVS_DEST_ATTR_INACT_CONNS", "uint32"),
        ("IPVS_DEST_ATTR_PERSIST_CONNS", "uint32"),
        ("IPVS_DEST_ATTR_STATS", "stats"),
        ("IPVS_DEST_ATTR_ADDR_FAMILY", "uint16"),
        ("IPVS_DEST_ATTR_STATS64", "stats64"),
        ("IPVS_DEST_ATTR_TUN_TYPE", "uint8"),
        ("IPVS_DEST_ATTR_TUN_PORT", "be16"),
        ("IPVS_DEST_ATTR_TUN_FLAGS", "uint16"),
    )
    stats = stats
    stats64 = stats64


class daemon:
    """IPVS_CMD_ATTR_DAEMON: a connection synchronisation daemon (nested)."""

    prefix = "IPVS_DAEMON_ATTR_"
    nla_map = (
        ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
        ("IPVS_DAEMON_ATTR_STATE", "uint32"),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
        ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
        ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
        ("IPVS_DAEMON_ATTR_MCAST_GROUP", "cdata"),   # 4 bytes
        ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "cdata"),  # 16 bytes
        ("IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),
        ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
    )


class laddr:
    """IPVS_CMD_ATTR_LADDR: a FULLNAT local address of a service (extension)."""

    prefix = "IPVS_LADDR_ATTR_"
    nla_map = (
        ("IPVS_LADDR_ATTR_UNSPEC", "none"),
        ("IPVS_LADDR_ATTR_ADDR", "cdata"),           # 16 bytes, the service's family
        ("IPVS_LADDR_ATTR_PORT_CONFLICT", "uint64"),
        ("IPVS_LADDR_ATTR_CONN_COUNTS", "uint32"),
    )


class ipvsmsg:
    """Every IPVS command and its reply (except GET_INFO's reply)."""

    prefix = "IPVS_CMD_ATTR_"
    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "service"),
        ("IPVS_CMD_ATTR_DEST", "dest"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", "uint32"),
        ("IPVS_CMD_ATTR_TIMEOUT_UDP", "uint32"),
        ("IPVS_CMD_ATTR_LADDR", "laddr"),            # extension
    )
    service = service
    dest = dest
    daemon = daemon
    laddr = laddr


class infomsg:
    """The reply to GET_INFO (command SET_INFO): version and table size."""

    prefix = "IPVS_INFO_ATTR_"
    nla_map = (
        ("IPVS_INFO_ATTR_UNSPEC", "none"),
        ("IPVS_INFO_ATTR_VERSION", "uint32"),
        ("IPVS_INFO_ATTR_CONN_TAB_SIZE", "uint32"),
    )


class ctrlmsg:
    """The generic netlink controller (family id 16): name -> family id."""

    prefix = "CTRL_ATTR_"
    nla_map = (
        ("CTRL_ATTR_UNSPEC", "none"),
        ("CTRL_ATTR_FAMILY_ID", "uint16"),
        ("CTRL_ATTR_FAMILY_NAME", "asciiz"),
    )


GENL_ID_CTRL = 16
CTRL_CMD_GETFAMILY = 3


# ---------------------------------------------------------------- encoding
if TYPE_CHECKING:
    Attrs = list[tuple[str, Any]]     # (attribute name, value) pairs
else:
    Attrs = list                      # the same name at run time


def nested(attrs: Attrs) -> dict[str, Attrs]:
    """The value of a nested attribute for ``ipvsmsg``'s encoder."""
    return {"attrs": attrs}


SPECS: dict[str, type] = {}
_BUILT: dict[str, type] = {}


def pyroute2_classes() -> dict[str, type]:
    """The declarations above as pyroute2 ``nla``/``genlmsg`` classes."""
    if _BUILT:
        return _BUILT
    from pyroute2.netlink import genlmsg, nla

    def build(name: str) -> type:
        if name in _BUILT:
            return _BUILT[name]
        spec = SPECS[name]
        body: dict[str, Any] = {"__doc__": spec.__doc__}
        for key in ("prefix", "nla_map", "fields"):
            if hasattr(spec, key):
                body[key] = getattr(spec, key)
        for _attr, kind in getattr(spec, "nla_map", ()):
            if kind in SPECS:
                body[kind] = build(kind)
        base = genlmsg if name in ("ipvsmsg", "infomsg") else nla
        _BUILT[name] = type(name, (base,), body)
        return _BUILT[name]

    for name in SPECS:
        build(name)
    return _BUILT


def _pyroute2_values(attrs: Attrs) -> Attrs:
    """Attributes as pyroute2 takes them (struct values as dicts)."""
    out: Attrs = []
    for name, value in attrs:
        if isinstance(value, SvcFlags):
            value = value._asdict()
        elif isinstance(value, dict) and "attrs" in value:
            value = {"attrs": _pyroute2_values(value["attrs"])}
        out.append((name, value))
    return out


def encode_pyroute2(cmd: int, attrs: Attrs, *, family: int, flags: int, seq: int,
                    msg_class: str = "ipvsmsg") -> bytes:
    """One complete message encoded by pyroute2 from the declarative classes.

    The reference encoder: :func:`encode` must produce the same bytes (the
    unit tests check it), but is about 40 times faster, which matters when
    10,000 rules are restored.
    """
    msg = pyroute2_classes()[msg_class]()
    msg["cmd"] = cmd
    msg["version"] = GENL_VERSION
    msg["attrs"] = _pyroute2_values(attrs)
    msg["header"]["type"] = family
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data[:msg["header"]["length"]])


# ---------------------------------------------------------------- decoding
# The struct codec: a table per nested class, built once from its nla_map.
_FORMATS = {"uint8": "=B", "uint16": "=H", "uint32": "=I", "uint64": "=Q",
            "be16": ">H", "be32": ">I"}


def _table(cls: type) -> dict[int, tuple[str, str]]:
    """Attribute number -> (short name, kind) for one ``nla`` class."""
    table = {}
    for number, (name, kind) in enumerate(cls.nla_map):
        table[number] = (name.removeprefix(cls.prefix).lower(), kind)
    return table


_NESTED: dict[str, type] = {
    "service": service, "dest": dest, "daemon": daemon, "laddr": laddr,
    "stats": stats, "stats64": stats64,
}
_TABLES = {name: _table(cls) for name, cls in _NESTED.items()}
_TABLES["ipvsmsg"] = _table(ipvsmsg)
_TABLES["infomsg"] = _table(infomsg)
_TABLES["ctrlmsg"] = _table(ctrlmsg)
SPECS.update(_NESTED, svc_flags=svc_flags, ipvsmsg=ipvsmsg, infomsg=infomsg)
_HDR = struct.Struct("=IHHII")
_NLA = struct.Struct("=HH")
_ERR = struct.Struct("=i")


class Lazy:
    """A nested attribute kept as bytes until asked for (counters are big
    and most listings do not show them)."""

    __slots__ = ("table", "raw")

    def __init__(self, table: str, raw: bytes) -> None:
        self.table, self.raw = table, raw

    def get(self) -> dict[str, Any]:
        return decode_attrs(self.raw, 0, len(self.raw), self.table)


LAZY = frozenset({"stats", "stats64"})


_PAIR = struct.Struct("=II").unpack


def _codec(kind: str) -> tuple[int, str | None, Any] | None:
    """How a value of this kind is read: (bytes it needs, 0 for the whole
    payload; the struct code of a native number, else None; the converter
    of its raw bytes, or None).  None for a kind that is not read.  The
    walk and the layout plans both read from here."""
    if kind in _FORMATS:
        fmt = _FORMATS[kind]
        width = struct.calcsize(fmt)
        if fmt[0] == ">":
            return width, None, lambda raw: int.from_bytes(raw, "big")
        return width, fmt[1:], None
    if kind == "svc_flags":
        return 8, None, _PAIR
    if kind == "cdata":
        return 0, None, None
    if kind == "asciiz":
        return 0, None, lambda raw: raw.split(b"\0", 1)[0].decode()
    if kind in LAZY:
        return 0, None, lambda raw: Lazy(kind, raw)
    if kind in _TABLES:
        return 0, None, lambda raw: decode_attrs(raw, 0, len(raw), kind)
    return None


def _reader(width: int, code: str | None, convert: Any):
    """A function (data, lo, hi) -> value of one attribute for the walk."""
    if code is not None:
        unpack = struct.Struct("=" + code).unpack_from
        return lambda data, lo, hi: unpack(data, lo)[0]
    if convert is None:
        return lambda data, lo, hi: bytes(data[lo:lo + width if width else hi])
    return lambda data, lo, hi: convert(bytes(data[lo:lo + width if width else hi]))


_READERS: dict[str, dict[int, tuple[str, Any, int]]] = {}


def _readers(table: str) -> dict[int, tuple[str, Any, int]]:
    """Attribute number -> (name, reader, fewest value bytes) of a table,
    built once."""
    if table not in _READERS:
        codecs = {number: (name, _codec(kind)) for number, (name, kind)
                  in _TABLES[table].items()}
        _READERS[table] = {number: (name, _reader(*codec), codec[0])
                           for number, (name, codec) in codecs.items() if codec is not None}
    return _READERS[table]


# Layout plans.  A dump repeats a few layouts (the same attributes, sizes
# and order) thousands of times, so a message of a new layout is walked
# attribute by attribute and leaves a plan: one struct that reads every
# attribute header (to check that a later message has that layout) and one
# that reads every value, in one call each.  Plans are kept per (table,
# length), a few per key (schedulers "rr" and "wlc" make two layouts of one
# length); a message that fits none is walked.  The result is the same
# either way.  None in a key's list marks a layout that cannot be planned.
_PLANS: dict[tuple[str, int], list["_Plan | None"]] = {}
_MAX_KEYS = 256
_PLANS_PER_KEY = 4
class _Plan:
    __slots__ = ("headers", "read_headers", "read_values", "names", "fixups")

    def __init__(self, data: bytes | memoryview, start: int, end: int, table: str) -> None:
        """Raises ValueError if the layout of ``data[start:end]`` cannot be planned."""
        kinds = _TABLES[table]
        readers = _READERS.get(table) or _readers(table)
        header_codes, value_codes, headers, names, fixups = [], [], [], [], []
        header_pos = value_pos = pos = start
        while pos + 4 <= end:
            length, kind_no = _NLA.unpack_from(data, pos)
            if length < 4 or pos + length > end:
                raise ValueError("attribute out of bounds")
            header_codes.append(f"{pos - header_pos}xI")
            headers.append(struct.unpack_from("=I", data, pos)[0])
            header_pos = pos + 4
            number = kind_no & 0x3FFF
            if number in readers:
                name, kind = kinds[number]
                width, code, fixup = _codec(kind)
                if length - 4 < width or name in names:
                    raise ValueError("no plan for this attribute")   # the walk skips it
                width = width or length - 4
                value_codes.append(f"{pos + 4 - value_pos}x{code or f'{width}s'}")
                value_pos = pos + 4 + width
                if fixup is not None:
                    fixups.append((len(names), name, fixup))
                names.append(name)
            pos += (length + 3) & ~3
        self.headers = tuple(headers)
        self.read_headers = struct.Struct("=" + "".join(header_codes)).unpack_from
        self.read_values = struct.Struct("=" + "".join(value_codes)).unpack_from
        self.names = tuple(names)
        self.fixups = tuple(fixups)

    def decode(self, data: bytes | memoryview, start: int) -> dict[str, Any] | None:
        """The attributes, or None if this message's layout differs."""
        if self.read_headers(data, start) != self.headers:
            return None
        values = self.read_values(data, start)
        out = dict(zip(self.names, values))
        for index, name, fixup in self.fixups:
            out[name] = fixup(values[index])
        return out


def decode_attrs(data: bytes | memoryview, start: int, end: int,
                 table: str) -> dict[str, Any]:
    """Attributes in ``data[start:end]`` as a dict (nested ones as dicts,
    counters as :class:`Lazy`).  As the kernel's ``nla_ok()``, an attribute
    that overruns the region ends it; one too short for its kind (a u32 of
    two bytes) is left out."""
    key = (table, end - start)
    plans = _PLANS.get(key)
    if plans is None:
        if len(_PLANS) >= _MAX_KEYS:
            return walk_attrs(data, start, end, table)
        plans = _PLANS[key] = []
    for plan in plans:
        out = plan.decode(data, start) if plan is not None else None
        if out is not None:
            return out
    if len(plans) < _PLANS_PER_KEY:
        try:
            plans.append(_Plan(data, start, end, table))
        except (ValueError, struct.error):
            plans.append(None)
    return walk_attrs(data, start, end, table)


def walk_attrs(data: bytes | memoryview, start: int, end: int,
               table: str) -> dict[str, Any]:
    """:func:`decode_attrs` by walking the attributes one by one."""
    readers = _READERS.get(table) or _readers(table)
    header = _NLA.unpack_from
    out: dict[str, Any] = {}
    pos = start
    while pos + 4 <= end:
        length, kind_no = header(data, pos)
        if length < 4 or pos + length > end:
            break
        entry = readers.get(kind_no & 0x3FFF)
        if entry is not None and length - 4 >= entry[2]:
            out[entry[0]] = entry[1](data, pos + 4, pos + length)
        pos += (length + 3) & ~3
    return out


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


def parse_stream(data: bytes | memoryview, table: str = "ipvsmsg") -> Iterator[Reply]:
    """Every netlink message in a buffer read from the socket."""
    pos, end = 0, len(data)
    while pos + 16 <= end:
        length, type_, flags, seq, _pid = _HDR.unpack_from(data, pos)
        if length < 16:
            break
        reply = Reply(type_, flags, seq)
        if type_ == NLMSG_ERROR:
            reply.error = -_ERR.unpack_from(data, pos + 16)[0]
        elif type_ != NLMSG_DONE:
            reply.cmd = data[pos + 16]
            reply.attrs = decode_attrs(data, pos + 20, pos + length, table)
        yield reply
        pos += (length + 3) & ~3


# The struct encoder, driven by the same tables: one function per attribute
# name, made once, that returns the whole attribute (header, value, padding).
_SIZES = {kind: struct.calcsize(fmt) for kind, fmt in _FORMATS.items()}
_FLAGS = struct.Struct("=II")


def _attr(number: int, body: bytes) -> bytes:
    return _NLA.pack(len(body) + 4, number) + body + b"\0" * (-len(body) & 3)


def _encoder(number: int, kind: str):
    """A function value -> bytes of one attribute of this number and kind."""
    if kind in _FORMATS:
        size = _SIZES[kind]
        header = _NLA.pack(4 + size, number)
        pack = struct.Struct(_FORMATS[kind] + "x" * (-size & 3)).pack
        return lambda value: header + pack(value)
    if kind == "cdata":
        return lambda value: _attr(number, bytes(value))
    if kind == "asciiz":
        return lambda value: _attr(number, value.encode() + b"\0")
    if kind == "svc_flags":
        header = _NLA.pack(4 + _FLAGS.size, number)

        def encode_flags(value: SvcFlags | dict[str, int]) -> bytes:
            flags, mask = (value["flags"], value["mask"]) if isinstance(value, dict) else value
            return header + _FLAGS.pack(flags, mask)
        return encode_flags
    if kind == "service":
        return _remembering_encoder(number, kind)
    return lambda value: _attr(number, encode_attrs(value["attrs"], kind))


def _remembering_encoder(number: int, kind: str):
    """A nested attribute's encoder that remembers what it made: a restore
    names the same virtual service on each of its real servers' lines."""
    made: dict[tuple, bytes] = {}

    def encode(value: dict[str, Attrs]) -> bytes:
        attrs = value["attrs"]
        try:
            key = tuple(attrs)
            hit = made.get(key)
        except TypeError:       # a value that cannot be hashed (a dict)
            return _attr(number, encode_attrs(attrs, kind))
        if hit is None:
            if len(made) >= 1024:
                made.clear()
            hit = made[key] = _attr(number, encode_attrs(attrs, kind))
        return hit
    return encode


_ENCODERS: dict[str, dict[str, Any]] = {}
for _tname, _cls in list(_NESTED.items()) + [("ipvsmsg", ipvsmsg), ("infomsg", infomsg),
                                             ("ctrlmsg", ctrlmsg)]:
    _ENCODERS[_tname] = {name: _encoder(number, kind) for number, (name, kind)
                         in enumerate(_cls.nla_map)}


def encode_attrs(attrs: Attrs, table: str = "ipvsmsg") -> bytes:
    """A run of attributes (full names, as in the ``nla_map``) as bytes."""
    encoders = _ENCODERS[table]
    return b"".join([encoders[name](value) for name, value in attrs])


_GENL = {cmd: bytes((cmd, GENL_VERSION, 0, 0)) for cmd in range(256)}


def encode(cmd: int, attrs: Attrs, *, family: int, flags: int, seq: int,
           table: str = "ipvsmsg") -> bytes:
    """One complete netlink message (header included) as bytes."""
    body = encode_attrs(attrs, table)
    return _HDR.pack(20 + len(body), family, flags, seq, 0) + _GENL[cmd] + body
